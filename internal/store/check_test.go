package store

import (
	"os"
	"slices"
	"testing"
	"time"
)

// TestCheckAvatarWithin: a positive check is trusted for maxAge, never
// longer, and only while the blobs directory is unchanged; CheckAvatar
// always stats; a change of the avatar forgets it.
func TestCheckAvatarWithin(t *testing.T) {
	clk := newClock()
	s := openT(t, t.TempDir(), Options{Now: clk.Now})
	defer s.Close()
	putT(t, s, "a", "1", map[string]string{"x": "ex", "y": "why", "copy": "ex"})
	// Directory times within racyGrace of the wall clock are not trusted.
	s.wall = func() time.Time { return time.Now().Add(-time.Minute) }
	if bad := s.CheckAvatarWithin("a", time.Second); bad != nil || s.avatars["a"].checked.Load() != nil {
		t.Fatalf("intact: %v, or a racy directory stamp trusted", bad)
	}
	later := time.Now().Add(time.Minute)
	s.wall = func() time.Time { return later }
	if bad := s.CheckAvatarWithin("a", time.Second); bad != nil {
		t.Fatalf("intact: %v", bad)
	}
	// A blob truncated in place leaves the directory as it was: trusted
	// for the window, no longer.
	x := digestOf([]byte("ex"))
	if err := os.Chmod(s.BlobPath(x), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(s.BlobPath(x), 1); err != nil {
		t.Fatal(err)
	}
	if bad := s.CheckAvatarWithin("a", time.Second); bad != nil {
		t.Fatalf("within the window: %v", bad)
	}
	clk.Advance(time.Second)
	if bad := s.CheckAvatarWithin("a", time.Second); !slices.Equal(bad, []string{"copy", "x"}) {
		t.Fatalf("after the window: %v", bad)
	}
	// A blob removed changes the directory: reported at once.
	if err := os.Truncate(s.BlobPath(x), 2); err != nil {
		t.Fatal(err)
	}
	if bad := s.CheckAvatarWithin("a", time.Second); bad != nil {
		t.Fatalf("repaired: %v", bad)
	}
	if err := os.Remove(s.BlobPath(digestOf([]byte("why")))); err != nil {
		t.Fatal(err)
	}
	s.wall = func() time.Time { return time.Now().Add(time.Minute) }
	if bad := s.CheckAvatarWithin("a", time.Second); !slices.Equal(bad, []string{"y"}) {
		t.Fatalf("after a removal: %v", bad)
	}

	// CheckAvatar stats whatever a recent check found.
	putT(t, s, "b", "1", map[string]string{"z": "zed"})
	if bad := s.CheckAvatarWithin("b", time.Hour); bad != nil {
		t.Fatal(bad)
	}
	z := digestOf([]byte("zed"))
	if err := os.Remove(s.BlobPath(z)); err != nil {
		t.Fatal(err)
	}
	if bad := s.CheckAvatar("b"); !slices.Equal(bad, []string{"z"}) {
		t.Fatalf("CheckAvatar: %v", bad)
	}
	if bad := s.CheckAvatarWithin("b", time.Hour); !slices.Equal(bad, []string{"z"}) {
		t.Fatalf("after a failed check: %v", bad)
	}

	// RemoveBlob (Verify's drop) forgets a positive check.
	putT(t, s, "c", "1", map[string]string{"w": "double-u"})
	if bad := s.CheckAvatarWithin("c", time.Hour); bad != nil {
		t.Fatal(bad)
	}
	if err := s.RemoveBlob(digestOf([]byte("double-u"))); err != nil {
		t.Fatal(err)
	}
	if bad := s.CheckAvatarWithin("c", time.Hour); !slices.Equal(bad, []string{"w"}) {
		t.Fatalf("after RemoveBlob: %v", bad)
	}
}
