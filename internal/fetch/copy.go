package fetch

import (
	"errors"
	"io"
	"sync"

	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/manifest"
)

// copyBody streams the body into sink, never past Size: a longer body is
// cut off and rejected, a shorter one fails transiently so that the retry
// resumes from where it ended. Large bodies are read ahead by one
// goroutine (pump) so that the network and the sink's hashing and writing
// overlap.
func (c *Client) copyBody(t target, body io.Reader, a manifest.Asset, sink Sink, progress func(int64)) error {
	remaining := a.Size - sink.Size()
	put := func(p []byte, rerr error) (done bool, err error) {
		if len(p) > 0 {
			w := int(min(int64(len(p)), remaining))
			if w > 0 {
				wn, werr := sink.Write(p[:w])
				if wn > 0 {
					remaining -= int64(wn)
					c.ctr.bytes.Add(uint64(wn))
					progress(int64(wn))
				}
				if werr == nil && wn < w {
					werr = io.ErrShortWrite
				}
				if werr != nil {
					return true, &stop{t.storage(werr)}
				}
			}
			if len(p) > w {
				e := t.err(errs.FailedToDownloadAvatarAssets, errs.ReasonSizeMismatch, true,
					"%s: the body is longer than its size %d", t.what(), a.Size)
				e.Err = errTooLong
				return true, &stop{e}
			}
		}
		switch {
		case rerr == io.EOF && remaining > 0:
			return true, t.err(t.fail(), errs.ReasonSizeMismatch, true, "%s: the body ended %d bytes short; resuming", t.what(), remaining)
		case rerr == io.EOF:
			return true, nil
		case rerr != nil:
			return true, t.network(rerr)
		}
		return false, nil
	}
	if remaining > 2*copyBufferSize {
		return c.pump(body, put)
	}
	bp := c.buffer()
	defer c.release(bp)
	for {
		n, rerr := body.Read(*bp)
		if done, err := put((*bp)[:n], rerr); done {
			return err
		}
	}
}

// pump reads body in one goroutine and hands each read to put in the
// caller's, through a ring of pumpBuffers buffers. The reader is stopped
// (its attempt cancelled) and waited for before pump returns.
func (c *Client) pump(body io.Reader, put func(p []byte, rerr error) (bool, error)) error {
	const pumpBuffers = 3
	type chunk struct {
		buf *[]byte
		n   int
		err error
	}
	bufs := make([]*[]byte, pumpBuffers)
	free := make(chan *[]byte, pumpBuffers)
	full := make(chan chunk, pumpBuffers) // never blocks: it holds every buffer
	for i := range bufs {
		bufs[i] = c.buffer()
		free <- bufs[i]
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			var bp *[]byte
			select {
			case bp = <-free:
			case <-quit:
				return
			}
			n, err := body.Read(*bp)
			full <- chunk{bp, n, err}
			if err != nil {
				return
			}
		}
	}()
	var err error
	for {
		ch := <-full
		var done bool
		if done, err = put((*ch.buf)[:ch.n], ch.err); done {
			if ch.err == nil {
				abortRead(body) // unblock a read in flight
			}
			break
		}
		free <- ch.buf
	}
	close(quit)
	wg.Wait()
	for _, bp := range bufs {
		c.release(bp)
	}
	return err
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
