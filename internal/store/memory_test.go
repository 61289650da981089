package store

import (
	"fmt"
	"os"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
)

// TestRawManifestStaysInIndex: the raw manifest is not held in memory;
// RawManifest reads it; an edit of the same version keeps it and a Put
// without one drops it.
func TestRawManifestStaysInIndex(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	a := avatarT(t, s, "alice", "1", map[string]string{"a.bin": "a"})
	a.RawManifest = []byte(`{"signed":"as sent"}`)
	if err := s.Put(a); err != nil {
		t.Fatal(err)
	}
	raw := func() string {
		t.Helper()
		r, err := s.RawManifest("alice")
		if err != nil {
			t.Fatal(err)
		}
		return string(r)
	}
	if s.hot["alice"].RawManifest != nil {
		t.Fatal("Put kept the raw manifest in memory")
	}
	if err := s.SetPinned("alice", true); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openT(t, dir, Options{})
	defer func() { s.Close() }()
	if got, _ := s.Get("alice"); got.RawManifest != nil || s.hot["alice"].RawManifest != nil {
		t.Fatal("Open loaded the raw manifest into memory")
	}
	if got := raw(); got != `{"signed":"as sent"}` {
		t.Fatalf("after an edit and a reopen, RawManifest = %q", got)
	}
	b := avatarT(t, s, "alice", "2", map[string]string{"a.bin": "a2"})
	if err := s.Put(b); err != nil {
		t.Fatal(err)
	}
	if got := raw(); got != "" {
		t.Fatalf("a version put without a raw manifest kept the old one: %q", got)
	}
	if r, err := s.RawManifest("nobody"); r != nil || err != nil {
		t.Fatalf("RawManifest(nobody) = %q, %v", r, err)
	}
}

// TestKeepLRUManyRemovals: a gc removing more files than one remover
// takes (removeBlobFiles' workers) leaves exactly the kept avatars' files.
func TestKeepLRUManyRemovals(t *testing.T) {
	clk := newClock()
	s := openT(t, t.TempDir(), Options{Now: clk.Now})
	defer s.Close()
	n := 3*removeBatch + 10
	for i := range n {
		putT(t, s, fmt.Sprintf("a%04d", i), "1", map[string]string{"shared": "shared", "own": fmt.Sprint(i)})
		clk.Advance(time.Second)
	}
	removed, err := s.KeepLRU(10)
	if err != nil || len(removed) != n-10 {
		t.Fatalf("KeepLRU removed %d, %v", len(removed), err)
	}
	checkConsistent(t, s)
	if files := blobFiles(t, s); len(files) != 11 {
		t.Fatalf("%d blob files left, want the 10 kept avatars' own and the shared one", len(files))
	}
}

// TestDecodeInterns: records decoded with one interner share the strings
// that recur (file paths, versions, sources, states), and a manifest's
// avatar ID is the record's.
func TestDecodeInterns(t *testing.T) {
	in := interner{}
	var as []Avatar
	for _, id := range []string{"alice", "bob"} {
		a := sampleAvatar()
		a.ID, a.Manifest.AvatarID = id, id
		b, err := encodeAvatar(a)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeAvatarIn(id, b, nil, in)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a.Manifest, got.Manifest); diff != "" {
			t.Fatal(diff)
		}
		if unsafe.StringData(got.Manifest.AvatarID) != unsafe.StringData(got.ID) {
			t.Fatal("the manifest's avatar ID is a second string")
		}
		as = append(as, got)
	}
	same := func(what, x, y string) {
		if x != y || unsafe.StringData(x) != unsafe.StringData(y) {
			t.Errorf("%s: not one string", what)
		}
	}
	same("path", as[0].Manifest.Assets[0].Path, as[1].Manifest.Assets[0].Path)
	same("version", as[0].Version, as[1].Version)
	same("source", as[0].Source, as[1].Source)
	same("state", string(as[0].State), string(as[1].State))
}

// TestOpenRemovesManyStraysAfter: many files no record holds (a crash in
// the middle of a gc) are removed after Open returns; a load committing
// one of those digests meanwhile keeps its file; Close stops the removal
// and the next Open removes the rest.
func TestOpenRemovesManyStraysAfter(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	var strays [][]byte
	for i := range 2*removeBatch + 5 {
		data := []byte(fmt.Sprint("stray ", i))
		strays = append(strays, data)
		if err := os.WriteFile(s.BlobPath(digestOf(data)), data, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	s = openT(t, dir, Options{})
	if s.strays == nil {
		t.Fatal("Open removed the strays before it returned")
	}
	kept := commitT(t, s, strays[len(strays)-1]) // committed again meanwhile
	putT(t, s, "a", "1", map[string]string{"f": string(strays[len(strays)-1])})
	<-s.strays.done
	checkConsistent(t, s)
	if files := blobFiles(t, s); len(files) != 1 || files[0] != kept {
		t.Fatalf("files left: %d, want only the one committed again", len(files))
	}
	s.Close()

	// Closed at once: the removal stops, the next Open finishes it.
	for _, data := range strays[:len(strays)-1] {
		if err := os.WriteFile(s.BlobPath(digestOf(data)), data, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	s = openT(t, dir, Options{})
	s.Close()
	s = openT(t, dir, Options{})
	defer s.Close()
	if s.strays != nil {
		<-s.strays.done
	}
	checkConsistent(t, s)
	if files := blobFiles(t, s); len(files) != 1 {
		t.Fatalf("%d files left after a second Open, want 1", len(files))
	}
}
