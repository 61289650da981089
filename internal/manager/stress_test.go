package manager

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/store"
)

// TestStress runs every call at once, at random, and then checks that the
// cache is consistent and every error was a coded avatar error.
func TestStress(t *testing.T) {
	e := newEnv(t, store.Options{MaxBytes: 3 * totalSize(files3("x"))}, Options{SelfHeal: true})
	e.o.SetDelay(50 * time.Microsecond)
	ids := []string{"a", "b", "c", "d", "e"}
	shared := randomBytes("shared", 16<<10)
	want := map[string]map[string][]byte{}
	for _, id := range ids {
		f := files3(id)
		f["shared.bin"] = shared
		want[id] = f
		e.o.Publish(avatarOf(id, "v1", f))
	}
	events, unsub := e.m.Subscribe()
	defer unsub()
	go func() {
		for range events {
		}
	}()

	check := func(id string, err error) {
		if err == nil {
			return
		}
		var ee *errcode.Error
		if !errors.As(err, &ee) {
			t.Errorf("%s: not an *errcode.Error: %v", id, err)
			return
		}
		switch ee.Code {
		case errcode.Cancelled, errcode.AvatarAssetMissing, errcode.FailedToDownloadAvatarAssets:
		default:
			t.Errorf("%s: unexpected %v", id, err)
		}
		if ee.AvatarID != id {
			t.Errorf("%s: error names %q: %v", id, ee.AvatarID, err)
		}
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range 40 {
				id := ids[rng.IntN(len(ids))]
				switch rng.IntN(9) {
				case 0, 1, 2:
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(30))*time.Millisecond)
					_, err := e.m.Load(ctx, id, LoadOptions{Pin: rng.IntN(4) == 0, Background: rng.IntN(2) == 0})
					cancel()
					check(id, err)
				case 3:
					e.m.CancelLoading(id)
				case 4:
					check(id, e.m.Clear(id))
				case 5:
					_, err := e.m.Retrieve(id)
					check(id, err)
				case 6:
					_, err := e.m.Verify(context.Background(), id)
					check(id, err)
				case 7:
					_, _, err := e.m.Start(context.Background(), id, LoadOptions{})
					check(id, err)
				case 8:
					check(id, e.m.SetPinned(id, false))
					_, _ = e.m.ClearLRU(2)
					_ = e.m.List()
					_ = e.m.Stats()
				}
			}
		})
	}
	wg.Wait()
	// Let whatever is still loading finish, then everything cached is whole.
	for _, id := range ids {
		check(id, func() error { _, err := e.m.Load(context.Background(), id, LoadOptions{}); return err }())
	}
	for len(e.m.List().Loads) > 0 {
		time.Sleep(time.Millisecond)
	}
	for _, a := range e.m.List().Avatars {
		r, err := e.m.Retrieve(a.AvatarID)
		if err != nil {
			t.Errorf("%s listed but: %v", a.AvatarID, err)
			continue
		}
		checkFiles(t, r, want[a.AvatarID])
	}
}
