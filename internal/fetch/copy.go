package fetch

import (
	"errors"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/manifest"
)

// copyBody streams the body into sink, never past Size: a longer body is
// cut off and rejected, a shorter one fails transiently so that the retry
// resumes from where it ended. Large bodies are read ahead by one
// goroutine (pump) so that the network and the sink's hashing and writing
// overlap.
func (c *Client) copyBody(t target, body io.Reader, a manifest.Asset, sink Sink, progress func(int64)) error {
	remaining := a.Size - sink.Size()
	large := remaining > 2*copyBufferSize
	write := sink.Write
	var hash func([]byte) // nil: write hashes
	if ss, ok := sink.(SplitSink); ok && large {
		write, hash = ss.Store, ss.Hash
	}
	// put hands one read to the sink and says how many of its bytes the
	// sink took: with a SplitSink, the bytes hash must get next.
	put := func(p []byte, rerr error) (stored int, done bool, err error) {
		if len(p) > 0 {
			w := int(min(int64(len(p)), remaining))
			if w > 0 {
				wn, werr := write(p[:w])
				stored = max(wn, 0)
				if wn > 0 {
					remaining -= int64(wn)
					c.ctr.bytes.Add(uint64(wn))
					progress(int64(wn))
				}
				if werr == nil && wn < w {
					werr = io.ErrShortWrite
				}
				if werr != nil {
					return stored, true, &stop{t.storage(werr)}
				}
			}
			if len(p) > w {
				e := t.err(errcode.FailedToDownloadAvatarAssets, errcode.ReasonSizeMismatch, true,
					"%s: the body is longer than its size %d", t.what(), a.Size)
				e.Err = errTooLong
				return stored, true, &stop{e}
			}
		}
		switch {
		case rerr == io.EOF && remaining > 0:
			return stored, true, t.err(t.fail(), errcode.ReasonSizeMismatch, true, "%s: the body ended %d bytes short; resuming", t.what(), remaining)
		case rerr == io.EOF:
			return stored, true, nil
		case rerr != nil:
			return stored, true, t.network(rerr)
		}
		return stored, false, nil
	}
	if large {
		return c.pump(body, put, hash)
	}
	bp := c.buffer()
	defer c.release(bp)
	for {
		n, rerr := body.Read(*bp)
		if _, done, err := put((*bp)[:n], rerr); done {
			return err
		}
	}
}

// SplitSink is a Sink that can store and hash the same bytes on two
// goroutines at once (store.Writer is one). For a large body Download
// calls Store in place of Write, and Hash, on another goroutine, with the
// bytes each Store took, in the same order: writing one read to the file
// overlaps hashing the read before it. On a fast link those are a
// download's two costs, and one goroutine doing both held the pipeline
// near one core. Every Hash has returned before Download calls Size,
// Digest or Truncate, and before it returns.
type SplitSink interface {
	Sink
	Store(p []byte) (int, error) // Write without the hash
	Hash(p []byte)               // hash the next bytes Store took
}

// pump reads body in one goroutine and hands its reads to put in the
// caller's, through a ring of pumpBuffers chunks; a third goroutine hashes
// what put stored (SplitSink; hash is nil otherwise) and only then frees
// the chunk. A chunk takes reads of up to copyBufferSize (the bandwidth
// limiter's burst) while unlimited, up to pumpChunk or for at most
// fillFor: on a fast link one hand-off then carries several reads, and
// each hand-off wakes a goroutine that, on a busy machine, waits for a CPU
// (the scheduler's latency, not the copying, held the download near one
// core). The caller yields after each hand-off to the hasher: see
// yieldToHasher. The reader is stopped (its attempt cancelled) and both
// goroutines are waited for before pump returns, every stored byte
// hashed.
func (c *Client) pump(body io.Reader, put func(p []byte, rerr error) (int, bool, error), hash func([]byte)) error {
	type chunk struct {
		buf *[]byte
		n   int
		err error
	}
	bufs := make([]*[]byte, pumpBuffers)
	free := make(chan *[]byte, pumpBuffers)
	full := make(chan chunk, pumpBuffers)  // never blocks: it holds every chunk
	hashq := make(chan chunk, pumpBuffers) // nor this
	for i := range bufs {
		bufs[i] = c.chunk()
		free <- bufs[i]
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			var bp *[]byte
			select {
			case bp = <-free:
			case <-quit:
				return
			}
			n, err := readChunk(body, *bp)
			full <- chunk{bp, n, err}
			if err != nil {
				return
			}
		}
	})
	wg.Go(func() {
		for ch := range hashq {
			if ch.n > 0 && hash != nil {
				hash((*ch.buf)[:ch.n])
			}
			free <- ch.buf
		}
	})
	var err error
	for {
		ch := <-full
		stored, done, perr := put((*ch.buf)[:ch.n], ch.err)
		hashq <- chunk{buf: ch.buf, n: stored}
		if hash != nil {
			yieldToHasher()
		}
		if done {
			if err = perr; ch.err == nil {
				abortRead(body) // unblock a read in flight
			}
			break
		}
	}
	close(quit)
	close(hashq)
	wg.Wait()
	for _, bp := range bufs {
		c.releaseChunk(bp)
	}
	return err
}

// yieldToHasher lets the hasher, just handed a chunk, run on the caller's
// CPU at once. Hashing is the pipeline's longest stage (sha256 is about
// half of a download's CPU and cannot be split), so a download is only as
// fast as its hasher is kept busy. A goroutine woken by a
// channel send waits in the sender's run queue (runnext) until the sender
// blocks or another P takes it; the caller's next step is a file write,
// a system call of ~100 µs per 512 KiB that keeps its P, and on 2 cores
// the other P is usually busy reading the network. A trace of
// BenchmarkDownload showed the hasher runnable but not running for
// 150-250 µs at a time, ~4 ms per 64 MiB (~9% of the download); with the
// yield it is ~0.1 ms. The caller, whose work is not the bottleneck,
// continues on the next free P. The cost is a trip through the scheduler
// (~1 µs) per chunk handed over.
func yieldToHasher() { runtime.Gosched() }

// readChunk fills p with reads of up to copyBufferSize while no bandwidth
// limit is in force (a limited read waited for the bucket: the link is
// slow, and its bytes, progress and share are due at once), for at most
// fillFor: a slow link's bytes are handed on within that.
func readChunk(r io.Reader, p []byte) (int, error) {
	n := 0
	var start time.Time
	for n < len(p) {
		k, err := r.Read(p[n : n+min(len(p)-n, copyBufferSize)])
		n += k
		if err != nil || limited(r) {
			return n, err
		}
		if start.IsZero() {
			start = time.Now()
		} else if time.Since(start) >= fillFor {
			break
		}
	}
	return n, nil
}

// fillFor bounds how long a pump chunk gathers reads.
const fillFor = 20 * time.Millisecond

// limited tells whether a bandwidth limit paces r.
func limited(r io.Reader) bool {
	b, ok := r.(*body)
	return !ok || b.bw.limiter() != nil
}

// errAborted cancels a body read that is no longer wanted.
var errAborted = errors.New("download aborted")

func abortRead(r io.Reader) {
	switch b := r.(type) {
	case *body:
		b.cancel(errAborted)
	case io.Closer:
		b.Close()
	}
}
