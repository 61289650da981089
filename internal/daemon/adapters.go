package daemon

import (
	"context"
	"io"
	"net/url"
	"path/filepath"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/config"
	"github.com/assetd/assetd/internal/duty"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/manager"
)

// managerAPI is api.Manager over the manager: the same methods, except that
// Load, Start and Import take api's options, and Stats adds what the
// daemon's duties hold.
type managerAPI struct {
	*manager.Manager
	held func() apitype.Background // nil: nothing held
}

func (m managerAPI) Stats() apitype.Stats {
	st := m.Manager.Stats()
	if m.held != nil {
		st.Background = m.held()
	}
	return st
}

var (
	_ api.Manager   = managerAPI{}
	_ duty.Loader   = (*manager.Manager)(nil)
	_ duty.Verifier = scrubber{}
)

func (m managerAPI) Load(ctx context.Context, id string, o api.LoadOptions) (*apitype.Avatar, error) {
	return m.Manager.Load(ctx, id, manager.LoadOptions(o))
}

func (m managerAPI) Start(ctx context.Context, id string, o api.LoadOptions) (apitype.Load, *apitype.Avatar, error) {
	return m.Manager.Start(ctx, id, manager.LoadOptions(o))
}

func (m managerAPI) Import(ctx context.Context, id string, r io.Reader, o api.ImportOptions) (*apitype.Avatar, error) {
	return m.Manager.Import(ctx, id, r, manager.ImportOptions(o))
}

// scrubber is duty.Verifier over the manager, whose Verify also reports
// what it found (damage is marked and announced by the manager itself).
type scrubber struct{ *manager.Manager }

func (s scrubber) Verify(ctx context.Context, id string) error {
	_, err := s.Manager.Verify(ctx, id)
	return err
}

func (d *daemon) apiOptions(cfg *config.Config) api.Options {
	return api.Options{
		Logger:      d.log.With("component", "api"),
		AllowedUIDs: ints(cfg.API.AllowedUIDs),
		AllowedGIDs: ints(cfg.API.AllowedGIDs),
		Metrics:     d.metrics,
		SetSession:  d.setSession,
		Reload:      d.requestReload,
		Facts:       d.facts,

		MaxConnections:       cfg.API.MaxConnections,
		MaxConnectionsPerUID: cfg.API.MaxConnectionsPerUID,
		MaxSubscribersPerUID: cfg.API.MaxSubscribersPerUID,
	}
}

// facts are what error hints name: the configuration file in use and
// origin.url as they are now (a reload may change either).
func (d *daemon) facts() errs.Facts {
	d.mu.Lock()
	origin := d.cfg.Origin.URL
	d.mu.Unlock()
	f := errs.Facts{ConfigPath: d.opts.ConfigPath}
	if f.ConfigPath != "" {
		if abs, err := filepath.Abs(f.ConfigPath); err == nil {
			f.ConfigPath = abs
		}
	}
	if u, err := url.Parse(origin); err == nil && origin != "" {
		f.OriginURL = u.Redacted()
	}
	return f
}

func ints(u []uint32) []int {
	out := make([]int, len(u))
	for i, v := range u {
		out[i] = int(v)
	}
	return out
}
