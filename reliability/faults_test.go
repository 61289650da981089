package reliability

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/fetch"
	"github.com/assetd/assetd/internal/manager"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/store"
	"github.com/assetd/assetd/internal/testkit"
)

// The avatar every fault row loads: one 64 KiB asset.
const (
	faultID   = "rohan"
	faultPath = "model.bin"
	blobSize  = 64 << 10
)

var (
	blobData = func() []byte {
		b := make([]byte, blobSize)
		for i := range b {
			b[i] = byte(i*7 + i>>8)
		}
		return b
	}()
	blobSum = func() string { s := sha256.Sum256(blobData); return hex.EncodeToString(s[:]) }()
)

// manifestDoc is the avatar's manifest with assets given as raw JSON.
func manifestDoc(assets string) []byte {
	return []byte(`{"schema":1,"avatarId":"` + faultID + `","version":"1","assets":[` + assets + `]}`)
}

func goodManifest() []byte {
	return manifestDoc(fmt.Sprintf(`{"path":%q,"size":%d,"sha256":%q}`, faultPath, blobSize, blobSum))
}

// faultOrigin counts requests by kind and hands each to the row's handler
// with its 1-based number; nil handlers answer correctly.
type faultOrigin struct {
	srv      *httptest.Server
	conns    atomic.Int32 // TCP connections accepted
	manifest func(w http.ResponseWriter, r *http.Request, n int)
	blob     func(w http.ResponseWriter, r *http.Request, n int)

	mu        sync.Mutex
	manifests int
	blobs     int
	starts    []int64 // the Range offset of each blob request
	other     int     // requests to any other path
}

// originKey carries the faultOrigin in a request's context.
type originKey struct{}

// listenerOf is the listener of the origin that got r.
func listenerOf(r *http.Request) net.Listener {
	if o, ok := r.Context().Value(originKey{}).(*faultOrigin); ok {
		return o.srv.Listener
	}
	return nil
}

func (o *faultOrigin) serve(w http.ResponseWriter, r *http.Request) {
	r = r.WithContext(context.WithValue(r.Context(), originKey{}, o))
	p := r.URL.Path
	o.mu.Lock()
	switch {
	case p == "/v1/avatars/"+faultID+"/manifest":
		o.manifests++
		n := o.manifests
		o.mu.Unlock()
		if o.manifest != nil {
			o.manifest(w, r, n)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(goodManifest())
	case strings.HasPrefix(p, "/v1/blobs/sha256/"):
		o.blobs++
		n := o.blobs
		start := testkit.RangeStart(r)
		o.starts = append(o.starts, start)
		o.mu.Unlock()
		if o.blob != nil {
			o.blob(w, r, n)
			return
		}
		serveBlob(w, r, blobData)
	default:
		o.other++
		o.mu.Unlock()
		o.otherPath(w, r)
	}
}

// otherPath serves the redirect targets of some rows.
func (o *faultOrigin) otherPath(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/loop" {
		http.Redirect(w, r, "/loop", http.StatusFound)
		return
	}
	http.NotFound(w, r)
}

func (o *faultOrigin) counts() (manifests, blobs int, starts []int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.manifests, o.blobs, append([]int64(nil), o.starts...)
}

// serveBlob answers a blob request with data, honouring "bytes=N-".
func serveBlob(w http.ResponseWriter, r *http.Request, data []byte) {
	start := testkit.RangeStart(r)
	if start > int64(len(data)) {
		start = 0
	}
	w.Header().Set("Content-Length", strconv.FormatInt(int64(len(data))-start, 10))
	if start > 0 {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
		w.WriteHeader(http.StatusPartialContent)
	}
	w.Write(data[start:])
}

// resetAfter writes n bytes of the blob under a full Content-Length, then
// resets the connection (RST, not FIN).
func resetAfter(w http.ResponseWriter, r *http.Request, n int) {
	start := testkit.RangeStart(r)
	w.Header().Set("Content-Length", strconv.FormatInt(int64(blobSize)-start, 10))
	if start > 0 {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, blobSize-1, blobSize))
		w.WriteHeader(http.StatusPartialContent)
	}
	end := min(start+int64(n), blobSize)
	w.Write(blobData[start:end])
	w.(http.Flusher).Flush()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// cutShort writes half the body under the full Content-Length and ends the
