// Package apitype holds the JSON shapes of assetd's local API
// (docs/api.md): what the daemon sends and what the Go client decodes.
// It has no behaviour, so that the daemon, the client and other Go
// programs can share it without importing either side. Its subpackage
// errcode holds the error codes, phases and reasons a program matches on.
//
// The Python and Node clients (clients/) mirror these shapes: after a
// change here, `go test ./apitype -update` rewrites the wire fixture their
// tests decode (clients/fixtures/wire.json), and `make clients-test` says
// what they must learn.
package apitype

import (
	"time"

	"github.com/assetd/assetd/apitype/errcode"
)

// State is the state of a cached avatar or of a load.
type State string

const (
	StateDownloading State = "downloading"
	StateReady       State = "ready"
	StateStale       State = "stale"   // cached and served; the origin could not revalidate it
	StateDamaged     State = "damaged" // a file is missing or fails its hash
	StateFailed      State = "failed"
	StateCompleted   State = "completed" // progress events only, as the SDKs say
)

// Error is the wire form of an assetd error: {"error": Error}. Its codes,
// phases and reasons are package errcode's.
type Error = errcode.Body

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse = errcode.Envelope

// Asset is one file of a cached avatar.
type Asset struct {
	Path      string `json:"path"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	LocalPath string `json:"localPath"` // open read-only; stable while this version is cached
}

// Avatar is a cached avatar (GET /v1/avatars/{id}).
type Avatar struct {
	AvatarID  string    `json:"avatarId"`
	Version   string    `json:"version"`
	State     State     `json:"state"`
	SizeBytes int64     `json:"sizeBytes"`
	LastUsed  time.Time `json:"lastUsed"`
	Pinned    bool      `json:"pinned"`
	Source    string    `json:"source,omitempty"`  // "origin" or "import"
	Damaged   []string  `json:"damaged,omitempty"` // paths of missing or damaged files
	Assets    []Asset   `json:"assets"`
}

// Load is the state of a load in flight (POST .../load?wait=false, GET /v1/avatars).
type Load struct {
	AvatarID   string  `json:"avatarId"`
	State      State   `json:"state"`
	Progress   float64 `json:"progress"`
	BytesDone  int64   `json:"bytesDone"`
	BytesTotal int64   `json:"bytesTotal"`
	Background bool    `json:"background,omitempty"`
	Waiting    string  `json:"waiting,omitempty"` // a Waiting value, "" while it moves
}

// Event types.
const (
	EventProgress  = "progress"
	EventCompleted = "completed"
	EventFailed    = "failed"
	EventState     = "state" // /v1/events only: an avatar changed state
)

// Waiting values of a progress event: why a load makes no progress now.
const (
	WaitingQueued   = "queued"   // waiting for a download slot or behind a cap on loads
	WaitingRetrying = "retrying" // a request failed; the next attempt waits for its backoff
)

// Event is one line of an NDJSON progress stream or of /v1/events.
type Event struct {
	Type       string  `json:"type"`
	AvatarID   string  `json:"avatarId"`
	State      State   `json:"state"`
	Progress   float64 `json:"progress"`
	BytesDone  int64   `json:"bytesDone"`
	BytesTotal int64   `json:"bytesTotal"`
	Avatar     *Avatar `json:"avatar,omitempty"` // completed events
	Error      *Error  `json:"error,omitempty"`  // failed events, and state events that carry one

	// Progress events. BytesReceived counts the bytes this load has read
	// from the network (not what the cache or a resumed partial held):
	// the base of a speed. Waiting is "" while the load moves, else a
	// Waiting value; while retrying, Attempt of MaxAttempts is the attempt
	// to come and LastError says, in a few words, why the last one failed.
	BytesReceived int64  `json:"bytesReceived,omitempty"`
	Waiting       string `json:"waiting,omitempty"`
	Attempt       int    `json:"attempt,omitempty"`
	MaxAttempts   int    `json:"maxAttempts,omitempty"`
	LastError     string `json:"lastError,omitempty"`

	// Completed events: the avatar was already cached and current, and
	// nothing was downloaded.
	FromCache bool `json:"fromCache,omitempty"`
}

// List answers GET /v1/avatars.
type List struct {
	Avatars []Avatar `json:"avatars"`
	Loads   []Load   `json:"loads"`
}

// Stats answers GET /v1/cache/stats.
type Stats struct {
	TotalEntries  int   `json:"totalEntries"`
	TotalSize     int64 `json:"totalSize"` // bytes of distinct blobs on disk
	MaxSize       int64 `json:"maxSize"`   // store.max_bytes
	Pinned        int   `json:"pinned"`
	Damaged       int   `json:"damaged"`
	Stale         int   `json:"stale"`
	Blobs         int   `json:"blobs"`
	LoadsInFlight int   `json:"loadsInFlight"`
	ReserveBytes  int64 `json:"reserveBytes"`
	FreeBytes     int64 `json:"freeBytes"` // free space on the store's filesystem

	// Bytes the store holds that no cached avatar uses; gc and rm --all
	// remove them. Unused blobs (committed by a load that failed halfway,
	// kept an hour for its retry) are part of TotalSize and Blobs; partial
	// downloads (kept a day for resume) are not.
	UnusedBlobs  int   `json:"unusedBlobs"`
	UnusedBytes  int64 `json:"unusedBytes"`
	Partials     int   `json:"partials"`
	PartialBytes int64 `json:"partialBytes"`

	// Background says whether the daemon holds its background work now.
	Background Background `json:"background"`
}

// Background is whether the daemon holds its background work (the periodic
// refreshes of the preload list), and why. Loads an app asks for, the
// first fetch of an avatar not cached yet and self-heal are never held.
type Background struct {
	Held bool `json:"held"`
	// Outside every preload.refresh_window: held until WindowOpens (the
	// next window's start, RFC 3339 with the daemon's UTC offset).
	OutsideWindow bool      `json:"outsideWindow,omitempty"`
	WindowOpens   time.Time `json:"windowOpens,omitzero"`
	// The default route is metered (NetworkManager) and
	// fetch.background_on_metered is false.
	MeteredLink bool `json:"meteredLink,omitempty"`
}

// Size answers GET /v1/avatars/{id}/size.
type Size struct {
	Bytes int64 `json:"bytes"`
}

// Health answers GET /v1/health.
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version"`
}

// Session is the body of PUT /v1/session.
type Session struct {
	SessionToken string `json:"sessionToken"`
	AppID        string `json:"appId,omitempty"`
}

// VerifyResult answers POST /v1/avatars/{id}/verify.
type VerifyResult struct {
	AvatarID string   `json:"avatarId"`
	State    State    `json:"state"`
	Checked  int      `json:"checked"`           // files re-hashed
	Damaged  []string `json:"damaged,omitempty"` // paths that failed
	Healing  bool     `json:"healing,omitempty"` // a re-fetch was started
}

// Removed answers the DELETE routes and POST /v1/cache/lru.
type Removed struct {
	Removed []string `json:"removed"`
}

// Cancelled answers DELETE /v1/avatars/{id}/load and DELETE /v1/loads.
type Cancelled struct {
	Cancelled []string `json:"cancelled"`
}
