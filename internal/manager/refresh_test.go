package manager

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/store"
)

// Refresh revalidates an avatar that is fresh by its max-age: one
// conditional request, a 304, no download; Preload of the same avatar asks
// nothing.
func TestRefreshRevalidatesFreshAvatar(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	e.o.SetMaxAge(3600)
	e.o.Publish(avatarOf("a", "v1", files3("a")))
	ctx := context.Background()
	if err := e.m.Preload(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	gets := e.o.TotalBlobGets()
	if err := e.m.Preload(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if n := e.o.ManifestGets("a"); n != 1 {
		t.Fatalf("a second Preload within max-age made %d manifest requests in all, want 1", n)
	}
	if err := e.m.Refresh(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if n, nm := e.o.ManifestGets("a"), e.o.NotModified("a"); n != 2 || nm != 1 {
		t.Errorf("Refresh: %d manifest requests in all, %d answered 304; want 2 and 1", n, nm)
	}
	if g := e.o.TotalBlobGets(); g != gets {
		t.Errorf("Refresh of an unchanged avatar downloaded %d blobs", g-gets)
	}
	a, err := e.m.Retrieve("a")
	if err != nil || !a.Pinned || a.State != apitype.StateReady {
		t.Fatalf("after Refresh: %+v, %v; want ready and pinned", a, err)
	}
}

// With the origin unreachable, Preload and Refresh keep the cached avatar
// served (stale) but report the transient error, so that the preloader
// backs off and tries again.
func TestRefreshOfflineReportsTransient(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	e.o.Publish(avatarOf("a", "v1", files3("a")))
	ctx := context.Background()
	if err := e.m.Preload(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	e.o.SetStatus(http.StatusServiceUnavailable)
	for name, f := range map[string]func(context.Context, string) error{"Preload": e.m.Preload, "Refresh": e.m.Refresh} {
		err := f(ctx, "a")
		if err == nil || !errs.IsTransient(err) {
			t.Fatalf("%s offline = %v, want a transient error", name, err)
		}
		a, rerr := e.m.Retrieve("a")
		if rerr != nil || a.State != apitype.StateStale || !a.Pinned {
			t.Fatalf("%s offline: cached %+v, %v; want stale and pinned", name, a, rerr)
		}
	}
	e.o.SetStatus(0)
	if err := e.m.Refresh(ctx, "a"); err != nil {
		t.Fatalf("Refresh back online: %v", err)
	}
	if a, err := e.m.Retrieve("a"); err != nil || a.State != apitype.StateReady {
		t.Fatalf("back online: %+v, %v; want ready", a, err)
	}
}

// A disk too full for a load (the store's free-space seam) fails it with
// insufficientStorage before any blob is requested, and leaves the cache
// as it was, pinned or not.
func TestDiskTooFullFailsBeforeDownload(t *testing.T) {
	free := int64(1 << 30)
	e := newEnv(t, store.Options{ReserveBytes: 1 << 20, FreeSpace: func(string) (int64, error) { return free, nil }}, Options{})
	for _, id := range []string{"a", "b", "c"} {
		e.o.Publish(avatarOf(id, "v1", files3(id)))
	}
	ctx := context.Background()
	mustLoad(t, e.m, "a", LoadOptions{Pin: true})
	mustLoad(t, e.m, "b", LoadOptions{})
	gets := e.o.TotalBlobGets()
	// Evicting b would free less than c needs above the reserve.
	free = 1<<20 + totalSize(files3("c"))/2 - totalSize(files3("b"))
	_, err := e.m.Load(ctx, "c", LoadOptions{})
	if !errors.Is(err, &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Reason: errcode.ReasonInsufficientStorage}) {
		t.Fatalf("load on a full disk: %v", err)
	}
	if g := e.o.TotalBlobGets(); g != gets {
		t.Errorf("%d blob requests on a full disk, want none", g-gets)
	}
	for _, id := range []string{"a", "b"} {
		if res, err := e.m.Verify(ctx, id); err != nil || res.State != apitype.StateReady {
			t.Errorf("verify %s after the failed load: %+v, %v", id, res, err)
		}
	}
}

// PinCached pins a cached avatar without any request, and says that an
// avatar not cached is not (the preloader then fetches it).
func TestPinCachedMakesNoRequest(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	e.o.Publish(avatarOf("a", "v1", files3("a")))
	mustLoad(t, e.m, "a", LoadOptions{})
	manifests, blobs := e.o.ManifestGets("a"), e.o.TotalBlobGets()
	if cached, err := e.m.PinCached("a"); !cached || err != nil {
		t.Fatalf("PinCached(a) = %v, %v; want true", cached, err)
	}
	if a, err := e.m.Retrieve("a"); err != nil || !a.Pinned {
		t.Errorf("a after PinCached: %+v, %v; want pinned", a, err)
	}
	if cached, err := e.m.PinCached("b"); cached || err != nil {
		t.Errorf("PinCached(b) = %v, %v; want false: b is not cached", cached, err)
	}
	if e.o.ManifestGets("a") != manifests || e.o.TotalBlobGets() != blobs {
		t.Error("PinCached made a request")
	}
}
