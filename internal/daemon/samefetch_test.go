package daemon

import (
	"testing"

	"github.com/assetd/assetd/internal/config"
)

// A reload keeps the fetch client (and its download queue) unless [origin]
// or [fetch] changed.
func TestSameFetch(t *testing.T) {
	base := config.Default()
	base.Origin.URL = "https://origin.example"
	clone := func(f func(c *config.Config)) *config.Config {
		c := *base
		c.Origin.Mirrors = append([]string(nil), base.Origin.Mirrors...)
		c.Preload.Avatars = append([]string(nil), base.Preload.Avatars...)
		f(&c)
		return &c
	}
	same := []*config.Config{
		clone(func(c *config.Config) { c.Preload.Avatars = []string{"rohan"} }),
		clone(func(c *config.Config) { c.Log.Level = "debug" }),
		clone(func(c *config.Config) { c.Store.MaxBytes = 1 << 20 }),
	}
	for i, c := range same {
		if !sameFetch(base, c) {
			t.Errorf("case %d: a change outside [origin] and [fetch] rebuilds the fetch client", i)
		}
	}
	differ := []*config.Config{
		clone(func(c *config.Config) { c.Origin.URL = "https://other.example" }),
		clone(func(c *config.Config) { c.Origin.Mirrors = []string{"https://mirror.example"} }),
		clone(func(c *config.Config) { c.Fetch.Concurrency++ }),
		clone(func(c *config.Config) { c.Fetch.BytesPerSecond = 1 << 20 }),
	}
	for i, c := range differ {
		if sameFetch(base, c) {
			t.Errorf("case %d: a change of [origin] or [fetch] keeps the old fetch client", i)
		}
	}
}
