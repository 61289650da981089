package store

import (
	"os"
	"slices"
	"syscall"
	"testing"
)

// TestCheckAvatarStatsEveryTime: CheckAvatar trusts nothing from an
// earlier check. A blob truncated in place (the directory unchanged), one
// replaced by a directory or a symlink, one removed and one dropped by
// RemoveBlob are each reported by the very next check; a repaired one is
// not.
func TestCheckAvatarStatsEveryTime(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	defer s.Close()
	putT(t, s, "a", "1", map[string]string{"x": "ex", "y": "why", "copy": "ex"})
	if bad := s.CheckAvatar("a"); bad != nil {
		t.Fatalf("intact: %v", bad)
	}
	x := digestOf([]byte("ex"))
	if err := os.Chmod(s.BlobPath(x), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(s.BlobPath(x), 1); err != nil {
		t.Fatal(err)
	}
	if bad := s.CheckAvatar("a"); !slices.Equal(bad, []string{"copy", "x"}) {
		t.Fatalf("truncated in place: %v", bad)
	}
	if err := os.Truncate(s.BlobPath(x), 2); err != nil {
		t.Fatal(err)
	}
	if bad := s.CheckAvatar("a"); bad != nil {
		t.Fatalf("repaired: %v", bad)
	}
	y := digestOf([]byte("why"))
	if err := os.Remove(s.BlobPath(y)); err != nil {
		t.Fatal(err)
	}
	if bad := s.CheckAvatar("a"); !slices.Equal(bad, []string{"y"}) {
		t.Fatalf("removed: %v", bad)
	}
	if err := os.Symlink(s.BlobPath(x), s.BlobPath(y)); err != nil {
		t.Fatal(err)
	}
	if bad := s.CheckAvatar("a"); !slices.Equal(bad, []string{"y"}) {
		t.Fatalf("a symlink: %v", bad)
	}
	if err := os.Remove(s.BlobPath(y)); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(s.BlobPath(y), 0o644); err != nil {
		t.Fatal(err)
	}
	if bad := s.CheckAvatar("a"); !slices.Equal(bad, []string{"y"}) {
		t.Fatalf("a fifo: %v", bad)
	}

	putT(t, s, "c", "1", map[string]string{"w": "double-u"})
	if err := s.RemoveBlob(digestOf([]byte("double-u"))); err != nil {
		t.Fatal(err)
	}
	if bad := s.CheckAvatar("c"); !slices.Equal(bad, []string{"w"}) {
		t.Fatalf("after RemoveBlob: %v", bad)
	}
}
