package manager

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/store"
)

// TestImportLogsEvictions: an import that makes room evicts as a load
// does and says so in the log, naming the avatar evicted and the import.
func TestImportLogsEvictions(t *testing.T) {
	var log syncBuffer
	e := newEnv(t, store.Options{MaxBytes: 200 << 10},
		Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if _, err := importBytes(e.m, "old", tarFiles(t, files3("old")), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := importBytes(e.m, "new", tarFiles(t, files3("new")), ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.st.Get("old"); ok {
		t.Fatal("old was not evicted to make room for new")
	}
	if got := log.String(); !strings.Contains(got, `msg="evicted to make room" avatar=old for=new`) {
		t.Errorf("no eviction logged:\n%s", got)
	}
}

// syncBuffer is a bytes.Buffer a logger may write from any goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestClearLRULogsBounded: a gc of more avatars than maxLoggedIDs logs
// how many it removed and the first maxLoggedIDs IDs, not every one; the
// answer still names them all.
func TestClearLRULogsBounded(t *testing.T) {
	var log syncBuffer
	e := newEnv(t, store.Options{}, Options{Logger: slog.New(slog.NewJSONHandler(&log, nil))})
	n := maxLoggedIDs + 50
	for i := range n {
		id := fmt.Sprintf("a%04d", i)
		a := &store.Avatar{ID: id, Version: "1", Source: "origin", State: store.StateReady,
			Manifest: &manifest.Manifest{Schema: 1, AvatarID: id, Version: "1"}}
		if err := e.st.Put(a); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := e.m.ClearLRU(0)
	if err != nil || len(removed) != n {
		t.Fatalf("ClearLRU removed %d, %v", len(removed), err)
	}
	var line struct {
		Msg     string
		Count   int
		Avatars []string
	}
	for l := range strings.Lines(log.String()) {
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatal(err)
		}
		if line.Msg == "removed the least recently used avatars" {
			break
		}
	}
	if line.Count != n || !slices.Equal(line.Avatars, removed[:maxLoggedIDs]) {
		t.Fatalf("logged %q: count %d, %d avatars; want %d and the first %d of %v", line.Msg, line.Count,
			len(line.Avatars), n, maxLoggedIDs, removed)
	}
}
