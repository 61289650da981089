package watch

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Generous: the machine may be busy. Tests wait on channels, never sleep.
const (
	debounce = 20 * time.Millisecond
	patience = 10 * time.Second
)

// run starts w and stops it, and waits for Run to return, at cleanup.
func run(t *testing.T, w *Watcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(patience):
			t.Error("Run did not return after its context ended")
		}
	})
}

// recorder collects callbacks in order.
type recorder[T any] struct {
	mu   sync.Mutex
	got  []T
	more chan struct{}
}

func newRecorder[T any]() *recorder[T] { return &recorder[T]{more: make(chan struct{}, 1)} }

func (r *recorder[T]) add(v T) {
	r.mu.Lock()
	r.got = append(r.got, v)
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

// waitFor waits until ok accepts what was recorded so far.
func (r *recorder[T]) waitFor(t *testing.T, what string, ok func([]T) bool) []T {
	t.Helper()
	deadline := time.After(patience)
	for {
		r.mu.Lock()
		got := append([]T(nil), r.got...)
		r.mu.Unlock()
		if ok(got) {
			return got
		}
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; got %v", what, got)
		}
	}
}

func count(paths []string, p string) int {
	n := 0
	for _, x := range paths {
		if x == p {
			n++
		}
	}
	return n
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func watchFiles(t *testing.T, files ...string) *recorder[string] {
	t.Helper()
	rec := newRecorder[string]()
	w, err := New(files, rec.add, Options{Debounce: debounce})
	must(t, err)
	run(t, w)
	return rec
}

func TestFileChanges(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, path string)
	}{
		{"rewrite in place", func(t *testing.T, p string) {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
			must(t, err)
			_, err = f.WriteString("new content")
			must(t, err)
			must(t, f.Close())
		}},
		{"atomic rename", func(t *testing.T, p string) {
			tmp := p + ".tmp"
			writeFile(t, tmp, "new content")
			must(t, os.Rename(tmp, p))
		}},
		{"delete", func(t *testing.T, p string) { must(t, os.Remove(p)) }},
		{"chmod", func(t *testing.T, p string) { must(t, os.Chmod(p, 0o600)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "assetd.toml")
			writeFile(t, p, "old")
			rec := watchFiles(t, p)
			tt.change(t, p)
			rec.waitFor(t, "a change of "+p, func(got []string) bool { return count(got, p) > 0 })
		})
	}
}

func TestFileCreatedLater(t *testing.T) {
	p := filepath.Join(t.TempDir(), "session-token")
	rec := watchFiles(t, p)
	writeFile(t, p, "token")
	rec.waitFor(t, "the new file", func(got []string) bool { return count(got, p) > 0 })
	must(t, os.Remove(p))
	rec.waitFor(t, "the removal", func(got []string) bool { return count(got, p) > 1 })
}

// A Kubernetes ConfigMap volume: the file is a symlink through "..data",
// and an update swaps "..data" to a new directory. No event names the file.
func TestSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	must(t, os.Mkdir(filepath.Join(dir, "..v1"), 0o755))
	writeFile(t, filepath.Join(dir, "..v1", "assetd.toml"), "v1")
	must(t, os.Symlink("..v1", filepath.Join(dir, "..data")))
	p := filepath.Join(dir, "assetd.toml")
	must(t, os.Symlink(filepath.Join("..data", "assetd.toml"), p))
	rec := watchFiles(t, p)

	must(t, os.Mkdir(filepath.Join(dir, "..v2"), 0o755))
	writeFile(t, filepath.Join(dir, "..v2", "assetd.toml"), "v2")
	must(t, os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	must(t, os.RemoveAll(filepath.Join(dir, "..v1")))

	rec.waitFor(t, "the swap", func(got []string) bool { return count(got, p) > 0 })
	if b, _ := os.ReadFile(p); string(b) != "v2" {
		t.Fatalf("read %q after the swap", b)
	}
}

// Only the watched file that changed is reported: not its neighbour, not
// other files in the directory.
func TestOnlyChangedFilesReported(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.toml"), filepath.Join(dir, "b.toml")
	writeFile(t, a, "a")
	writeFile(t, b, "b")
	rec := watchFiles(t, a, b)

	writeFile(t, filepath.Join(dir, "unrelated"), "x")
	writeFile(t, a, "a2")
	rec.waitFor(t, "a", func(got []string) bool { return count(got, a) > 0 })
	writeFile(t, b, "b2")
	got := rec.waitFor(t, "b", func(got []string) bool { return count(got, b) > 0 })
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("reports %v, want [%s %s]", got, a, b)
	}
}

func TestBurstIsDebounced(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	writeFile(t, p, "0")
	rec := newRecorder[string]()
	w, err := New([]string{p}, rec.add, Options{Debounce: 300 * time.Millisecond})
	must(t, err)
	run(t, w)
	const writes = 50
	for i := range writes {
		writeFile(t, p, string(rune('a'+i%26)))
	}
	got := rec.waitFor(t, "one report", func(got []string) bool { return len(got) > 0 })
	if len(got) >= writes {
		t.Errorf("%d writes gave %d reports: no debouncing", writes, len(got))
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New([]string{"/nonexistent-dir/x"}, func(string) {}, Options{}); err == nil {
		t.Error("New watched a file in a missing directory")
	}
	if _, err := NewTree(filepath.Join(t.TempDir(), "none"), func(Event) {}, Options{}); err == nil {
		t.Error("NewTree watched a missing directory")
	}
	w, err := New(nil, func(string) {}, Options{})
	must(t, err)
	must(t, w.Close())
	must(t, w.Close())
}

func TestRunTwice(t *testing.T) {
	w, err := New(nil, func(string) {}, Options{})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Run(ctx); err == nil {
		t.Error("second Run did not fail")
	}
}