// handler: the server closes the connection with the body short.
func cutShort(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", strconv.Itoa(blobSize))
	w.Write(blobData[:blobSize/2])
}

func jsonError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"code":%q,"message":"fault origin"}`, code)
}

// gzipBomb is a manifest that is 16 MiB of JSON whitespace once
// decompressed and a few tens of KiB on the wire.
var gzipBomb = sync.OnceValue(func() []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write([]byte(`{"schema":1,"avatarId":"rohan","version":"1","assets":[`))
	spaces := bytes.Repeat([]byte(" "), 1<<20)
	for range 16 {
		zw.Write(spaces)
	}
	zw.Write([]byte(`]}`))
	zw.Close()
	return buf.Bytes()
})

// millionAssets streams a manifest of a million assets (about 100 MB)
// until the reader stops reading.
func millionAssets(w http.ResponseWriter, _ *http.Request, _ int) {
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write([]byte(`{"schema":1,"avatarId":"rohan","version":"1","assets":[`)); err != nil {
		return
	}
	var line []byte
	for i := range 1_000_000 {
		line = line[:0]
		if i > 0 {
			line = append(line, ',')
		}
		line = fmt.Appendf(line, `{"path":"a/%d","size":1,"sha256":%q}`, i, blobSum)
		if _, err := w.Write(line); err != nil {
			return
		}
	}
	w.Write([]byte(`]}`))
}

// manyAssets is a manifest of n empty assets, compact enough to stay
// under the 1 MiB manifest limit for n = 10,001.
func manyAssets(n int) []byte {
	var b strings.Builder
	empty := sha256.Sum256(nil)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"path":"%x","size":0,"sha256":"%x"}`, i, empty)
	}
	return manifestDoc(b.String())
}

// faultKey signs the manifests of the signature rows.
var faultKey = func() (k struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
}) {
	k.pub, k.priv, _ = ed25519.GenerateKey(rand.Reader)
	return k
}()

// duplicateAssets is goodManifest signed by faultKey, with a hostile
// "assets" member put before the signed one: its one asset is the same
// file at a url on the origin's blob path that the signer never wrote.
// A reader that keeps the first copy's url and a verifier that reads the
// last copy would both be satisfied.
func duplicateAssets() []byte {
	signed, err := manifest.Sign(goodManifest(), "k1", faultKey.priv)
	if err != nil {
		panic(err)
	}
	evil := fmt.Sprintf(`{"assets":[{"path":%q,"size":%d,"sha256":%q,"url":"/v1/blobs/sha256/%s/unsigned"}],`,
		faultPath, blobSize, blobSum, blobSum)
	return append([]byte(evil), signed[1:]...)
}

func serveJSON(doc []byte) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}
}

// want is what a row's load must end with: the error's code, reason and
// transient flag ("" code = success) and the requests the origin saw.
type want struct {
	code      errcode.Code
	reason    string
	transient bool
	status    int // the error's HTTPStatus, when not 0
	manifests int
	blobs     int
	conns     int // TCP connections, when not 0 (the TLS row sees no request)
	resumed   bool
}

type faultRow struct {
	name, fault string
	tls         bool
	cfg         func(*fetch.Config)
	manifest    func(http.ResponseWriter, *http.Request, int)
	blob        func(http.ResponseWriter, *http.Request, int)
	want        want
}

// The retry budget of every row: max_retries 2 (three requests at most
// per resource) and the default two re-downloads after a mismatch.
const faultRetries = 2

