package manager

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

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
