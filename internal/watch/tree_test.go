package watch

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func watchTree(t *testing.T, root string) *recorder[Event] {
	t.Helper()
	rec := newRecorder[Event]()
	w, err := NewTree(root, rec.add, Options{Debounce: debounce})
	must(t, err)
	run(t, w)
	return rec
}

// seen waits until an event for p with op arrives.
func seen(t *testing.T, rec *recorder[Event], p string, op Op) {
	t.Helper()
	rec.waitFor(t, op.String()+" of "+p, func(got []Event) bool {
		for _, e := range got {
			if e.Path == p && e.Op&op != 0 {
				return true
			}
		}
		return false
	})
}

func TestTree(t *testing.T) {
	root := t.TempDir()
	blobs := filepath.Join(root, "blobs", "sha256")
	must(t, os.MkdirAll(blobs, 0o755))
	blob := filepath.Join(blobs, "aa")
	writeFile(t, blob, "data")
	rec := watchTree(t, root)

	must(t, os.Chmod(blob, 0o444))
	seen(t, rec, blob, Chmod)

	must(t, os.Chmod(blob, 0o644))
	f, err := os.OpenFile(blob, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.WriteString("tampered")
	must(t, err)
	must(t, f.Close())
	seen(t, rec, blob, Write)

	moved := filepath.Join(blobs, "bb")
	must(t, os.Rename(blob, moved))
	seen(t, rec, blob, Rename)
	seen(t, rec, moved, Create)

	must(t, os.Remove(moved))
	seen(t, rec, moved, Remove)

	// A directory made later is watched too, and the files in it reported.
	sub := filepath.Join(root, "blobs", "sha512")
	must(t, os.Mkdir(sub, 0o755))
	nested := filepath.Join(sub, "cc")
	writeFile(t, nested, "x")
	seen(t, rec, nested, Create|Write)
	must(t, os.Remove(nested))
	seen(t, rec, nested, Remove)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, e := range rec.got {
		if e.Path == sub || e.Path == blobs {
			t.Errorf("a directory was reported: %v", e)
		}
	}
}

func TestOpString(t *testing.T) {
	if s := (Create | Remove).String(); s != "create|remove" {
		t.Errorf("got %q", s)
	}
	if s := Op(0).String(); s != "none" {
		t.Errorf("got %q", s)
	}
	if !(Write | Chmod).Has(Chmod) || (Write).Has(Write|Chmod) {
		t.Error("Has")
	}
}

// TestTreeOverflow: a burst that overflows the kernel's queue (a store
// removing many files while the callback is busy) is reported as a
// Rescan, its other events one by one, and its removals not one by one.
func TestTreeOverflow(t *testing.T) {
	raw, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		t.Skip("no inotify queue limit to overflow:", err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || limit > 1<<17 {
		t.Skipf("inotify queue of %q events: too many to overflow here", raw)
	}
	root := t.TempDir()
	n := limit + 1000
	for i := range n {
		writeFile(t, filepath.Join(root, fmt.Sprintf("f%06d", i)), "")
	}
	tampered := filepath.Join(root, "tampered")
	writeFile(t, tampered, "data")
	trigger := filepath.Join(root, "first")
	blocked, gate := make(chan struct{}), make(chan struct{})
	rec := newRecorder[Event]()
	// A long debounce: the burst is reported once all of it, the overflow
	// too, has been read, however slowly (-race).
	w, err := NewTree(root, func(e Event) {
		if e.Path == trigger {
			close(blocked)
			<-gate // nothing is read meanwhile: the kernel's queue fills
			return
		}
		rec.add(e)
	}, Options{Debounce: 2 * time.Second})
	must(t, err)
	run(t, w)
	writeFile(t, trigger, "")
	select {
	case <-blocked:
	case <-time.After(patience):
		t.Fatal("the trigger's event was not reported")
	}
	f, err := os.OpenFile(tampered, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.WriteString("tampered")
	must(t, err)
	must(t, f.Close())
	for i := range n {
		must(t, os.Remove(filepath.Join(root, fmt.Sprintf("f%06d", i))))
	}
	close(gate)
	got := rec.waitFor(t, "a Rescan", func(got []Event) bool {
		return slices.Contains(got, Event{Path: root, Op: Rescan})
	})
	removals := 0
	for _, e := range got {
		if e.Op.Has(Remove) {
			removals++
		}
	}
	if removals > 0 {
		t.Errorf("%d removals of the burst that lost events reported one by one besides its Rescan", removals)
	}
	if !slices.ContainsFunc(got, func(e Event) bool { return e.Path == tampered && e.Op.Has(Write) }) {
		t.Errorf("the write to %s, before the queue filled, was not reported: %v", tampered, got)
	}
}

// TestTreePause: while paused nothing under the tree is reported; Resume
// reports a Rescan, and the tree, subdirectories too, is watched again.
func TestTreePause(t *testing.T) {
	root := t.TempDir()
	sub := filepath.Join(root, "sub")
	must(t, os.Mkdir(sub, 0o755))
	for i := range 100 {
		writeFile(t, filepath.Join(root, fmt.Sprintf("f%03d", i)), "")
	}
	rec := newRecorder[Event]()
	w, err := NewTree(root, rec.add, Options{Debounce: debounce})
	must(t, err)
	run(t, w)
	wait := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(patience)
		for w.Paused() != want {
			if time.Now().After(deadline) {
				t.Fatalf("Run did not act on Pause or Resume: paused = %v", !want)
			}
			time.Sleep(time.Millisecond)
		}
	}

	w.Pause()
	wait(true)
	for i := range 100 {
		must(t, os.Remove(filepath.Join(root, fmt.Sprintf("f%03d", i))))
	}
	writeFile(t, filepath.Join(root, "during"), "")
	writeFile(t, filepath.Join(sub, "during"), "")
	w.Resume()
	wait(false)
	got := rec.waitFor(t, "a Rescan", func(got []Event) bool {
		return slices.Contains(got, Event{Path: root, Op: Rescan})
	})
	if len(got) != 1 {
		t.Errorf("besides the Rescan, changes made while paused were reported: %v", got)
	}

	after := filepath.Join(root, "after")
	writeFile(t, after, "")
	seen(t, rec, after, Create)
	subAfter := filepath.Join(sub, "after")
	writeFile(t, subAfter, "")
	seen(t, rec, subAfter, Create)
}