func faultRows() []faultRow {
	return []faultRow{
		{name: "reset-mid-body-once", fault: "connection reset (RST) after 16 KiB of the blob, once",
			blob: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					resetAfter(w, r, 16<<10)
					return
				}
				serveBlob(w, r, blobData)
			},
			want: want{manifests: 1, blobs: 2, resumed: true}},
		{name: "reset-mid-body-always", fault: "connection reset after 8 KiB of every blob answer",
			blob: func(w http.ResponseWriter, r *http.Request, _ int) { resetAfter(w, r, 8<<10) },
			want: want{code: errcode.FailedToDownloadAvatarAssets, reason: errcode.ReasonNetwork, transient: true,
				manifests: 1, blobs: faultRetries + 1}},
		{name: "short-body", fault: "body cut at half under a correct Content-Length, every time",
			blob: func(w http.ResponseWriter, r *http.Request, _ int) { cutShort(w, r) },
			want: want{code: errcode.FailedToDownloadAvatarAssets, reason: errcode.ReasonNetwork, transient: true,
				manifests: 1, blobs: faultRetries + 1}},
		{name: "wrong-bytes", fault: "right size, one byte flipped, every time",
			blob: func(w http.ResponseWriter, r *http.Request, _ int) {
				b := append([]byte(nil), blobData...)
				b[blobSize/2] ^= 0x55
				serveBlob(w, r, b)
			},
			want: want{code: errcode.FailedToDownloadAvatarAssets, reason: errcode.ReasonHashMismatch, transient: true,
				manifests: 1, blobs: fetch.DefaultMaxHashRetries + 1}},
		{name: "trickle", fault: "blob sent at one byte a second (stall window 400ms, floor 1 KiB/s)",
			blob: func(w http.ResponseWriter, r *http.Request, _ int) {
				w.Header().Set("Content-Length", strconv.Itoa(blobSize))
				tick := time.NewTicker(time.Second)
				defer tick.Stop()
				for i := 0; i < blobSize; i++ {
					if _, err := w.Write(blobData[i : i+1]); err != nil {
						return
					}
					w.(http.Flusher).Flush()
					select {
					case <-tick.C:
					case <-r.Context().Done():
						return
					}
				}
			},
			want: want{code: errcode.FailedToDownloadAvatarAssets, reason: errcode.ReasonStalled, transient: true,
				manifests: 1, blobs: faultRetries + 1}},
		{name: "503-then-200", fault: "manifest answers 503 once, then 200",
			manifest: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				serveJSON(goodManifest())(w, r, n)
			},
			want: want{manifests: 2, blobs: 1}},
		{name: "429-retry-after-1s", fault: "manifest answers 429 with Retry-After: 1 once, then 200",
			cfg: func(c *fetch.Config) { c.RetryWaitMax = 3 * time.Second },
			manifest: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					w.Header().Set("Retry-After", "1")
					jsonError(w, http.StatusTooManyRequests, "concurrentLimitExceeded")
					return
				}
				serveJSON(goodManifest())(w, r, n)
			},
			want: want{manifests: 2, blobs: 1}},
		{name: "429-retry-after-long", fault: "manifest answers 429 with Retry-After: 3600 (over retry_wait_max)",
			manifest: func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.Header().Set("Retry-After", "3600")
				jsonError(w, http.StatusTooManyRequests, "concurrentLimitExceeded")
			},
			want: want{code: errcode.ConcurrentLimitExceeded, reason: errcode.ReasonRetryAfterTooLong, transient: true,
				status: 429, manifests: 1}},
		{name: "500-forever-manifest", fault: "manifest answers 500 (HTML page) forever",
			manifest: func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusInternalServerError)
				io.WriteString(w, "<h1>oops</h1>")
			},
			want: want{code: errcode.FailedToFetchAvatarMetadata, reason: "http500", transient: true,
				status: 500, manifests: faultRetries + 1}},
		{name: "500-forever-json", fault: "manifest answers 500 with a JSON error body forever",
			manifest: func(w http.ResponseWriter, _ *http.Request, _ int) {
				jsonError(w, http.StatusInternalServerError, "internal")
			},
			want: want{code: errcode.ServerError, transient: true, status: 500, manifests: faultRetries + 1}},
		{name: "500-forever-blob", fault: "blob answers 500 forever",
			blob: func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusInternalServerError) },
			want: want{code: errcode.FailedToDownloadAvatarAssets, reason: "http500", transient: true,
				status: 500, manifests: 1, blobs: faultRetries + 1}},
		{name: "redirect-loop", fault: "manifest redirects to a URL that redirects to itself",
			manifest: func(w http.ResponseWriter, r *http.Request, _ int) {
				http.Redirect(w, r, "/loop", http.StatusFound)
			},
			want: want{code: errcode.FailedToFetchAvatarMetadata, reason: errcode.ReasonTooManyRedirects, manifests: 1}},
		{name: "redirect-file", fault: "manifest redirects to file:///etc/passwd",
			manifest: func(w http.ResponseWriter, r *http.Request, _ int) {
				http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
			},
			want: want{code: errcode.FailedToFetchAvatarMetadata, reason: errcode.ReasonInsecure, manifests: 1}},
		{name: "manifest-2MiB", fault: "a valid-looking manifest padded to 2 MiB",
			manifest: serveJSON(append(goodManifest()[:len(goodManifest())-1], append(bytes.Repeat([]byte(" "), 2<<20), '}')...)),
			want:     want{code: errcode.FailedToFetchAvatarMetadata, reason: errcode.ReasonInvalidManifest, manifests: 1}},
		{name: "manifest-dotdot", fault: `an asset path "../../etc/cron.d/x"`,
			manifest: serveJSON(manifestDoc(fmt.Sprintf(`{"path":"../../etc/cron.d/x","size":%d,"sha256":%q}`, blobSize, blobSum))),
			want:     want{code: errcode.FailedToFetchAvatarMetadata, reason: errcode.ReasonInvalidManifest, manifests: 1}},
		{name: "manifest-absolute", fault: `an asset path "/etc/passwd"`,
			manifest: serveJSON(manifestDoc(fmt.Sprintf(`{"path":"/etc/passwd","size":%d,"sha256":%q}`, blobSize, blobSum))),
			want:     want{code: errcode.FailedToFetchAvatarMetadata, reason: errcode.ReasonInvalidManifest, manifests: 1}},
		{name: "manifest-million-assets", fault: "a manifest of a million assets (~100 MB, streamed)",
			manifest: millionAssets,
			want:     want{code: errcode.FailedToFetchAvatarMetadata, reason: errcode.ReasonInvalidManifest, manifests: 1}},
		{name: "manifest-10001-assets", fault: "10,001 assets in under 1 MiB (limit 10,000)",
			manifest: serveJSON(manyAssets(10_001)),
			want:     want{code: errcode.FailedToFetchAvatarMetadata, reason: errcode.ReasonInvalidManifest, manifests: 1}},
		{name: "size-2^62", fault: "an asset of size 2^62",
			manifest: serveJSON(manifestDoc(fmt.Sprintf(`{"path":"big","size":%d,"sha256":%q}`, int64(1)<<62, blobSum))),
			want:     want{code: errcode.FailedToFetchAvatarMetadata, reason: errcode.ReasonInvalidManifest, manifests: 1}},
		{name: "content-length-long", fault: "blob's Content-Length twice the manifest's size",
			blob: func(w http.ResponseWriter, r *http.Request, _ int) {
				serveBlob(w, r, append(append([]byte(nil), blobData...), blobData...))
			},
			want: want{code: errcode.FailedToDownloadAvatarAssets, reason: errcode.ReasonSizeMismatch, transient: true,
				manifests: 1, blobs: fetch.DefaultMaxHashRetries + 1}},
		{name: "content-length-short", fault: "blob's Content-Length (and body) half the manifest's size",
			blob: func(w http.ResponseWriter, r *http.Request, _ int) {
				serveBlob(w, r, blobData[:blobSize/2])
			},
			want: want{code: errcode.FailedToDownloadAvatarAssets, reason: errcode.ReasonSizeMismatch, transient: true,
				manifests: 1, blobs: fetch.DefaultMaxHashRetries + 1}},
		{name: "gzip-bomb", fault: fmt.Sprintf("manifest gzip-encoded: %d KiB on the wire, 16 MiB inflated", len(gzipBomb())>>10),
			manifest: func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Encoding", "gzip")
				w.Write(gzipBomb())
			},
			want: want{code: errcode.FailedToFetchAvatarMetadata, reason: errcode.ReasonInvalidManifest, manifests: 1}},
		{name: "tls-untrusted", fault: "https origin with a self-signed certificate (not retried: only origin.ca_file or the system roots can fix it)",
			tls:  true,
			want: want{code: errcode.FailedToFetchAvatarMetadata, reason: errcode.ReasonInsecure, conns: 1}},
		{name: "origin-goes-away", fault: "blob sends 16 KiB, then the origin closes its listener and the connection (connection refused from then on)",
			blob: func(w http.ResponseWriter, r *http.Request, _ int) {
				w.Header().Set("Content-Length", strconv.Itoa(blobSize))
				w.Write(blobData[:16<<10])
				w.(http.Flusher).Flush()
				if ln := listenerOf(r); ln != nil {
					ln.Close()
				}
				if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					conn.Close()
				}
			},
			want: want{code: errcode.FailedToDownloadAvatarAssets, reason: errcode.ReasonNetwork, transient: true,
				manifests: 1, blobs: 1}},
		{name: "range-ignored", fault: "reset after 16 KiB, then the origin ignores Range and answers 200 with the whole blob",
			blob: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					resetAfter(w, r, 16<<10)
					return
				}
				w.Header().Set("Content-Length", strconv.Itoa(blobSize))
				w.Write(blobData)
			},
			want: want{manifests: 1, blobs: 2}},
		{name: "range-wrong-offset", fault: "reset after 16 KiB, then a 206 whose Content-Range and body start at 0, not at the offset asked for (refused, partial dropped, fetched again from 0)",
			blob: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					resetAfter(w, r, 16<<10)
					return
				}
				w.Header().Set("Content-Length", strconv.Itoa(blobSize))
				w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", blobSize-1, blobSize))
				w.WriteHeader(http.StatusPartialContent)
				w.Write(blobData)
			},
			want: want{manifests: 1, blobs: 3}},
		{name: "range-416", fault: "reset after 16 KiB, then 416 Range Not Satisfiable to the resume, then 200",
			blob: func(w http.ResponseWriter, r *http.Request, n int) {
				switch {
				case n == 1:
					resetAfter(w, r, 16<<10)
				case r.Header.Get("Range") != "":
					w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", blobSize))
					w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
				default:
					serveBlob(w, r, blobData)
				}
			},
			want: want{manifests: 1, blobs: 3}},
		{name: "captive-portal", fault: "manifest answered 200 with an HTML login page (a captive portal): named as an HTML page with its URL, retried",
			manifest: func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.Header().Set("Content-Type", "text/html")
				io.WriteString(w, "<html><body>Please log in to the Wi-Fi</body></html>")
			},
			want: want{code: errcode.FailedToFetchAvatarMetadata, reason: errcode.ReasonHTMLAnswer, transient: true, manifests: faultRetries + 1}},
		{name: "304-unasked", fault: "manifest answered 304 Not Modified to a request without If-None-Match",
			manifest: func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusNotModified) },
			want:     want{code: errcode.FailedToFetchAvatarMetadata, reason: "http304", manifests: 1}},
		{name: "blob-redirect-file", fault: "blob redirects to file:///etc/passwd",
			blob: func(w http.ResponseWriter, r *http.Request, _ int) {
				http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
			},
			want: want{code: errcode.FailedToDownloadAvatarAssets, reason: errcode.ReasonInsecure, manifests: 1, blobs: 1}},
		{name: "signed-duplicate-assets", fault: `trusted_keys set; the signed manifest with a second "assets" member (its url the signer never wrote) placed before the signed one`,
			cfg:      func(c *fetch.Config) { c.TrustedKeys = []ed25519.PublicKey{faultKey.pub} },
			manifest: serveJSON(duplicateAssets()),
			want:     want{code: errcode.FailedToFetchAvatarMetadata, reason: errcode.ReasonInvalidManifest, manifests: 1}},
		{name: "stops-answering", fault: "blob sends 32 KiB then nothing, connection open (attempt_timeout 1s)",
			cfg: func(c *fetch.Config) {
				c.AttemptTimeout = time.Second
				c.StallMinBytesPerSecond = -1
			},
			blob: func(w http.ResponseWriter, r *http.Request, _ int) {
				w.Header().Set("Content-Length", strconv.Itoa(blobSize))
				w.Write(blobData[:blobSize/2])
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			},
			want: want{code: errcode.FailedToDownloadAvatarAssets, reason: errcode.ReasonTimeout, transient: true,
				manifests: 1, blobs: faultRetries + 1}},
	}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestFaults drives each fault row through the real store, fetcher and
