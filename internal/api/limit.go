package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/assetd/assetd/apitype/errcode"
)

// Defaults of the caps on connections and subscribers (docs/config.md).
const (
	DefaultMaxConnectionsPerUID  = 256
	DefaultMaxSubscribersPerUID  = 64
	DefaultSubscriberReadTimeout = 30 * time.Second
	maxDerivedConnections        = 4096
	minConnections               = 16
)

// connLimits counts the connections and event subscribers of each uid.
// Root and the daemon's own uid are counted but never refused: a flood by
// another caller leaves them the descriptors the total cap keeps free.
type connLimits struct {
	total, perUID, subsPerUID int

	mu    sync.Mutex
	n     int
	conns map[uint32]int
	subs  map[uint32]int

	lastExhausted time.Time // the last warning about descriptors
}

// defaultMaxConnections is a quarter of the open-file limit, so that a
// flood of connections leaves most descriptors to the store, the origin
// and the callers that are always served.
func defaultMaxConnections() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY {
		return maxDerivedConnections
	}
	return int(min(max(rl.Cur/4, minConnections), maxDerivedConnections))
}

func newConnLimits(o Options) *connLimits {
	l := &connLimits{total: o.MaxConnections, perUID: o.MaxConnectionsPerUID, subsPerUID: o.MaxSubscribersPerUID,
		conns: map[uint32]int{}, subs: map[uint32]int{}}
	if l.total <= 0 {
		l.total = defaultMaxConnections()
	}
	if l.perUID <= 0 {
		l.perUID = DefaultMaxConnectionsPerUID
	}
	if l.subsPerUID <= 0 {
		l.subsPerUID = DefaultMaxSubscribersPerUID
	}
	return l
}

// limitListener admits connections under the caps. A connection past a
// cap gets a 429 answer and is closed at once, before any request is read.
type limitListener struct {
	net.Listener
	s *Server
	l *connLimits
}

// limitedConn is an admitted connection; closing it gives its place back.
type limitedConn struct {
	*net.UnixConn
	peer peer
	once sync.Once
	l    *connLimits
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.release(c.peer.uid, &c.l.conns) })
	return c.UnixConn.Close()
}

func (ln *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			ln.exhausted(err)
			return nil, err
		}
		uc, ok := c.(*net.UnixConn)
		if !ok {
			return c, nil // not a Unix socket: checkPeer refuses it
		}
		p := ln.s.checkPeer(uc)
		if why := ln.l.admitConn(p.uid, ln.s.privileged(p.uid)); why != "" {
			ln.s.log.Debug("api: connection refused", "uid", p.uid, "pid", p.pid, "why", why)
			ln.s.refuse(uc, why)
			continue
		}
		return &limitedConn{UnixConn: uc, peer: p, l: ln.l}, nil
	}
}

// exhausted warns, at most every 10 s, that accepting failed for want of
// descriptors; http.Server retries after a pause.
func (ln *limitListener) exhausted(err error) {
	if !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE) {
		return
	}
	ln.l.mu.Lock()
	now := time.Now()
	warn := now.Sub(ln.l.lastExhausted) >= 10*time.Second
	if warn {
		ln.l.lastExhausted = now
	}
	n := ln.l.n
	ln.l.mu.Unlock()
	if warn {
		ln.s.log.Warn("api: out of file descriptors; new connections wait", "err", err, "connections", n,
			"max_connections", ln.l.total)
	}
}

// privileged callers are served past the caps.
func (s *Server) privileged(uid uint32) bool { return uid == 0 || uid == s.selfUID }

// admitConn counts a new connection of uid, or says why it is refused.
func (l *connLimits) admitConn(uid uint32, privileged bool) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !privileged {
		switch {
		case l.conns[uid] >= l.perUID:
			return fmt.Sprintf("uid %d has %d connections open (api.max_connections_per_uid)", uid, l.conns[uid])
		case l.n >= l.total:
			return fmt.Sprintf("%d connections are open (api.max_connections)", l.n)
		}
	}
	l.n++
	l.conns[uid]++
	return ""
}

// admitSubscriber counts a new event subscriber of uid, or says why not.
func (l *connLimits) admitSubscriber(uid uint32, privileged bool) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !privileged && l.subs[uid] >= l.subsPerUID {
		return fmt.Sprintf("uid %d has %d event streams open (api.max_subscribers_per_uid)", uid, l.subs[uid])
	}
	l.subs[uid]++
	return ""
}

func (l *connLimits) release(uid uint32, m *map[uint32]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m == &l.conns {
		l.n--
	}
	if (*m)[uid]--; (*m)[uid] <= 0 {
		delete(*m, uid)
	}
}

// refuse answers a connection past a cap with 429 concurrentLimitExceeded
// (reason tooManyConnections) and closes it. The answer fits the socket's
// empty send buffer, so the write does not wait for the caller; the
// deadline is a guard.
func (s *Server) refuse(c *net.UnixConn, why string) {
	e := &errcode.Error{Code: errcode.ConcurrentLimitExceeded, Phase: errcode.PhaseLocal, Transient: true,
		Reason: errcode.ReasonTooManyConnections, Message: "too many connections: " + why}
	body, _ := json.Marshal(errcode.Envelope{Error: s.body(e)})
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		http.StatusTooManyRequests, http.StatusText(http.StatusTooManyRequests), len(body), body)
	_ = c.Close()
}

// subscriberWatch tells when an event stream has not been read for the
// read timeout: its socket holds bytes the caller has not taken
// (SIOCOUTQ), and they have not gone down since.
type subscriberWatch struct {
	conn    *net.UnixConn
	timeout time.Duration
	since   time.Time // when unread bytes were first seen without progress
	last    int
}

func newSubscriberWatch(ctx context.Context, timeout time.Duration) *subscriberWatch {
	c, _ := ctx.Value(connKey{}).(*limitedConn)
	if c == nil {
		return nil
	}
	return &subscriberWatch{conn: c.UnixConn, timeout: timeout}
}

// stuck reports whether the caller has read nothing for the timeout.
func (w *subscriberWatch) stuck(now time.Time) bool {
	q, ok := unread(w.conn)
	switch {
	case !ok:
		return false
	case q == 0 || q < w.last:
		w.since = time.Time{}
	case w.since.IsZero():
		w.since = now
	}
	w.last = q
	return !w.since.IsZero() && now.Sub(w.since) >= w.timeout
}

// unread is the bytes sent on c that the peer has not read yet.
func unread(c *net.UnixConn) (int, bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var q int
	var qerr error
	if err := raw.Control(func(fd uintptr) { q, qerr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil || qerr != nil {
		return 0, false
	}
	return q, true
}

type connKey struct{}
