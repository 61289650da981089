package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
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
	s.waitRemovals()
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

	release := make(chan struct{})
	sizeCheckHook = func() { <-release }
	defer func() { sizeCheckHook = nil }()
	s, err := Open(dir, Options{FreeSpace: func(string) (int64, error) { return 1 << 40, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if files := blobFiles(t, s); len(files) != len(strays) {
		t.Fatalf("%d of %d strays left when Open returned: it removed them first", len(files), len(strays))
	}
	kept := commitT(t, s, strays[len(strays)-1]) // committed again meanwhile
	putT(t, s, "a", "1", map[string]string{"f": string(strays[len(strays)-1])})
	close(release)
	settle(s)
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
	settle(s)
	checkConsistent(t, s)
	if files := blobFiles(t, s); len(files) != 1 {
		t.Fatalf("%d files left after a second Open, want 1", len(files))
	}
}

// TestKeepLRUAnswersBeforeItsFilesGo: a gc of more than removeBatch files
// returns once its index change is durable; the background remover
// removes the files after (here held until the test lets it), a load
// committing one of those digests again meanwhile keeps its file, an
// EnsureSpace short of disk space waits for the removal, and a Close
// before the removal ends leaves strays the next Open removes.
func TestKeepLRUAnswersBeforeItsFilesGo(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	// 1 MiB of disk, 1 KiB a blob file.
	free := func(string) (int64, error) {
		ents, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
		return 1<<20 - int64(len(ents))*1024, err
	}
	s := openT(t, dir, Options{Now: clk.Now, FreeSpace: free})
	n := 2*removeBatch + 10
	for i := range n {
		putT(t, s, fmt.Sprintf("a%04d", i), "1", map[string]string{"own": fmt.Sprint(i)})
		clk.Advance(time.Second)
	}
	release := make(chan struct{})
	setHook(s, func(string) { <-release })
	done := make(chan error, 1)
	go func() {
		_, err := s.KeepLRU(10)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		close(release)
		t.Fatal("KeepLRU waited for the removal of its files")
	}
	if st := s.Stats(); st.Entries != 10 || st.Blobs != 10 {
		t.Fatalf("after KeepLRU: %d avatars, %d blobs; want 10 and 10", st.Entries, st.Blobs)
	}
	if got := len(blobFiles(t, s)); got != n {
		t.Fatalf("%d files before the removal ran, want all %d", got, n)
	}
	again := commitT(t, s, []byte("0")) // a0000's file, committed again
	putT(t, s, "again", "1", map[string]string{"own": "0"})

	// Short of space (the files still count against the disk): EnsureSpace
	// waits for the removal rather than evict.
	evicted := make(chan []string, 1)
	go func() {
		ev, err := s.EnsureSpace(1<<20 - 100*1024)
		if err != nil {
			t.Error(err)
		}
		evicted <- ev
	}()
	close(release)
	if ev := <-evicted; len(ev) != 0 {
		t.Fatalf("EnsureSpace evicted %v while the gc's files were going", ev)
	}
	checkConsistent(t, s)
	if got := blobFiles(t, s); len(got) != 11 || !slices.Contains(got, again) {
		t.Fatalf("files left: %d, want the 10 kept avatars' and the one committed again", len(got))
	}
	s.Close()

	// Closed in the middle: the next Open removes what is left.
	s = openT(t, dir, Options{Now: clk.Now})
	for i := range n {
		putT(t, s, fmt.Sprintf("b%04d", i), "1", map[string]string{"own": fmt.Sprint("b", i)})
		clk.Advance(time.Second)
	}
	setHook(s, func(string) { // every file waits until Close stops the removal
		s.remover.mu.Lock()
		stop := s.remover.stop
		s.remover.mu.Unlock()
		<-stop
	})
	if _, err := s.KeepLRU(0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if got := len(blobFiles(t, s)); got <= 11 {
		t.Fatalf("%d files left after a Close in the middle of the removal; the removal did not stop", got)
	}
	s = openT(t, dir, Options{Now: clk.Now})
	defer s.Close()
	settle(s)
	checkConsistent(t, s)
	if got := len(blobFiles(t, s)); got != 0 {
		t.Fatalf("%d files left after the next Open", got)
	}
}

func setHook(s *Store, f func(d string)) {
	s.remover.mu.Lock()
	s.remover.hook = f
	s.remover.mu.Unlock()
}

// settle waits for what Open left running and for s's background
// removals (which the first may queue).
func settle(s *Store) {
	s.waitSizeCheck()
	s.waitRemovals()
}

// TestGCRebuildsIndex: a gc dropping most avatars and blob records
// rebuilds those buckets with what it keeps (writeIndex); after a reopen
// the kept avatars have their records, raw manifests and last uses, and
// the buckets hold nothing else.
func TestGCRebuildsIndex(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	s := openT(t, dir, Options{Now: clk.Now})
	n := 2*removeBatch + 10
	for i := range n {
		a := avatarT(t, s, fmt.Sprintf("a%04d", i), "1", map[string]string{"own": fmt.Sprint(i), "shared": "shared"})
		a.RawManifest = fmt.Appendf(nil, `{"raw":%d}`, i)
		a.LastUsed = clk.Now()
		if err := s.Put(a); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	if _, err := s.KeepLRU(10); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openT(t, dir, Options{Now: clk.Now})
	defer s.Close()
	settle(s)
	checkConsistent(t, s)
	for i := n - 10; i < n; i++ {
		id := fmt.Sprintf("a%04d", i)
		a, ok := s.Get(id)
		if !ok || len(a.Manifest.Assets) != 2 {
			t.Fatalf("%s after the gc: %v %+v", id, ok, a)
		}
		if raw, err := s.RawManifest(id); err != nil || string(raw) != fmt.Sprintf(`{"raw":%d}`, i) {
			t.Fatalf("%s's raw manifest after the gc: %q %v", id, raw, err)
		}
		if want := newClock().Now().Add(time.Duration(i) * time.Second); !a.LastUsed.Equal(want) {
			t.Fatalf("%s last used %v, want %v", id, a.LastUsed, want)
		}
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		for name, want := range map[string]int{"avatars": 10, "manifests": 10, "lastused": 10, "blobs": 11} {
			if got := tx.Bucket([]byte(name)).Stats().KeyN; got != want {
				return fmt.Errorf("bucket %s holds %d keys, want %d", name, got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(blobFiles(t, s)); got != 11 {
		t.Fatalf("%d files, want 11", got)
	}
}
