// Package daemon is `assetd serve`: it wires the configuration, the logger,
// the store, the fetch client, the manager and the socket API into one
// process, and owns everything around them that belongs to a daemon.
//
// What it owns:
//   - the socket: taken from systemd when socket-activated, else created
//     with api.socket_mode (0660 by default, never wider while it is made)
//     and api.socket_group, after a flock beside it and a probe that tells a
//     stale socket file (replaced) from a live daemon (refused with
//     ErrInUse); a socket it created is removed on exit, an inherited one
//     never is;
//   - the session token, read from the token file or the systemd credential,
//     re-read on reload and when the file changes, set by PUT /v1/session,
//     and handed to fetch per request; it is never logged (the logger masks
//     it wherever it appears);
//   - signals: the caller's context ends on SIGTERM and SIGINT (stop
//     accepting, cancel loads keeping their partial files, close the manager
//     and the store, remove the socket); SIGHUP and edits of the config file
//     reload the configuration, keeping the old one when the new one is bad.
//     One control goroutine runs every reload, so none overlap; what cannot
//     change while serving (socket, store, log format) is logged as needing
//     a restart;
//   - watches (internal/watch): the config and token files, and the blob
//     store, where a file deleted or rewritten behind the daemon's back has
//     its avatars verified (marked damaged and, with self_heal, fetched
//     again);
//   - systemd: READY=1 once serving, STATUS=, WATCHDOG=1 at half the
//     watchdog interval, RELOADING=1 around reloads, STOPPING=1 on the way
//     out; all no-ops without systemd;
//   - the background duties (preload, scrub) and the periodic flush of the
//     store's last-used times.
//
// Every goroutine Run starts is stopped and waited for before Run returns.
//
// daemon is the only package that imports config, store, fetch, manager and
// api together; none of them imports daemon.
package daemon
