package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/manifest"
)

// DefaultSocket is where the daemon listens unless configured otherwise.
const DefaultSocket = "/run/assetd/assetd.sock"

// Error is an assetd error: what every failed call returns. It is package
// errcode's Error, whose Reason is one of errcode's Reason constants.
type Error = errcode.Error

// Code is an error code; errors.Is(err, code) tells whether err carries it.
type Code = errcode.Code

// The codes a caller may meet (docs/api.md lists what each means), as
// package errcode names them.
const (
	AppIDUnrecognized            = errcode.AppIDUnrecognized
	SessionTokenInvalid          = errcode.SessionTokenInvalid
	SessionTokenExpired          = errcode.SessionTokenExpired
	InsufficientBalance          = errcode.InsufficientBalance
	SessionTimeout               = errcode.SessionTimeout
	ConcurrentLimitExceeded      = errcode.ConcurrentLimitExceeded
	AvatarIDUnrecognized         = errcode.AvatarIDUnrecognized
	AvatarAssetMissing           = errcode.AvatarAssetMissing
	FailedToFetchAvatarMetadata  = errcode.FailedToFetchAvatarMetadata
	FailedToDownloadAvatarAssets = errcode.FailedToDownloadAvatarAssets
	ServerError                  = errcode.ServerError
	Cancelled                    = errcode.Cancelled
	BadRequest                   = errcode.BadRequest
	NotFound                     = errcode.NotFound
	MethodNotAllowed             = errcode.MethodNotAllowed
	Forbidden                    = errcode.Forbidden
	PayloadTooLarge              = errcode.PayloadTooLarge
	Internal                     = errcode.Internal
	DaemonNotRunning             = errcode.DaemonNotRunning
)

// Client talks to one daemon. It is safe for concurrent use and keeps
// connections alive between calls.
type Client struct {
	socket string
	hc     *http.Client
}

// New returns a client of the daemon listening on socket.
func New(socket string) *Client {
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		DisableCompression:    true,
		ResponseHeaderTimeout: 0, // loads stream for as long as they take
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
}

// Socket is the socket the client dials.
func (c *Client) Socket() string { return c.socket }

// CloseIdleConnections closes the kept-alive connections.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Do sends one request to the daemon as it is, and returns its answer
// whatever the status; only a failure to reach the daemon is an error.
// path is the request target, such as "/v1/health". The caller closes the
// body. It serves callers of routes this package has no method for.
func (c *Client) Do(ctx context.Context, method, path string, body io.Reader, header http.Header) (*http.Response, error) {
	req, err := c.newRequest(ctx, method, path, body, header)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportErr(ctx, err)
	}
	return resp, nil
}

// newRequest builds a request of the target path, sent as it is.
func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader, header http.Header) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://assetd", body)
	if err != nil {
		return nil, err
	}
	req.URL.Path = "" // the target is sent verbatim, never cleaned
	req.URL.Opaque = path
	if i := indexByte(path, '?'); i >= 0 {
		req.URL.Opaque, req.URL.RawQuery = path[:i], path[i+1:]
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if h := header.Get("Host"); h != "" {
		req.Host = h
	}
	return req, nil
}

func indexByte(s string, b byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return i
		}
	}
	return -1
}

// transportErr names the failure to reach the daemon.
func (c *Client) transportErr(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return &Error{Code: errcode.Cancelled, Phase: errcode.PhaseLocal, Message: "cancelled", Err: ctx.Err()}
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return &Error{Code: errcode.DaemonNotRunning, Phase: errcode.PhaseLocal,
			Message: "assetd is not running at " + c.socket, Err: err}
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return &Error{Code: errcode.Forbidden, Phase: errcode.PhaseLocal,
			Message: "no permission to use the socket " + c.socket, Err: err}
	}
	return &Error{Code: errcode.DaemonNotRunning, Phase: errcode.PhaseLocal,
		Message: fmt.Sprintf("talking to assetd at %s failed", c.socket), Err: err}
}

// send makes one request and returns the answer when its status is 2xx;
// other answers become *Error.
func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	var hdr http.Header
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
		hdr = http.Header{"Content-Type": {"application/json"}}
	}
	resp, err := c.Do(ctx, method, path, rd, hdr)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

// decodeError turns an error answer into an *Error.
func decodeError(resp *http.Response) error {
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var env errcode.Envelope
	if err == nil {
		err = json.Unmarshal(data, &env)
	}
	if err != nil || env.Error.Code == "" {
		return &Error{Code: errcode.Internal, Phase: errcode.PhaseLocal,
			Message: fmt.Sprintf("assetd answered %s without an error body", resp.Status)}
	}
	return env.Error.Err()
}

// call makes one request and decodes its JSON answer into out (nil: none).
func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return c.readErr(ctx, method, path, err)
	}
	return nil
}

func (c *Client) readErr(ctx context.Context, method, path string, err error) error {
	if ctx.Err() != nil {
		return &Error{Code: errcode.Cancelled, Phase: errcode.PhaseLocal, Message: "cancelled", Err: ctx.Err()}
	}
	return &Error{Code: errcode.Internal, Phase: errcode.PhaseLocal,
		Message: fmt.Sprintf("reading the answer to %s %s: %v", method, path, err), Err: err}
}

