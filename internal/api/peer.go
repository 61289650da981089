package api

import (
	"context"
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/assetd/assetd/internal/caller"
)

type peerKey struct{}

// peer is the verdict on one connection's caller, reached once when the
// connection is accepted and kept in its context.
type peer struct {
	allowed bool
	known   bool // the credentials were read
	uid     uint32
	gid     uint32
	pid     int32
	why     string // for the log when refused
}

func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	var p peer
	if lc, ok := c.(*limitedConn); ok {
		p = lc.peer // checked when the listener admitted it
		ctx = context.WithValue(ctx, connKey{}, lc)
	} else {
		p = s.checkPeer(c)
	}
	if !p.allowed {
		s.log.Warn("api: caller refused", "uid", p.uid, "pid", p.pid, "why", p.why)
	}
	if p.known {
		// Who asked, for what is decided per caller.
		ctx = caller.NewContext(ctx, caller.ID{UID: p.uid, GID: p.gid, PID: p.pid})
	}
	return context.WithValue(ctx, peerKey{}, p)
}

// checkPeer admits root, the daemon's own uid, the allowed uids, and
// callers whose primary or supplementary group is the daemon's own group or
// an allowed one. Supplementary
// groups come from SO_PEERGROUPS, which the kernel recorded at connect, so
// that a caller cannot hand its socket to another process and leave; they
// are read only when nothing else admits.
func (s *Server) checkPeer(c net.Conn) peer {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return peer{why: fmt.Sprintf("not a Unix socket connection (%T)", c)}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peer{why: err.Error()}
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return peer{why: err.Error()}
	}
	if cerr != nil {
		return peer{why: "SO_PEERCRED: " + cerr.Error()}
	}
	p := peer{known: true, uid: cred.Uid, gid: cred.Gid, pid: cred.Pid}
	switch {
	case cred.Uid == 0, cred.Uid == s.selfUID, s.uids[cred.Uid], s.gids[cred.Gid]:
		p.allowed = true
		return p
	}
	var groups []uint32
	if err := raw.Control(func(fd uintptr) { groups, cerr = peerGroups(int(fd)) }); err != nil {
		cerr = err
	}
	if err := cerr; err != nil {
		p.why = "reading supplementary groups: " + err.Error()
		return p
	}
	for _, g := range groups {
		if s.gids[g] {
			p.allowed = true
			return p
		}
	}
	p.why = "no allowed uid, gid or supplementary group"
	return p
}

// peerGroups is getsockopt(SO_PEERGROUPS): the supplementary groups the
// peer had when it connected (Linux 4.13 and later).
func peerGroups(fd int) ([]uint32, error) {
	n := 64
	for {
		buf := make([]uint32, n)
		size := uint32(n * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch {
		case errno == unix.ERANGE && int(size/4) > n && n < 1<<16:
			n = int(size / 4)
			continue
		case errno != 0:
			return nil, fmt.Errorf("SO_PEERGROUPS: %w", errno)
		}
		return buf[:size/4], nil
	}
}
