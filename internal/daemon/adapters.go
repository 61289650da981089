package daemon

import (
	"context"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/config"
	"github.com/assetd/assetd/internal/duty"
	"github.com/assetd/assetd/internal/manager"
)

// managerAPI is api.Manager over the manager: the same methods, except that
// Load and Start take api's LoadOptions.
type managerAPI struct{ *manager.Manager }

var (
	_ api.Manager   = managerAPI{}
	_ duty.Loader   = (*manager.Manager)(nil)
	_ duty.Verifier = scrubber{}
)

func (m managerAPI) Load(ctx context.Context, id string, o api.LoadOptions) (*apitype.Avatar, error) {
	return m.Manager.Load(ctx, id, manager.LoadOptions(o))
}

func (m managerAPI) Start(id string, o api.LoadOptions) (apitype.Load, *apitype.Avatar, error) {
	return m.Manager.Start(id, manager.LoadOptions(o))
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
		Metrics:     func() api.Metrics { return api.Metrics(d.mgr.Metrics()) },
		SetSession:  d.setSession,
	}
}

func ints(u []uint32) []int {
	out := make([]int, len(u))
	for i, v := range u {
		out[i] = int(v)
	}
	return out
}
