package store

import "sync"

// commitQueue gathers the index records of blobs whose files are durable
// in blobs/ (Commit has published them), so that commits arriving while
// another holds the index share one bbolt transaction, and one fdatasync:
// a group commit. Only index records are written under it; every file
// was fsynced before it was queued.
type commitQueue struct {
	mu      sync.Mutex
	pending []*pendingCommit
}

type pendingCommit struct {
	digest string
	size   int64
	done   chan error // buffered: the leader never waits on it
}

// commitIndex records blob d (size bytes, its file durable in blobs/) as
// committed. The caller holds d's lock, so no one else commits it. The
// first caller to get wmu writes every record queued by then in one
// transaction; the others find theirs done.
func (s *Store) commitIndex(d string, size int64) error {
	p := &pendingCommit{digest: d, size: size, done: make(chan error, 1)}
	s.commits.mu.Lock()
	s.commits.pending = append(s.commits.pending, p)
	s.commits.mu.Unlock()

	s.wmu.Lock()
	select {
	case err := <-p.done: // a leader wrote it while we waited for wmu
		s.wmu.Unlock()
		return err
	default:
	}
	s.commits.mu.Lock()
	batch := s.commits.pending
	s.commits.pending = nil
	s.commits.mu.Unlock()
	c := newChange()
	now := s.now().UnixNano()
	for _, q := range batch {
		if r, _ := s.blob(c, q.digest); !r.isCommitted() {
			r.size, r.committed = q.size, now
			c.blobs[q.digest] = &r
		}
	}
	var err error
	if len(c.blobs) > 0 {
		err = s.apply(c)
	}
	for _, q := range batch {
		q.done <- err
	}
	s.wmu.Unlock()
	return <-p.done
}
