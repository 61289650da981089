package store

import (
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/assetd/assetd/internal/manifest"
)

// TestOpenDecodesOnDemand: Open keeps no avatar decoded; Get decodes the
// one asked for and keeps it (the hot set), at most maxHot of them.
func TestOpenDecodesOnDemand(t *testing.T) {
	defer func(n int) { maxHot = n }(maxHot)
	maxHot = 3
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	for i := range 5 {
		putT(t, s, fmt.Sprint("a", i), "1", map[string]string{"f": fmt.Sprint(i), "shared": "shared"})
	}
	if len(s.hot) > maxHot {
		t.Fatalf("%d avatars hot after 5 puts, want ≤ %d", len(s.hot), maxHot)
	}
	s.Close()
	s = openT(t, dir, Options{})
	defer s.Close()
	if len(s.hot) != 0 {
		t.Fatalf("Open decoded %d avatars", len(s.hot))
	}
	for i := range 5 {
		a, ok := s.Get(fmt.Sprint("a", i))
		if !ok || a.Version != "1" || len(a.Manifest.Assets) != 2 || a.LastUsed.IsZero() {
			t.Fatalf("Get(a%d) = %+v, %v", i, a, ok)
		}
		if len(s.hot) > maxHot {
			t.Fatalf("%d avatars hot, want ≤ %d", len(s.hot), maxHot)
		}
	}
	checkConsistent(t, s)
}

// TestManifestIdentityKept: two reads of one version share their
// *Manifest even when the avatar left the hot set between them, while
// anything holds it (the manager compares the pointers); an edit keeps
// it and a new version has another.
func TestManifestIdentityKept(t *testing.T) {
	defer func(n int) { maxHot = n }(maxHot)
	maxHot = 1
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	putT(t, s, "alice", "1", map[string]string{"f": "alice"})
	putT(t, s, "bob", "1", map[string]string{"f": "bob"})
	s.Close()
	s = openT(t, dir, Options{})
	defer s.Close()
	a1, _ := s.Get("alice")
	s.Get("bob") // alice leaves the hot set
	if _, hot := s.hot["alice"]; hot {
		t.Fatal("alice is still hot")
	}
	a2, _ := s.Get("alice")
	if a1.Manifest != a2.Manifest {
		t.Fatal("a second read of the same version has another *Manifest")
	}
	if err := s.SetPinned("alice", true); err != nil {
		t.Fatal(err)
	}
	s.Get("bob")
	a3, _ := s.Get("alice")
	if a3.Manifest != a1.Manifest || !a3.Pinned {
		t.Fatalf("after an edit: pinned %v, same manifest %v", a3.Pinned, a3.Manifest == a1.Manifest)
	}
	putT(t, s, "alice", "2", map[string]string{"f": "alice 2"})
	s.Get("bob")
	a4, _ := s.Get("alice")
	if a4.Manifest == a1.Manifest || a4.Version != "2" {
		t.Fatal("a new version kept the old *Manifest")
	}
	runtime.KeepAlive(a1)
}

