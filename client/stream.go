package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
)

// LoadOptions are the query flags of POST /v1/avatars/{id}/load.
type LoadOptions struct {
	Pin        bool // keep the avatar whatever the cache's quota
	Background bool // wait behind interactive downloads
}

func (o LoadOptions) query(wait bool) string {
	q := url.Values{}
	if !wait {
		q.Set("wait", "false")
	}
	if o.Pin {
		q.Set("pin", "true")
	}
	if o.Background {
		q.Set("background", "true")
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// Load loads an avatar, or joins its load in flight, and waits for it. fn
// (may be nil) sees every event of the stream, the last one included. The
// avatar is that of the completed event; a failed event's error is
// returned as an *Error (Cancelled when the load was cancelled or ctx
// ended).
func (c *Client) Load(ctx context.Context, id string, opts LoadOptions, fn func(apitype.Event)) (*apitype.Avatar, error) {
	path, err := avatarPath(id, "/load")
	if err != nil {
		return nil, err
	}
	path += opts.query(true)
	resp, err := c.send(ctx, http.MethodPost, path, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var ev apitype.Event
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) && ctx.Err() == nil {
				return nil, &Error{Code: errcode.Internal, Phase: errcode.PhaseLocal, AvatarID: id,
					Message: "the load's stream ended without a result"}
			}
			return nil, c.readErr(ctx, http.MethodPost, path, err)
		}
		if fn != nil {
			fn(ev)
		}
		switch ev.Type {
		case apitype.EventCompleted:
			if ev.Avatar == nil {
				return nil, &Error{Code: errcode.Internal, Phase: errcode.PhaseLocal, AvatarID: id,
					Message: "a completed event without an avatar"}
			}
			return ev.Avatar, nil
		case apitype.EventFailed:
			if ev.Error == nil {
				return nil, &Error{Code: errcode.Internal, Phase: errcode.PhaseLocal, AvatarID: id,
					Message: "a failed event without an error"}
			}
			return nil, ev.Error.Err()
		}
	}
}

// Start starts a load, or finds the one in flight, without waiting
// (?wait=false). When the avatar is cached, ready and fresh, cached is it
// and nothing is loaded.
func (c *Client) Start(ctx context.Context, id string, opts LoadOptions) (load apitype.Load, cached *apitype.Avatar, err error) {
	path, err := avatarPath(id, "/load")
	if err != nil {
		return load, nil, err
	}
	resp, err := c.send(ctx, http.MethodPost, path+opts.query(false), nil)
	if err != nil {
		return load, nil, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	if resp.StatusCode == http.StatusOK {
		var av apitype.Avatar
		if err := dec.Decode(&av); err != nil {
			return load, nil, c.readErr(ctx, http.MethodPost, "load", err)
		}
		return load, &av, nil
	}
	if err := dec.Decode(&load); err != nil {
		return load, nil, c.readErr(ctx, http.MethodPost, "load", err)
	}
	return load, nil, nil
}

// Events calls fn with every event of the daemon (GET /v1/events) until ctx
// ends, which returns a Cancelled *Error, or the daemon ends the stream,
// which returns nil.
func (c *Client) Events(ctx context.Context, fn func(apitype.Event)) error {
	resp, err := c.send(ctx, http.MethodGet, "/v1/events", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var ev apitype.Event
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) && ctx.Err() == nil {
				return nil
			}
			return c.readErr(ctx, http.MethodGet, "/v1/events", err)
		}
		fn(ev)
	}
}
