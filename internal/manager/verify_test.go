package manager

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/store"
)

// TestVerifyDuringVersionChange: a load that replaces the version while
// Verify re-hashes it deletes the old version's blobs; that is no damage.
// Verify answers for the current version: no damaged answer, no damaged
// event, no healing load, no blob removed.
func TestVerifyDuringVersionChange(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{SelfHeal: true})
	e.o.Publish(avatarOf("rohan", "v1", files3("rohan-v1")))
	mustLoad(t, e.m, "rohan", LoadOptions{})
	v2 := files3("rohan-v2")
	e.o.Publish(avatarOf("rohan", "v2", v2))
	events, cancel := e.m.Subscribe()
	defer cancel()

	first := true
	e.m.testHookVerifyBlob = func(string) {
		if !first {
			return
		}
		first = false
		if err := e.m.Refresh(context.Background(), "rohan"); err != nil {
			t.Errorf("Refresh: %v", err)
		}
	}
	res, err := e.m.Verify(context.Background(), "rohan")
	if err != nil {
		t.Fatal(err)
	}
	if res.State != apitype.StateReady || len(res.Damaged) != 0 || res.Healing {
		t.Errorf("Verify during a version change = %+v", res)
	}
	for len(events) > 0 {
		if ev := <-events; ev.Type == apitype.EventState && ev.State == apitype.StateDamaged {
			t.Errorf("damaged event %+v", ev)
		}
	}
	a, err := e.m.Retrieve("rohan")
	if err != nil {
		t.Fatal(err)
	}
	if a.Version != "v2" {
		t.Errorf("version %s", a.Version)
	}
	checkFiles(t, a, v2)
}

// TestVerifySharedAndCapped: concurrent verifications of one avatar share
// one run (each blob hashed once), and at most verifiesAtOnce avatars are
// hashed at once.
func TestVerifySharedAndCapped(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	ids := []string{"a", "b", "c", "d"}
	for _, id := range ids {
		e.o.Publish(avatarOf(id, "v1", files3(id)))
		mustLoad(t, e.m, id, LoadOptions{})
	}
	var mu sync.Mutex
	hashed := map[string]int{}
	in, most := 0, 0
	release := make(chan struct{})
	e.m.testHookVerifyBlob = func(d string) {
		mu.Lock()
		hashed[d]++
		in++
		most = max(most, in)
		mu.Unlock()
		<-release
		mu.Lock()
		in--
		mu.Unlock()
	}
	const callers = 10
	var wg sync.WaitGroup
	results := make(chan apitype.VerifyResult, callers+len(ids))
	verify := func(id string) {
		wg.Go(func() {
			res, err := e.m.Verify(context.Background(), id)
			if err != nil {
				t.Errorf("Verify(%s): %v", id, err)
			}
			results <- res
		})
	}
	for range callers {
		verify("a")
	}
	for _, id := range ids[1:] {
		verify(id)
	}
	inHook := func() int { mu.Lock(); defer mu.Unlock(); return in }
	waitFor(t, "two verifications to hash", func() bool { return inHook() == verifiesAtOnce })
	// Were there no cap, the other two would reach the hook meanwhile.
	for range 100 {
		if inHook() > verifiesAtOnce {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(results)
	for res := range results {
		if res.State != apitype.StateReady || res.Checked != 3 {
			t.Errorf("result %+v", res)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if most > verifiesAtOnce {
		t.Errorf("%d verifications hashed at once, cap %d", most, verifiesAtOnce)
	}
	for p, b := range files3("a") {
		if n := hashed[digestOf(b)]; n != 1 {
			t.Errorf("a/%s hashed %d times by %d concurrent callers, want once", p, n, callers)
		}
	}
}

// TestVerifyCallerGoesAway: a caller that stops waiting gets cancelled;
// the run stops once no caller is left, and the next caller starts afresh.
func TestVerifyCallerGoesAway(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	e.o.Publish(avatarOf("a", "v1", files3("a")))
	mustLoad(t, e.m, "a", LoadOptions{})
	entered := make(chan struct{}, 8)
	block := make(chan struct{})
	e.m.testHookVerifyBlob = func(string) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-block
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := e.m.Verify(ctx, "a"); errc <- err }()
	<-entered
	cancel()
	if err := <-errc; errs.CodeOf(err) != errcode.Cancelled {
		t.Fatalf("Verify after its caller left: %v", err)
	}
	close(block)
	waitFor(t, "the abandoned run to end", func() bool {
		e.m.mu.Lock()
		defer e.m.mu.Unlock()
		return len(e.m.verifies) == 0 && len(e.m.verifySem) == 0
	})
	if res, err := e.m.Verify(context.Background(), "a"); err != nil || res.State != apitype.StateReady {
		t.Errorf("the next Verify: %+v %v", res, err)
	}
}