// TestEachWalksInChunks: Each (and List) see every avatar, by ID, in
// chunks of walkChunk, with lastUsed from memory, and add none to the
// hot set; one removed between chunks is not listed.
func TestEachWalksInChunks(t *testing.T) {
	defer func(n int) { walkChunk = n }(walkChunk)
	walkChunk = 2
	clk := newClock()
	dir := t.TempDir()
	s := openT(t, dir, Options{Now: clk.Now})
	for i := range 7 {
		putT(t, s, fmt.Sprint("a", i), "1", map[string]string{"f": fmt.Sprint(i)})
	}
	s.Close()
	s = openT(t, dir, Options{Now: clk.Now})
	defer s.Close()
	var ids []string
	err := s.Each(func(a *Avatar) bool {
		ids = append(ids, a.ID)
		if a.LastUsed.IsZero() || a.Manifest.AvatarID != a.ID {
			t.Errorf("%s: %+v", a.ID, a)
		}
		if a.ID == "a2" {
			if err := s.Delete("a5"); err != nil {
				t.Fatal(err)
			}
		}
		return a.ID != "a6"
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ids) != "[a0 a1 a2 a3 a4 a6]" {
		t.Fatalf("Each listed %v", ids)
	}
	if len(s.hot) != 0 {
		t.Fatalf("Each left %d avatars hot", len(s.hot))
	}
	if l := s.List(); len(l) != 6 || l[0].ID != "a0" || l[5].ID != "a6" {
		t.Fatalf("List: %d avatars", len(l))
	}
}

// TestGetDuringEdits: reads racing edits and new versions never pair a
// record with another version's *Manifest, and leave the hot set as the
// index has it.
func TestGetDuringEdits(t *testing.T) {
	defer func(n int) { maxHot = n }(maxHot)
	maxHot = 1
	s := openT(t, t.TempDir(), Options{})
	defer s.Close()
	putT(t, s, "alice", "0", map[string]string{"f": "v0"})
	putT(t, s, "bob", "1", map[string]string{"f": "bob"})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				s.Get("bob") // alice in and out of the hot set
				if a, ok := s.Get("alice"); ok && a.Manifest.Version != a.Version {
					t.Errorf("version %s with the manifest of %s", a.Version, a.Manifest.Version)
					return
				}
				s.CheckAvatar("alice")
			}
		})
	}
	for i := range 30 {
		if i%3 == 0 {
			putT(t, s, "alice", fmt.Sprint(i), map[string]string{"f": fmt.Sprint("v", i)})
		} else if err := s.SetPinned("alice", i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	checkConsistent(t, s)
}

// TestReconcileInChunks: Open's listing of blobs/ read a few names at a
// time still finds every stray, every truncated blob (its avatar damaged)
// and leaves a file that is not a digest alone.
func TestReconcileInChunks(t *testing.T) {
	defer func(n int) { scanChunk = n }(scanChunk)
	scanChunk = 2
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	for i := range 5 {
		putT(t, s, fmt.Sprint("a", i), "1", map[string]string{"f": fmt.Sprint(i), "shared": "shared"})
	}
	stray := []byte("stray")
	if err := os.WriteFile(s.BlobPath(digestOf(stray)), stray, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.BlobPath("README"), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	truncated := s.BlobPath(digestOf([]byte("3")))
	if err := os.Chmod(truncated, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(truncated, 0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openT(t, dir, Options{})
	defer s.Close()
	if _, err := os.Stat(s.BlobPath(digestOf(stray))); !os.IsNotExist(err) {
		t.Fatalf("stray kept: %v", err)
	}
	if _, err := os.Stat(s.BlobPath("README")); err != nil {
		t.Fatalf("a file that is not a digest: %v", err)
	}
	os.Remove(s.BlobPath("README"))
	for i := range 5 {
		a, _ := s.Get(fmt.Sprint("a", i))
		if damaged := a.State == StateDamaged; damaged != (i == 3) {
			t.Fatalf("a%d: state %s, damaged %v", i, a.State, a.Damaged)
		}
	}
	if st := s.Stats(); st.Blobs != 5 || st.Damaged != 1 || st.Entries != 5 {
		t.Fatalf("Stats = %+v", st)
	}
	checkConsistent(t, s)
}

// TestCheckLeavesHotSet: CheckAvatar of an avatar out of the hot set (the
// blob watcher's rescan checks every one) decodes it without adding it.
func TestCheckLeavesHotSet(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	putT(t, s, "alice", "1", map[string]string{"f": "alice"})
	s.Close()
	s = openT(t, dir, Options{})
	defer s.Close()
	if bad := s.CheckAvatar("alice"); bad != nil {
		t.Fatalf("CheckAvatar = %v", bad)
	}
	if len(s.hot) != 0 {
		t.Fatal("CheckAvatar added alice to the hot set")
	}
	if err := os.Remove(s.BlobPath(digestOf([]byte("alice")))); err != nil {
		t.Fatal(err)
	}
	if bad := s.CheckAvatar("alice"); len(bad) != 1 || bad[0] != "f" {
		t.Fatalf("CheckAvatar after a removal = %v", bad)
	}
}

// TestSizeCheckAfterOpen: Open returns before it has stat'd every blob;
// meanwhile a check stats the files it is asked about (a blob truncated
// while the store was closed is found as one truncated while it is open),
// and the size check then records the damage as Open did.
func TestSizeCheckAfterOpen(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	putT(t, s, "alice", "1", map[string]string{"f": "alice's", "g": "shared"})
	putT(t, s, "bob", "1", map[string]string{"g": "shared"})
	s.Close()
	victim := s.BlobPath(digestOf([]byte("alice's")))
	if err := os.Chmod(victim, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(victim, 1); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer func() { sizeCheckHook = nil }()
	sizeCheckHook = func() { <-release }
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if a, _ := s.Get("alice"); a.State != StateReady {
		t.Fatalf("before the size check: %s", a.State)
	}
	if bad := s.CheckAvatar("alice"); len(bad) != 1 || bad[0] != "f" {
		t.Fatalf("CheckAvatar before the size check = %v", bad)
	}
	close(release)
	<-s.checking.done
	a, _ := s.Get("alice")
	if a.State != StateDamaged || len(a.Damaged) != 1 || a.Damaged[0] != "f" {
		t.Fatalf("after the size check: %s %v", a.State, a.Damaged)
	}
	if b, _ := s.Get("bob"); b.State != StateReady {
		t.Fatalf("bob: %s", b.State)
	}
	if s.HasBlob(digestOf([]byte("alice's"))) {
		t.Fatal("the truncated blob is still committed")
	}
	if _, err := os.Stat(victim); !os.IsNotExist(err) {
		t.Fatalf("the truncated file was kept: %v", err)
	}
	checkConsistent(t, s)
}

// TestCloseDuringSizeCheck: Close stops the size check Open left running
// and waits for it, whatever it is doing.
func TestCloseDuringSizeCheck(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	putT(t, s, "alice", "1", map[string]string{"f": "alice's"})
	s.Close()
	started, release := make(chan struct{}), make(chan struct{})
	defer func() { sizeCheckHook = nil }()
	sizeCheckHook = func() { close(started); <-release }
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	closed := make(chan error)
	go func() { closed <- s.Close() }()
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

// TestRawDigest: rawDigest accepts what manifest.ValidDigest does and
// decodes it as encoding/hex does.
func TestRawDigest(t *testing.T) {
	good := digestOf([]byte("x"))
	for _, in := range []string{good, strings.ToUpper(good), good[:63], good + "0", good[:10] + "g" + good[11:], "", good[:63] + ":"} {
		d, ok := rawDigest(in)
		_, okBytes := rawDigest([]byte(in))
		if want := manifest.ValidDigest(in); ok != want || okBytes != want {
			t.Errorf("rawDigest(%q) ok %v, ValidDigest %v", in, ok, want)
		}
		if ok && hex.EncodeToString(d[:]) != in {
			t.Errorf("rawDigest(%q) = %x", in, d)
		}
	}
}
