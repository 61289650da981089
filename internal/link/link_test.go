package link

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/assetd/assetd/internal/testkit"
)

var quiet = slog.New(slog.DiscardHandler)

// watch runs a Watcher on addr and returns the channel of its reports.
func watch(t *testing.T, addr string) <-chan bool {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan bool, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = (&Watcher{Address: addr, Log: quiet}).Run(ctx, func(m bool) { got <- m })
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return got
}

// next waits for the watcher's next report; the bound only stops a broken
// test, it measures nothing.
func next(t *testing.T, got <-chan bool) bool {
	t.Helper()
	select {
	case m := <-got:
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("the watcher reported nothing")
		return false
	}
}

func expect(t *testing.T, got <-chan bool, want bool, what string) {
	t.Helper()
	if m := next(t, got); m != want {
		t.Fatalf("%s: metered = %v, want %v", what, m, want)
	}
}

func TestMeteredFollowsNetworkManager(t *testing.T) {
	addr := testkit.StartBus(t)
	nm := testkit.StartNetworkManager(t, addr, testkit.MeteredYes)
	got := watch(t, addr)
	expect(t, got, true, "NM_METERED_YES at start")

	nm.Set(testkit.MeteredGuessNo)
	expect(t, got, false, "GUESS_NO")
	nm.Set(testkit.MeteredNo) // no change, no report
	nm.Set(testkit.MeteredGuessYes)
	expect(t, got, true, "GUESS_YES")
	nm.Set(testkit.MeteredUnknown)
	expect(t, got, false, "UNKNOWN")
	nm.Set(testkit.MeteredYes)
	expect(t, got, true, "YES")

	nm.Stop()
	expect(t, got, false, "NetworkManager left the bus")
	testkit.StartNetworkManager(t, addr, testkit.MeteredGuessYes)
	expect(t, got, true, "NetworkManager back, GUESS_YES")
}

func TestNoNetworkManagerIsUnmetered(t *testing.T) {
	addr := testkit.StartBus(t)
	got := watch(t, addr)
	expect(t, got, false, "no NetworkManager on the bus")
	testkit.StartNetworkManager(t, addr, testkit.MeteredYes)
	expect(t, got, true, "NetworkManager started, metered")
}

func TestNoBusIsUnmetered(t *testing.T) {
	got := watch(t, "unix:path="+filepath.Join(t.TempDir(), "none"))
	expect(t, got, false, "no bus")
}
