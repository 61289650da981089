package store

import "sync"

// A Lease keeps blobs from being collected while its owner needs them, as
// containerd's leases do: a load leases the digests of the version it is
// about to make current, so that making room for it (EnsureSpace), a Put or
// Delete of another avatar, and the collection of unreferenced blobs leave
// them alone until its Put has referenced them. A leased digest with no
// reference stays committed (an orphan) after the lease goes, and is
// collected as any orphan is. Leases live in memory only: a new process
// starts with none.
//
// A lease does not protect a blob from RemoveBlob: damaged bytes go
// whoever needs them.
type Lease struct {
	s       *Store
	digests []string
	once    sync.Once
}

// Lease leases digests until Release. Digests need not be committed yet:
// a blob committed while leased is protected from then on.
func (s *Store) Lease(digests ...string) *Lease {
	l := &Lease{s: s, digests: append([]string(nil), digests...)}
	s.lmu.Lock()
	if s.leases == nil {
		s.leases = map[string]int{}
	}
	for _, d := range l.digests {
		s.leases[d]++
	}
	s.lmu.Unlock()
	return l
}

// Release ends the lease; further calls do nothing.
func (l *Lease) Release() {
	l.once.Do(func() {
		s := l.s
		s.lmu.Lock()
		for _, d := range l.digests {
			if s.leases[d]--; s.leases[d] <= 0 {
				delete(s.leases, d)
			}
		}
		s.lmu.Unlock()
	})
}

// leased reports whether some lease holds d.
func (s *Store) leased(d string) bool {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	return s.leases[d] > 0
}
