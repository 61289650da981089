package manager

import (
	"sync"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/mailbox"
)

// maxQueued bounds a waiter's queue: past it, a progress event replaces the
// progress event queued last instead of growing the queue. Terminal events
// are never dropped.
const maxQueued = 64

// waiter is one caller of Load waiting on a shared load. The load pushes
// events; the caller's own goroutine delivers them to its Progress func, so
// a slow callback delays only that caller. sig has a value when the queue
// is not empty.
type waiter struct {
	q   *mailbox.Box[apitype.Event]
	sig <-chan struct{}
}

func newWaiter() *waiter {
	q := mailbox.New(func(n int, last, next apitype.Event) bool {
		return n >= maxQueued && next.Type == apitype.EventProgress && last.Type == apitype.EventProgress
	})
	return &waiter{q: q, sig: q.Ready()}
}

func (w *waiter) push(ev apitype.Event) { w.q.Push(ev) }

func (w *waiter) take() []apitype.Event { return w.q.Take() }

// subscribers are the /v1/events streams.
type subscribers struct {
	mu     sync.Mutex
	buf    int
	closed bool
	set    map[chan apitype.Event]struct{}
}

func (s *subscribers) init(buf int) {
	s.buf = buf
	s.set = map[chan apitype.Event]struct{}{}
}

// Subscribe returns every progress and state event for any avatar from now
// on. A subscriber that falls behind by more than the buffer loses events;
// loads never wait for it. cancel ends the subscription and closes the
// channel; Close ends every subscription.
func (m *Manager) Subscribe() (events <-chan apitype.Event, cancel func()) {
	s := &m.subs
	ch := make(chan apitype.Event, s.buf)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		close(ch)
		return ch, func() {}
	}
	s.set[ch] = struct{}{}
	s.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if _, ok := s.set[ch]; ok {
				delete(s.set, ch)
				close(ch)
			}
		})
	}
}

func (s *subscribers) send(ev apitype.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.set {
		select {
		case ch <- ev:
		default:
		}
	}
}

func (s *subscribers) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for ch := range s.set {
		delete(s.set, ch)
		close(ch)
	}
}

// stateEvent announces that an avatar changed state.
func (m *Manager) stateEvent(id string, st apitype.State, err error) {
	ev := apitype.Event{Type: apitype.EventState, AvatarID: id, State: st}
	if err != nil {
		b := avatarErr(id, err).Body()
		ev.Error = &b
	}
	m.subs.send(ev)
}

func failedEvent(id string, err *errcode.Error, done, total int64, progress float64) apitype.Event {
	b := err.Body()
	return apitype.Event{Type: apitype.EventFailed, AvatarID: id, State: apitype.StateFailed,
		Progress: progress, BytesDone: done, BytesTotal: total, Error: &b}
}

func completedEvent(a *apitype.Avatar) apitype.Event {
	return apitype.Event{Type: apitype.EventCompleted, AvatarID: a.AvatarID, State: apitype.StateCompleted,
		Progress: 1, BytesDone: a.SizeBytes, BytesTotal: a.SizeBytes, Avatar: a}
}
