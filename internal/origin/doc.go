// Package origin serves an origin tree (the layout `assetd publish`
// writes, see package publish) over HTTP as docs/origin-protocol.md describes:
//
//	GET /v1/avatars/{id}/manifest    application/json, ETag "<sha256 of the bytes>", Cache-Control: no-cache
//	GET /v1/blobs/sha256/{hex}       application/octet-stream, ETag "<hex>",
//	                                 Cache-Control: public, max-age=31536000, immutable
//
// Both answer HEAD, Range (206, 416), If-None-Match (304) and If-Range
// through http.ServeContent; a Range of more than MaxRanges ranges is
// answered 200 with the whole body. Errors carry the protocol's JSON body
// {"code": ..., "message": ...}: an unknown or malformed avatar ID is 404
// avatarIDUnrecognized, an unknown blob 404 failedToDownloadAvatarAssets.
//
// When given app IDs, a request without a listed X-App-ID is 403
// appIDUnrecognized. When given session tokens, a request without
// "Authorization: Bearer" is 401 sessionTokenExpired and one with an
// unlisted token 403 sessionTokenInvalid. Tokens are kept only as sha256
// digests and never logged.
//
// Nothing outside the root is ever served: IDs and digests are validated
// before they become names, only those two kinds of names are opened,
// only regular files are answered (never a directory listing), and files
// are opened through an os.Root, so even a symlink planted in the tree
// cannot lead out of it.
//
// It is meant for demos, tests and small on-premises installs; a CDN or
// any static file server can serve the same tree.
//
// origin imports errs, manifest and publish (for the tree's layout).
package origin
