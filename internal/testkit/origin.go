package testkit

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Origin is the one fake origin of assetd's tests: an httptest server
// speaking the origin protocol (docs/origin-protocol.md) — manifests with
// ETag, max-age and 304 to If-None-Match, optionally signed; blobs with
// "bytes=N-" ranges — that counts what it answers. Its faults are set at
// any time: a status for every request (SetStatus) or for blobs
// (SetBlobStatus), corrupted blobs (SetCorrupt), a slow body (SetDelay),
// bodies held mid-way (HoldBlob, HoldBlobs), a required token (SetToken),
// a withdrawn avatar (Withdraw). A test that needs an answer the protocol
// does not give registers its own handler for a path (Handle); every
// request, handled there or not, is counted by path and its headers kept.
// Chunk and Gen are set before the first request.
type Origin struct {
	Srv   *httptest.Server
	Chunk int                     // blob bytes per write (32 KiB)
	Gen   func(id string) *Avatar // makes unknown avatars on demand, when set

	BytesSent atomic.Int64 // blob bytes written (a Handle handler adds its own)
	Ranged    atomic.Int64 // blob requests that resumed with Range
	BlobReqs  atomic.Int64 // requests for a blob the origin has

	mux      *http.ServeMux // Handle's handlers, ahead of the protocol's
	inflight atomic.Int32   // blob bodies being written

	mu        sync.Mutex
	avatars   map[string]*Avatar // the current version
	history   map[string]*Avatar // every version served, by "id@version"
	blobs     map[string][]byte
	token     string        // required as a bearer token when not ""
	maxAge    int           // Cache-Control max-age in seconds; 0: none
	delay     time.Duration // pause after each chunk: a slow origin
	status    int           // answers every manifest and blob request when not 0
	blobFail  int           // answers every blob request when not 0
	corrupt   map[string]bool
	sign      func(doc []byte) ([]byte, error)
	reqs      []http.Header    // every request's headers, in order
	hits      map[string]int   // URL path -> requests
	active    int              // handlers running
	manifests map[string]int   // avatar ID -> manifest requests
	notMod    map[string]int   // avatar ID -> 304 answers
	gets      map[string]int   // digest -> blob requests
	starts    map[string][]int // digest -> the offset each blob request started at
	sentBy    map[string]int64 // digest -> bytes sent
	hold      map[string]*Hold // digest -> a gate that stalls the blob mid-way
	holdAll   *Hold            // stalls every blob without one of its own
}

// Hold stalls a blob's body before byte At until Free (or the request
// ends); Sent is closed once a request got that far. A request that
// starts beyond At, or a blob no longer than At, is not held.
type Hold struct {
	At      int
	Sent    chan struct{}
	once    sync.Once
	release chan struct{}
}

// Free lets the held blobs go on, and the later requests through;
// calling it again does nothing.
func (h *Hold) Free() {
	select {
	case <-h.release:
	default:
		close(h.release)
	}
}

// NewOrigin serves avatars until the test ends.
func NewOrigin(t testing.TB, avatars ...*Avatar) *Origin {
	t.Helper()
	o := UnstartedOrigin(avatars...)
	o.Start(t, o)
	return o
}

// UnstartedOrigin is an Origin whose server Start runs, for a handler
// that wraps it.
func UnstartedOrigin(avatars ...*Avatar) *Origin {
	o := &Origin{
		Chunk:     32 << 10,
		mux:       http.NewServeMux(),
		avatars:   map[string]*Avatar{},
		history:   map[string]*Avatar{},
		blobs:     map[string][]byte{},
		maxAge:    3600,
		corrupt:   map[string]bool{},
		hits:      map[string]int{},
		manifests: map[string]int{},
		notMod:    map[string]int{},
		gets:      map[string]int{},
		starts:    map[string][]int{},
		sentBy:    map[string]int64{},
		hold:      map[string]*Hold{},
	}
	for _, a := range avatars {
		o.Publish(a)
	}
	return o
}

