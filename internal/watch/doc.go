// Package watch tells its caller when files change on disk, for assetd's
// configuration and session token files and for the blob store's files.
//
// New watches named files. It watches the directories that hold them, never
// the files themselves: an editor that saves by writing a new file and
// renaming it over the old one, and a Kubernetes-style volume that swaps a
// "..data" symlink, replace the file's inode, which a watch on the file
// would lose. After a burst of events settles (Options.Debounce), each
// watched file whose content, mode or identity changed, or that an event
// named, is reported once.
//
// NewTree watches every file under a directory (subdirectories included)
// and reports each file that was created, written, removed, renamed or had
// its mode changed, one Event per file per burst.
//
// The caller owns the goroutine: Run blocks until its context ends, calls
// back from that goroutine only, and returns after the inotify watcher is
// closed.
package watch
