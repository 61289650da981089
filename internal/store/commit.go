package store

import (
	"os"
	"sync"
)

// A commit's last steps run as a group commit in two stages, each led by
// the first committer to get its lock for everyone queued by then:
//
//  1. publishQueue: every queued file, already fsynced and checked, is
//     renamed into blobs/, then one fsync of blobs/ makes all the renames
//     durable;
//  2. commitQueue: the records of the published blobs are written in one
//     bbolt transaction (one fdatasync).
//
// So the law holds for each blob (hash → fsync → size+sha256 check →
// rename → directory fsync → index), while the commits arriving together
// share the directory fsync and the index write, and the next batch's
// renames and fsync overlap this batch's index write.

// publishQueue gathers the commits whose files wait for stage 1.
type publishQueue struct {
	run     sync.Mutex // held by the leader of a batch
	mu      sync.Mutex // guards pending
	pending []*pendingCommit
}

// commitQueue gathers the index records of blobs whose files are durable
// in blobs/. Only index records are written under it; every file was
// fsynced, and its rename too, before it was queued.
type commitQueue struct {
	mu      sync.Mutex
	pending []*pendingCommit
}

type pendingCommit struct {
	digest string
	size   int64
	from   string     // the fsynced file that becomes BlobPath(digest)
	failed func()     // after a failed rename, on the file left at from
	done   chan error // buffered: the leader never waits on it
}

// publish renames the fsynced, checked file from into blobs/ as d, makes
// the rename durable and indexes d, in the batches of both stages. The
// caller holds d's lock, so no one else commits it. A failed rename calls
// failed (on the leader's goroutine) before publish returns.
func (s *Store) publish(d string, size int64, from string, failed func()) error {
	p := &pendingCommit{digest: d, size: size, from: from, failed: failed, done: make(chan error, 1)}
	q := &s.publishes
	q.mu.Lock()
	q.pending = append(q.pending, p)
	q.mu.Unlock()

	q.run.Lock()
	q.mu.Lock()
	batch := q.pending // without p when a leader took it while we waited
	q.pending = nil
	q.mu.Unlock()
	if len(batch) > 0 {
		s.publishBatch(batch)
	}
	q.run.Unlock()
	// p is done (failed) or queued for the index: publishBatch took it,
	// ours or a leader's that held run before us.
	return s.awaitIndex(p)
}

// publishBatch is stage 1 for batch: renames, one directory fsync, and
// the records of the blobs now durable queued for the index. A failed
// commit gets its error at once.
func (s *Store) publishBatch(batch []*pendingCommit) {
	moved := batch[:0:0]
	for _, p := range batch {
		if err := os.Rename(p.from, s.BlobPath(p.digest)); err != nil {
			if p.failed != nil {
				p.failed()
			}
			p.done <- storeErr("rename blob "+p.digest, err)
			continue
		}
		moved = append(moved, p)
	}
	if len(moved) == 0 {
		return
	}
	s.dirSyncs.Add(1)
	if err := s.blobDir.Sync(); err != nil {
		// The files stay in blobs/, unindexed: Open's reconcile judges them.
		err = storeErr("fsync blob directory", err)
		for _, p := range moved {
			p.done <- err
		}
		return
	}
	s.commits.mu.Lock()
	s.commits.pending = append(s.commits.pending, moved...)
	s.commits.mu.Unlock()
}

// awaitIndex waits until p is done. p is done or queued in s.commits: the
// first caller to get wmu writes every record queued by then in one
// transaction; the others find theirs done.
func (s *Store) awaitIndex(p *pendingCommit) error {
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
	c := s.newChange()
	defer c.close()
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