// ValidateID checks an avatar ID before any request, as the daemon would:
// 1-128 characters of [A-Za-z0-9._-], not starting with a dot. Its error
// is AvatarIDUnrecognized, reason invalidId, the same for every bad ID.
// Every method that takes an ID calls it first.
func ValidateID(id string) error {
	return manifest.ValidateID(id)
}

// avatarPath is the route of one avatar, or ValidateID's error.
func avatarPath(id, suffix string) (string, error) {
	if err := ValidateID(id); err != nil {
		return "", err
	}
	return "/v1/avatars/" + url.PathEscape(id) + suffix, nil
}

// Health answers GET /v1/health.
func (c *Client) Health(ctx context.Context) (apitype.Health, error) {
	var h apitype.Health
	err := c.call(ctx, http.MethodGet, "/v1/health", nil, &h)
	return h, err
}

// Get returns a cached avatar (GET /v1/avatars/{id}); it never downloads.
// An avatar not cached is AvatarAssetMissing.
func (c *Client) Get(ctx context.Context, id string) (*apitype.Avatar, error) {
	p, err := avatarPath(id, "")
	if err != nil {
		return nil, err
	}
	var av apitype.Avatar
	if err := c.call(ctx, http.MethodGet, p, nil, &av); err != nil {
		return nil, err
	}
	return &av, nil
}

// List returns every cached avatar and every load in flight.
func (c *Client) List(ctx context.Context) (apitype.List, error) {
	var l apitype.List
	err := c.call(ctx, http.MethodGet, "/v1/avatars", nil, &l)
	return l, err
}

// CancelLoad cancels the load of id; it returns [id] if one was in flight.
func (c *Client) CancelLoad(ctx context.Context, id string) ([]string, error) {
	var r apitype.Cancelled
	p, err := avatarPath(id, "/load")
	if err != nil {
		return nil, err
	}
	err = c.call(ctx, http.MethodDelete, p, nil, &r)
	return r.Cancelled, err
}

// CancelAll cancels every load in flight and returns their IDs.
func (c *Client) CancelAll(ctx context.Context) ([]string, error) {
	var r apitype.Cancelled
	err := c.call(ctx, http.MethodDelete, "/v1/loads", nil, &r)
	return r.Cancelled, err
}

// Clear removes one avatar from the cache.
func (c *Client) Clear(ctx context.Context, id string) ([]string, error) {
	var r apitype.Removed
	p, err := avatarPath(id, "")
	if err != nil {
		return nil, err
	}
	err = c.call(ctx, http.MethodDelete, p, nil, &r)
	return r.Removed, err
}

// ClearAll removes every avatar and returns their IDs.
func (c *Client) ClearAll(ctx context.Context) ([]string, error) {
	var r apitype.Removed
	err := c.call(ctx, http.MethodDelete, "/v1/avatars", nil, &r)
	return r.Removed, err
}

// ClearLRU keeps the keep most recently used avatars (and every pinned
// one) and returns the IDs it removed.
func (c *Client) ClearLRU(ctx context.Context, keep int) ([]string, error) {
	var r apitype.Removed
	err := c.call(ctx, http.MethodPost, "/v1/cache/lru?keep="+strconv.Itoa(keep), nil, &r)
	return r.Removed, err
}

// Size returns the bytes one cached avatar takes.
func (c *Client) Size(ctx context.Context, id string) (int64, error) {
	var r apitype.Size
	p, err := avatarPath(id, "/size")
	if err != nil {
		return 0, err
	}
	err = c.call(ctx, http.MethodGet, p, nil, &r)
	return r.Bytes, err
}

// Stats returns the cache's figures.
func (c *Client) Stats(ctx context.Context) (apitype.Stats, error) {
	var r apitype.Stats
	err := c.call(ctx, http.MethodGet, "/v1/cache/stats", nil, &r)
	return r, err
}

// Verify re-hashes a cached avatar's files.
func (c *Client) Verify(ctx context.Context, id string) (apitype.VerifyResult, error) {
	var r apitype.VerifyResult
	p, err := avatarPath(id, "/verify")
	if err != nil {
		return r, err
	}
	err = c.call(ctx, http.MethodPost, p, nil, &r)
	return r, err
}

// SetSession gives the daemon a new session token ("" appID keeps the
// configured one); loads that failed on auth are retried.
func (c *Client) SetSession(ctx context.Context, token, appID string) error {
	return c.call(ctx, http.MethodPut, "/v1/session", apitype.Session{SessionToken: token, AppID: appID}, nil)
}

// Reload makes the daemon re-read its configuration file (POST /v1/reload)
// and returns once it is in force. A file the daemon refuses is BadRequest
// with reason configRefused, its message the file's errors; the old
// configuration stays. Only root and the daemon's own user may reload.
func (c *Client) Reload(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, "/v1/reload", nil, nil)
}

// SetPinned pins an avatar (never evicted) or unpins it.
func (c *Client) SetPinned(ctx context.Context, id string, pinned bool) error {
	method := http.MethodPut
	if !pinned {
		method = http.MethodDelete
	}
	p, err := avatarPath(id, "/pin")
	if err != nil {
		return err
	}
	return c.call(ctx, method, p, nil, nil)
}

// Metrics returns GET /metrics, the Prometheus text.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	resp, err := c.send(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", c.readErr(ctx, http.MethodGet, "/metrics", err)
	}
	return string(b), nil
}
