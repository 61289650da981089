package api

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

type peerKey struct{}

// peer is the verdict on one connection's caller, reached once when the
// connection is accepted and kept in its context.
type peer struct {
	allowed bool
	uid     uint32
	pid     int32
	why     string // for the log when refused
}

func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	p := s.checkPeer(c)
	if !p.allowed {
		s.log.Warn("api: caller refused", "uid", p.uid, "pid", p.pid, "why", p.why)
	}
	return context.WithValue(ctx, peerKey{}, p)
}

// checkPeer admits root, the daemon's own uid, the allowed uids, and
// callers whose primary or supplementary group is allowed. Supplementary
// groups come from /proc/PID/status, read only when nothing else admits.
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
	p := peer{uid: cred.Uid, pid: cred.Pid}
	switch {
	case cred.Uid == 0, cred.Uid == s.selfUID, s.uids[cred.Uid], s.gids[cred.Gid]:
		p.allowed = true
		return p
	case len(s.gids) == 0:
		p.why = "uid and gid not allowed"
		return p
	}
	groups, err := procGroups(cred.Pid)
	if err != nil {
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

// procGroups returns the supplementary groups of a process.
func procGroups(pid int32) ([]uint32, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/status")
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("Groups:"))
		if !ok {
			continue
		}
		var gs []uint32
		for _, f := range bytes.Fields(rest) {
			g, err := strconv.ParseUint(string(f), 10, 32)
			if err != nil {
				return nil, fmt.Errorf("bad Groups line: %w", err)
			}
			gs = append(gs, uint32(g))
		}
		return gs, nil
	}
	return nil, fmt.Errorf("no Groups line in /proc/%d/status", pid)
}
