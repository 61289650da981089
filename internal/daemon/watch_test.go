package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/assetd/assetd/internal/manager"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/store"
	"github.com/assetd/assetd/internal/watch"
)

// storeWithBlob is a store holding avatar "solo" of one committed blob.
func storeWithBlob(t *testing.T) (*store.Store, string) {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	data := []byte(strings.Repeat("assetd", 100))
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	w, err := st.Ingest(context.Background(), digest, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	m := &manifest.Manifest{Schema: 1, AvatarID: "solo", Version: "1",
		Assets: []manifest.Asset{{Path: "a.bin", Size: int64(len(data)), SHA256: digest}}}
	if err := st.Put(&store.Avatar{ID: "solo", Version: "1", Manifest: m, Source: "origin", State: store.StateReady}); err != nil {
		t.Fatal(err)
	}
	return st, digest
}

// The watcher sees the daemon's own removal of a damaged blob (the index
// dropped it first) and must not verify the avatar again; a committed
// blob removed behind the daemon's back is still noticed.
func TestBlobWatcherIgnoresOwnRemovals(t *testing.T) {
	st, digest := storeWithBlob(t)
	logs := &syncBuf{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	mgr := manager.New(st, nil, manager.Options{Logger: log})
	defer mgr.Close()
	d := &daemon{log: log, store: st, mgr: mgr}
	ctx := context.Background()

	if err := st.RemoveBlob(digest); err != nil {
		t.Fatal(err)
	}
	d.blobChanged(ctx, watch.Event{Path: st.BlobPath(digest), Op: watch.Remove})
	if strings.Contains(logs.String(), "changed on disk") {
		t.Fatalf("the daemon's own removal was verified again:\n%s", logs.String())
	}

	st2, digest2 := storeWithBlob(t)
	d.store = st2
	mgr2 := manager.New(st2, nil, manager.Options{Logger: log})
	defer mgr2.Close()
	d.mgr = mgr2
	if err := os.Remove(st2.BlobPath(digest2)); err != nil {
		t.Fatal(err)
	}
	d.blobChanged(ctx, watch.Event{Path: st2.BlobPath(digest2), Op: watch.Remove})
	if !strings.Contains(logs.String(), "changed on disk") {
		t.Fatalf("a blob removed behind the daemon's back went unnoticed:\n%s", logs.String())
	}
}

// TestBlobWatchPausedForRemoval: while the store removes many files the
// blob watch is paused (blobRemoval, the store's OnRemoval); a blob
// removed behind the daemon's back meanwhile is still found, by the
// Rescan the watch reports when it resumes, and the avatar verified.
func TestBlobWatchPausedForRemoval(t *testing.T) {
	st, digest := storeWithBlob(t)
	mgr := manager.New(st, nil, manager.Options{Logger: slog.New(slog.DiscardHandler)})
	defer mgr.Close()
	d := &daemon{log: slog.New(slog.DiscardHandler), store: st, mgr: mgr}
	d.blobRemoval(true) // no watch yet: nothing to pause
	d.blobRemoval(false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.watchBlobs(ctx, nil) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for d.blobWatch.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the blob watch did not start")
		}
		time.Sleep(time.Millisecond)
	}

	d.blobRemoval(true)
	for !d.blobWatch.Load().Paused() { // paused before the removal: only the Rescan can find it
		if time.Now().After(deadline) {
			t.Fatal("the blob watch did not pause")
		}
		time.Sleep(time.Millisecond)
	}
	if err := os.Remove(st.BlobPath(digest)); err != nil {
		t.Fatal(err)
	}
	d.blobRemoval(false)
	for {
		if a, ok := st.Get("solo"); ok && a.State != store.StateReady {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a blob removed while the watch was paused was not found after it resumed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
