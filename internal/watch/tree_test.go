package watch

import (
	"os"
	"path/filepath"
	"testing"
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