// Start serves h (o, or a handler in front of it) until the test ends;
// held blobs are freed first.
func (o *Origin) Start(t testing.TB, h http.Handler) {
	o.Srv = httptest.NewServer(h)
	t.Cleanup(func() {
		o.mu.Lock()
		for _, h := range o.hold {
			h.Free()
		}
		if o.holdAll != nil {
			o.holdAll.Free()
		}
		o.mu.Unlock()
		o.Srv.Close()
	})
}

// URL is the origin's base URL.
func (o *Origin) URL() string { return o.Srv.URL }

// Publish makes a the current version of its avatar.
func (o *Origin) Publish(a *Avatar) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.publishLocked(a)
}

func (o *Origin) publishLocked(a *Avatar) {
	o.avatars[a.ID] = a
	o.history[a.ID+"@"+a.Version] = a
	for _, x := range a.Assets {
		o.blobs[x.SHA256] = x.Data
	}
}

// Withdraw stops serving id: its manifest is answered 404
// avatarIDUnrecognized (its blobs stay).
func (o *Origin) Withdraw(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.avatars, id)
}

// AddBlob serves data as a blob and returns its path.
func (o *Origin) AddBlob(data []byte) string {
	d := Sum(data)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.blobs[d] = data
	return "/v1/blobs/sha256/" + d
}

// Current is the version of id served now, nil if none.
func (o *Origin) Current(id string) *Avatar {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.avatars[id]
}

// Version returns what the origin served as id at version, nil if never.
func (o *Origin) Version(id, version string) *Avatar {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.history[id+"@"+version]
}

// Handle answers requests matching pattern (an http.ServeMux pattern)
// with h instead of the protocol: for an origin that misbehaves in a way
// the settings do not offer. Such requests are counted by path (Hits) and
// their headers kept (Header), nothing else.
func (o *Origin) Handle(pattern string, h http.HandlerFunc) { o.mux.HandleFunc(pattern, h) }

// SetToken makes every request need "Authorization: Bearer tok"; "" for
// none.
func (o *Origin) SetToken(tok string) { o.set(func() { o.token = tok }) }

// SetMaxAge sets the manifests' Cache-Control max-age (3600 at first);
// 0 sends none, so every load revalidates.
func (o *Origin) SetMaxAge(seconds int) { o.set(func() { o.maxAge = seconds }) }

// SetDelay pauses blob bodies d after each Chunk: a slow origin.
func (o *Origin) SetDelay(d time.Duration) { o.set(func() { o.delay = d }) }

// SetStatus answers every manifest and blob request with status and an
// empty HTML page, as a proxy in front of a down origin does; 0 serves
// again.
func (o *Origin) SetStatus(status int) { o.set(func() { o.status = status }) }

// SetBlobStatus answers every blob request with status and no body; 0
// serves again.
func (o *Origin) SetBlobStatus(status int) { o.set(func() { o.blobFail = status }) }

// SetCorrupt serves digest's blob with one bit of its middle byte flipped
// (the right size, the wrong sha256) while on.
func (o *Origin) SetCorrupt(digest string, on bool) { o.set(func() { o.corrupt[digest] = on }) }

// SetSigner makes manifests the output of sign applied to the unsigned
// document (nil: unsigned).
func (o *Origin) SetSigner(sign func(doc []byte) ([]byte, error)) { o.set(func() { o.sign = sign }) }

func (o *Origin) set(f func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f()
}

// HoldBlob makes the next requests for digest stall before byte at.
func (o *Origin) HoldBlob(digest string, at int) *Hold {
	h := newHold(at)
	o.set(func() { o.hold[digest] = h })
	return h
}

// HoldBlobs makes the next requests for every blob without a HoldBlob of
// its own stall before byte at (0: before the body).
func (o *Origin) HoldBlobs(at int) *Hold {
	h := newHold(at)
	o.set(func() { o.holdAll = h })
	return h
}

func newHold(at int) *Hold {
	return &Hold{At: at, Sent: make(chan struct{}), release: make(chan struct{})}
}
