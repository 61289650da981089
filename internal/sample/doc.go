// Package sample generates the demo's avatars: three avatars ("rohan",
// "mei", "aria") of 5-10 MB each, several files apiece, one file shared
// byte-for-byte by two of them so that the cache's content addressing
// shows. Every byte comes from a ChaCha8 stream seeded from the file's
// name, so every run on every machine writes identical files and no large
// binary needs to live in the repository.
//
// The layout written is the input of `assetd publish`: one folder per
// avatar, named by its ID, with a VERSION file.
package sample
