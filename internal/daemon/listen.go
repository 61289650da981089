package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
)

// ErrInUse means another assetd answers on the socket. serve exits 2 on it.
var ErrInUse = errors.New("another assetd is already serving")

// InUseError names the socket that another daemon holds.
type InUseError struct{ Socket string }

func (e *InUseError) Error() string { return "another assetd is already serving " + e.Socket }

// Is lets errors.Is(err, ErrInUse) match.
func (e *InUseError) Is(target error) bool { return target == ErrInUse }

// SocketOptions say where and how the daemon listens.
type SocketOptions struct {
	Path  string      // api.socket
	Mode  os.FileMode // api.socket_mode; 0 means 0660
	Group string      // api.socket_group; "" keeps the daemon's group
}

// dialTimeout bounds the probe that tells a live socket from a stale one.
const dialTimeout = 2 * time.Second

// probe returns an *InUseError when a process accepts connections on path.
// A missing path, or one nobody answers on, is free.
func probe(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("socket %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("socket %s: exists and is not a socket; refusing to replace it", path)
	}
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(ctx, "unix", path)
	if err == nil {
		c.Close()
		return &InUseError{Socket: path}
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist) {
		return nil // nobody listens: stale
	}
	if errors.Is(err, syscall.EAGAIN) {
		return &InUseError{Socket: path} // listening, its backlog full
	}
	// Denied, timed out (a daemon too busy to accept?) or anything else:
	// not known to be stale, so not ours to remove.
	return fmt.Errorf("socket %s: cannot tell whether it is in use: %w", path, err)
}

// socketListener is the daemon's listener and whether it made the socket file
// (and so must remove it) or inherited it from systemd (and must not).
type socketListener struct {
	net.Listener
	path      string
	inherited bool
	lock      *os.File // flock on path+".lock" while we serve on path
}

// Close closes the listener, which removes a socket file it created. The
// lock stays until release: the daemon holds it until it has closed the
// store, so that a successor never meets a half-stopped predecessor.
func (l *socketListener) Close() error {
	err := l.Listener.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// release closes the listener, then removes the lock file and releases
// the lock, in that order: see lockSocket.
func (l *socketListener) release() {
	l.Close()
	if l.lock != nil {
		unlockSocket(l.lock)
	}
}

// lockSocket takes an exclusive flock on path+".lock", so that two daemons
// starting at once cannot both decide the socket is stale and replace each
// other's. A daemon that stops cleanly removes the lock file while it still
// holds the lock (unlockSocket), so no file stays behind. That reopens a
// race unless the winner checks what it won: a starter that opened the old
// file before it was removed gets the lock on an inode no longer at the
// path, while another starter creates and locks a new file there. So after
// flock the path must still name the locked inode; when it does not, the
// lock is worthless and is taken again on the file now at the path. While
// a daemon holds the lock the file cannot be removed by anyone else playing
// by these rules (only the holder removes it), so the check cannot pass
// for two at once. A start refused because the lock is held leaves the
// holder's file alone.
func lockSocket(path string) (*os.File, error) {
	const attempts = 10 // each lost round means another daemon came and went
	for range attempts {
		f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("socket lock: %w", err)
		}
		lockOpened()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, &InUseError{Socket: path}
			}
			return nil, fmt.Errorf("socket lock: %w", err)
		}
		held, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("socket lock: %w", err)
		}
		if now, err := os.Stat(f.Name()); err == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close() // removed (or replaced) by its last holder: try again
	}
	return nil, fmt.Errorf("socket lock %s.lock: still changing after %d attempts", path, attempts)
}

// lockOpened is a seam for the test of the race above: it runs between
// opening the lock file and locking it.
var lockOpened = func() {}

// unlockSocket removes the lock file, still holding its lock, then
// releases it. A starter that opened the old file and locks it now finds
// the path gone, or naming a newer file, and starts over (lockSocket).
func unlockSocket(f *os.File) {
	os.Remove(f.Name())
	f.Close()
}

// inherited returns the Unix listener systemd passed by socket activation,
// or nil when the process was not socket-activated.
func inherited() (net.Listener, error) {
	lns, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	var found net.Listener
	for _, ln := range lns {
		if ln == nil {
			continue
		}
		if _, ok := ln.(*net.UnixListener); ok && found == nil {
			found = ln
			continue
		}
		ln.Close()
	}
	if len(lns) > 0 && found == nil {
		return nil, errors.New("socket activation: no Unix stream socket among the passed descriptors")
	}
	return found, nil
}

// socketErr says how to pick another socket when this user may not
// create the configured one (a user other than root, /run/assetd).
func socketErr(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w; pick a socket you may create with --socket PATH or ASSETD_SOCKET (api.socket)", err)
	}
	return err
}

// listen returns the systemd-passed socket when there is one; otherwise it
// creates the socket at o.Path with o.Mode and o.Group, replacing a stale
// socket file and refusing one that a running daemon answers on.
func listen(ctx context.Context, o SocketOptions) (*socketListener, error) {
	ln, err := inherited()
	if err != nil {
		return nil, err
	}
	if ln != nil {
		return &socketListener{Listener: ln, path: ln.Addr().String(), inherited: true}, nil
	}
	if o.Path == "" {
		return nil, errors.New("no socket path (api.socket)")
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o755); err != nil {
		return nil, socketErr(fmt.Errorf("socket directory: %w", err))
	}
	lock, err := lockSocket(o.Path)
	if err != nil {
		return nil, socketErr(err)
	}
	sl, err := create(ctx, o)
	if err != nil {
		unlockSocket(lock)
		return nil, socketErr(err)
	}
	sl.lock = lock
	return sl, nil
}

// create makes the socket file, replacing a stale one.
func create(ctx context.Context, o SocketOptions) (*socketListener, error) {
	if err := probe(ctx, o.Path); err != nil {
		return nil, err
	}
	if err := os.Remove(o.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale socket %s: %w", o.Path, err)
	}
	mode := o.Mode.Perm()
	if mode == 0 {
		mode = 0o660
	}
	// The socket file appears with 0600 at most; chmod then opens it to the
	// configured mode. No moment exists when it is wider than configured.
	old := syscall.Umask(0o177)
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "unix", o.Path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.Path, err)
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(true)
	if err := setOwnership(o.Path, mode, o.Group); err != nil {
		ul.Close()
		return nil, err
	}
	return &socketListener{Listener: ul, path: o.Path}, nil
}

// setOwnership gives the socket file its group (when named) and mode.
func setOwnership(path string, mode os.FileMode, group string) error {
	if group != "" {
		gid, err := lookupGroup(group)
		if err != nil {
			return err
		}
		if err := os.Chown(path, -1, gid); err != nil {
			return fmt.Errorf("socket group %s: %w", group, err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("socket mode: %w", err)
	}
	return nil
}

// lookupGroup resolves a group name, or a numeric gid, to a gid.
func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		if _, numErr := strconv.Atoi(name); numErr != nil {
			return 0, fmt.Errorf("socket group %q: %w", name, err)
		}
		g, err = user.LookupGroupId(name)
		if err != nil {
			return 0, fmt.Errorf("socket group %q: %w", name, err)
		}
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return 0, fmt.Errorf("socket group %q: gid %q: %w", name, g.Gid, err)
	}
	return gid, nil
}
