package bench

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sync"
)

// Origin is the minimal static file server every contender downloads
// from: http.FileServer over the tree (keep-alive, Range, sendfile), an
// ETag from each file's size and modification time as a CDN would give,
// and a count of the body bytes sent per URL path.
type Origin struct {
	root string
	fs   http.Handler

	mu    sync.Mutex
	sent  map[string]int64
	count map[string]int
}

// NewOrigin serves the tree in root.
func NewOrigin(root string) *Origin {
	return &Origin{root: root, fs: http.FileServer(http.Dir(root)), sent: map[string]int64{}, count: map[string]int{}}
}

func (o *Origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := path.Clean("/" + r.URL.Path)
	if fi, err := os.Stat(filepath.Join(o.root, filepath.FromSlash(p))); err == nil && fi.Mode().IsRegular() {
		w.Header().Set("ETag", fmt.Sprintf(`"%x-%x"`, fi.Size(), fi.ModTime().UnixNano()))
	}
	cw := &countingWriter{ResponseWriter: w}
	o.fs.ServeHTTP(cw, r)
	o.mu.Lock()
	o.sent[p] += cw.n
	o.count[p]++
	o.mu.Unlock()
}

// Reset forgets the counts.
func (o *Origin) Reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	clear(o.sent)
	clear(o.count)
}

// Sent returns the body bytes sent and the requests answered per path
// since the last Reset.
func (o *Origin) Sent() (bytes map[string]int64, requests map[string]int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.sent), maps.Clone(o.count)
}

// countingWriter counts body bytes and keeps the ReaderFrom path, so that
// http.FileServer still sends files with sendfile.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := c.ResponseWriter.(io.ReaderFrom).ReadFrom(r)
	c.n += n
	return n, err
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
