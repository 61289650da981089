package manager

import (
	"errors"
	"testing"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/store"
)

// TestEvictionKeepsBlobsTheLoadNeeds: making room for B must not evict A
// for X, a blob B shares with A. Quota 120 KiB, A={X 50K}, C={Z 50K}, then
// B={X, Y 60K}: only C goes, and X is downloaded once.
func TestEvictionKeepsBlobsTheLoadNeeds(t *testing.T) {
	e := newEnv(t, store.Options{MaxBytes: 120 << 10}, Options{})
	x, y, z := randomBytes("x", 50<<10), randomBytes("y", 60<<10), randomBytes("z", 50<<10)
	e.o.Publish(avatarOf("a", "v1", map[string][]byte{"x.bin": x}))
	e.o.Publish(avatarOf("c", "v1", map[string][]byte{"z.bin": z}))
	e.o.Publish(avatarOf("b", "v1", map[string][]byte{"x.bin": x, "y.bin": y}))
	mustLoad(t, e.m, "a", LoadOptions{})
	mustLoad(t, e.m, "c", LoadOptions{})
	mustLoad(t, e.m, "b", LoadOptions{})
	if n := e.o.BlobGets(digestOf(x)); n != 1 {
		t.Errorf("X downloaded %d times, want 1", n)
	}
	if _, err := e.m.Retrieve("a"); err != nil {
		t.Errorf("a evicted: %v", err)
	}
	if _, err := e.m.Retrieve("c"); !errors.Is(err, errcode.AvatarAssetMissing) {
		t.Errorf("c still cached: %v", err)
	}
	if s := e.m.Stats(); s.TotalSize > s.MaxSize || s.TotalEntries != 2 {
		t.Errorf("stats %+v", s)
	}
}
