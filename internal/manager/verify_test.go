package manager

import (
	"context"
	"testing"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/store"
)

// TestVerifyDuringVersionChange: a load that replaces the version while
// Verify re-hashes it deletes the old version's blobs; that is no damage.
// Verify answers for the current version: no damaged answer, no damaged
// event, no healing load, no blob removed.
func TestVerifyDuringVersionChange(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{SelfHeal: true})
	e.o.set("rohan", "v1", files3("rohan-v1"))
	mustLoad(t, e.m, "rohan", LoadOptions{})
	v2 := files3("rohan-v2")
	e.o.set("rohan", "v2", v2)
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