// manager and checks the exact error and the requests the origin saw.
func TestFaults(t *testing.T) {
	for _, row := range faultRows() {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			got, m, b := runFault(t, row)
			faultTable.add(t, row.fault, got, fmt.Sprintf("%d / %d", m, b))
		})
	}
}

// runFault loads the avatar through a fresh stack against the row's origin
// and checks the outcome; it returns the outcome in words and the counts.
func runFault(t *testing.T, row faultRow) (string, int, int) {
	o := &faultOrigin{manifest: row.manifest, blob: row.blob}
	if row.tls {
		o.srv = httptest.NewUnstartedServer(http.HandlerFunc(o.serve))
		o.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				o.conns.Add(1)
			}
		}
		o.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
		o.srv.StartTLS()
	} else {
		o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	}
	t.Cleanup(o.srv.Close)

	cfg := fetch.Config{
		BaseURL:                o.srv.URL,
		AppID:                  "reliability",
		MaxRetries:             faultRetries,
		RetryWaitMin:           time.Millisecond,
		RetryWaitMax:           10 * time.Millisecond,
		AttemptTimeout:         5 * time.Second,
		StallWindow:            400 * time.Millisecond,
		StallMinBytesPerSecond: 1024,
		Logger:                 quiet(),
	}
	if row.cfg != nil {
		row.cfg(&cfg)
	}
	f, err := fetch.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	dir := filepath.Join(t.TempDir(), "store")
	st, err := store.Open(dir, store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	m := manager.New(st, f, manager.Options{Logger: quiet()})
	defer func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	av, err := m.Load(ctx, faultID, manager.LoadOptions{})
	mans, blobs, starts := o.counts()
	w := row.want
	var outcome string
	if w.code == "" {
		if err != nil {
			t.Fatalf("load failed: %v", err)
		}
		if len(av.Assets) != 1 {
			t.Fatalf("assets %+v", av.Assets)
		}
		data, err := os.ReadFile(av.Assets[0].LocalPath)
		if err != nil || !bytes.Equal(data, blobData) {
			t.Fatalf("the stored file differs from the origin's (%v)", err)
		}
		outcome = "ready, bytes verified"
		if w.resumed {
			if len(starts) < 2 || starts[0] != 0 || starts[len(starts)-1] == 0 {
				t.Errorf("blob request offsets %v: want a resumed request", starts)
			}
			outcome += fmt.Sprintf(", resumed at byte %d", starts[len(starts)-1])
		}
	} else {
		e := errs.From(err)
		if e == nil {
			t.Fatalf("load succeeded, want %s/%s", w.code, w.reason)
		}
		if e.Code != w.code || e.Reason != w.reason || e.Transient != w.transient {
			t.Errorf("error %s reason %q transient %v, want %s reason %q transient %v\n%v",
				e.Code, e.Reason, e.Transient, w.code, w.reason, w.transient, e)
		}
		if w.status != 0 && e.HTTPStatus != w.status {
			t.Errorf("httpStatus %d, want %d", e.HTTPStatus, w.status)
		}
		if e.AvatarID != faultID {
			t.Errorf("avatarId %q, want %q", e.AvatarID, faultID)
		}
		if _, ok := st.Get(faultID); ok {
			t.Errorf("the failed avatar is in the store")
		}
		if st.HasBlob(blobSum) {
			t.Errorf("a blob is committed after a failed load")
		}
		outcome = fmt.Sprintf("`%s`", e.Code)
		if e.Reason != "" {
			outcome += fmt.Sprintf(" reason `%s`", e.Reason)
		}
		outcome += fmt.Sprintf(", transient=%v", e.Transient)
	}
	if mans != w.manifests || blobs != w.blobs {
		t.Errorf("origin saw %d manifest and %d blob requests, want %d and %d", mans, blobs, w.manifests, w.blobs)
	}
	if w.conns != 0 {
		if n := int(o.conns.Load()); n != w.conns {
			t.Errorf("origin saw %d TLS connections, want %d", n, w.conns)
		}
		outcome += fmt.Sprintf(", %d TLS handshakes refused", o.conns.Load())
	}
	checkInside(t, filepath.Dir(dir), dir)
	return outcome, mans, blobs
}

// checkInside fails if anything under parent but outside dir exists.
func checkInside(t *testing.T, parent, dir string) {
	t.Helper()
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if p := filepath.Join(parent, e.Name()); p != dir {
			t.Errorf("a file outside the store: %s", p)
		}
	}
}

// jsonValid is a sanity check of the generated documents.
func TestFaultDocuments(t *testing.T) {
	for name, doc := range map[string][]byte{"good": goodManifest(), "10001": manyAssets(10_001)} {
		if !json.Valid(doc) {
			t.Fatalf("%s manifest is not JSON", name)
		}
	}
	if n := len(manyAssets(10_001)); n >= 1<<20 {
		t.Fatalf("the 10,001-asset manifest is %d bytes, not under 1 MiB", n)
	}
}
