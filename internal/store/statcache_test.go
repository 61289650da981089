package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// statsOf runs CheckAvatar(id) and returns its answer and the fstatat
// calls it made.
func statsOf(s *Store, id string) ([]string, int64) {
	before := s.statc.stats.Load()
	bad := s.CheckAvatar(id)
	return bad, s.statc.stats.Load() - before
}

// watched opens a store whose blob directory watch is on, or skips: the
// directory of t.TempDir() is not on a file system the cache trusts. Its
// clock stands still unless opts has one: a trust does not expire
// because a loaded machine took a second between two checks.
func watched(t *testing.T, opts Options) *Store {
	t.Helper()
	if opts.Now == nil {
		opts.Now = newClock().Now
	}
	s := openT(t, t.TempDir(), opts)
	t.Cleanup(func() { s.Close() })
	if off := statCacheOff(s); off != "" {
		t.Skipf("the stat cache is off here: %s", off)
	}
	return s
}

// statCacheOff starts s's stat cache as a first check would and says why
// it is off ("" when on).
func statCacheOff(s *Store) string {
	s.statc.mu.Lock()
	defer s.statc.mu.Unlock()
	s.startStatCacheLocked()
	return s.statc.off
}

// TestCheckTrustsOnlyWhatTheWatchVouchesFor: a second check of an
// unchanged avatar makes no stat (the cache is on), and each way of
// damaging a blob behind the store's back after that, truncated in
// place, removed, replaced by a rename, replaced by a directory, is
// reported by the very next check; a repaired blob is trusted again
// after one stat. A cache that trusted blindly would report none.
func TestCheckTrustsOnlyWhatTheWatchVouchesFor(t *testing.T) {
	s := watched(t, Options{})
	putT(t, s, "a", "1", map[string]string{"x": "ex", "y": "why", "z": "zed", "copy": "ex"})
	if bad, n := statsOf(s, "a"); bad != nil || n != 3 {
		t.Fatalf("first check: %v, %d stats; want none bad, 3 stats (one per distinct blob)", bad, n)
	}
	if bad, n := statsOf(s, "a"); bad != nil || n != 0 {
		t.Fatalf("unchanged: %v, %d stats; want none bad, 0 stats", bad, n)
	}
	x, y, z := digestOf([]byte("ex")), digestOf([]byte("why")), digestOf([]byte("zed"))

	if err := os.Chmod(s.BlobPath(x), 0o644); err != nil {
		t.Fatal(err)
	}
	if bad, n := statsOf(s, "a"); bad != nil || n != 1 {
		t.Fatalf("chmod: %v, %d stats; want none bad, x stat'd again", bad, n)
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
	if bad, n := statsOf(s, "a"); bad != nil || n != 1 {
		t.Fatalf("repaired: %v, %d stats", bad, n)
	}
	if bad, n := statsOf(s, "a"); bad != nil || n != 0 {
		t.Fatalf("repaired, unchanged: %v, %d stats", bad, n)
	}

	if err := os.Remove(s.BlobPath(y)); err != nil {
		t.Fatal(err)
	}
	if bad := s.CheckAvatar("a"); !slices.Equal(bad, []string{"y"}) {
		t.Fatalf("removed: %v", bad)
	}
	if err := os.WriteFile(s.BlobPath(y), []byte("why"), 0o444); err != nil {
		t.Fatal(err)
	}
	if bad := s.CheckAvatar("a"); bad != nil {
		t.Fatalf("put back: %v", bad)
	}

	other := filepath.Join(s.Dir(), "tmp", "other")
	if err := os.WriteFile(other, []byte("a longer zed"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, s.BlobPath(z)); err != nil {
		t.Fatal(err)
	}
	if bad := s.CheckAvatar("a"); !slices.Equal(bad, []string{"z"}) {
		t.Fatalf("replaced by a rename: %v", bad)
	}
	if err := os.Remove(s.BlobPath(z)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(s.BlobPath(z), 0o755); err != nil {
		t.Fatal(err)
	}
	if bad := s.CheckAvatar("a"); !slices.Equal(bad, []string{"z"}) {
		t.Fatalf("replaced by a directory: %v", bad)
	}
}

// TestCheckStatsHardLinkedBlobs: a write through a hard link in another
// directory reaches no watch of blobs/sha256, so a blob with more than
// one link is stat'd at every check; truncated through the link, it is
// reported.
func TestCheckStatsHardLinkedBlobs(t *testing.T) {
	s := watched(t, Options{})
	putT(t, s, "a", "1", map[string]string{"x": "ex", "y": "why"})
	x := digestOf([]byte("ex"))
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Link(s.BlobPath(x), link); err != nil {
		t.Skipf("no hard link across these directories: %v", err)
	}
	statsOf(s, "a")
	if bad, n := statsOf(s, "a"); bad != nil || n != 1 {
		t.Fatalf("unchanged: %v, %d stats; want none bad, the linked blob stat'd", bad, n)
	}
	if err := os.Chmod(link, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(link, 1); err != nil {
		t.Fatal(err)
	}
	if bad := s.CheckAvatar("a"); !slices.Equal(bad, []string{"x"}) {
		t.Fatalf("truncated through a link: %v", bad)
	}
}

// TestCheckTrustExpires: a hard link made after a blob was trusted is not
// seen by the watch (its link count changes without an event in
// blobs/sha256); a trust lasts trustFor at most, so a file truncated
// through that link is reported once that much time has passed.
func TestCheckTrustExpires(t *testing.T) {
	clk := newClock()
	s := watched(t, Options{Now: clk.Now})
	putT(t, s, "a", "1", map[string]string{"x": "ex"})
	x := digestOf([]byte("ex"))
	statsOf(s, "a")
	if _, n := statsOf(s, "a"); n != 0 {
		t.Fatalf("unchanged: %d stats, want 0", n)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Link(s.BlobPath(x), link); err != nil {
		t.Skipf("no hard link across these directories: %v", err)
	}
	if err := os.Chmod(link, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(link, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(trustFor)
	if bad := s.CheckAvatar("a"); !slices.Equal(bad, []string{"x"}) {
		t.Fatalf("truncated through a link made after the trust, %v later: %v", trustFor, bad)
	}
}

// TestCheckAfterOverflow: when more changes happen than the kernel queues
// (fs.inotify.max_queued_events), it drops the rest, the damage of a
// trusted blob among them, and queues an overflow instead: the next
// check trusts nothing and finds the damage.
func TestCheckAfterOverflow(t *testing.T) {
	data, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		t.Skip(err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || limit > 1<<17 {
		t.Skipf("max_queued_events %q: too many to overflow in a test", data)
	}
	s := watched(t, Options{})
	putT(t, s, "a", "1", map[string]string{"x": "ex", "y": "why"})
	statsOf(s, "a")
	if _, n := statsOf(s, "a"); n != 0 {
		t.Fatalf("unchanged: %d stats, want 0", n)
	}
	// Alternate chmods of two files: the kernel merges an event only
	// with an identical one at the queue's tail.
	var ab [2]string
	for i := range ab {
		ab[i] = filepath.Join(s.Dir(), "blobs", "sha256", fmt.Sprintf("noise%d", i))
		if err := os.WriteFile(ab[i], nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range limit + 1 {
		if err := os.Chmod(ab[i%2], 0o644|os.FileMode(i%2)); err != nil {
			t.Fatal(err)
		}
	}
	x := digestOf([]byte("ex"))
	if err := os.Remove(s.BlobPath(x)); err != nil {
		t.Fatal(err)
	}
	if bad := s.CheckAvatar("a"); !slices.Equal(bad, []string{"x"}) {
		t.Fatalf("removed after an overflow: %v", bad)
	}
	if off := statCacheOff(s); off != "" {
		t.Fatalf("the cache went off after an overflow: %s", off)
	}
}

// TestCheckWithoutInotify: on a file system the cache does not know to
// report every change (NFS, FUSE, ...), every check stats every blob.
func TestCheckWithoutInotify(t *testing.T) {
	local := localFS
	localFS = func(int64) bool { return false }
	t.Cleanup(func() { localFS = local })
	s := openT(t, t.TempDir(), Options{})
	defer s.Close()
	if off := statCacheOff(s); !strings.Contains(off, "not known") {
		t.Fatalf("cache off because %q, want the file system type", off)
	}
	putT(t, s, "a", "1", map[string]string{"x": "ex", "y": "why"})
	for range 3 {
		if bad, n := statsOf(s, "a"); bad != nil || n != 2 {
			t.Fatalf("check: %v, %d stats; want none bad, 2 stats", bad, n)
		}
	}
	if err := os.Remove(s.BlobPath(digestOf([]byte("ex")))); err != nil {
		t.Fatal(err)
	}
	if bad := s.CheckAvatar("a"); !slices.Equal(bad, []string{"x"}) {
		t.Fatalf("removed: %v", bad)
	}
}

// TestCheckConcurrentDamage: checks running all the time on other
// goroutines (whose drains may take the event of a change) never make
// the next check after a change trust a stat made before it.
func TestCheckConcurrentDamage(t *testing.T) {
	s := watched(t, Options{})
	putT(t, s, "a", "1", map[string]string{"x": "ex", "y": "why"})
	x := s.BlobPath(digestOf([]byte("ex")))
	if err := os.Chmod(x, 0o644); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					s.CheckAvatar("a")
				}
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	for i := range 300 {
		if err := os.Truncate(x, 1); err != nil {
			t.Fatal(err)
		}
		if bad := s.CheckAvatar("a"); !slices.Equal(bad, []string{"x"}) {
			t.Fatalf("round %d, truncated: %v", i, bad)
		}
		if err := os.Truncate(x, 2); err != nil {
			t.Fatal(err)
		}
		if bad := s.CheckAvatar("a"); bad != nil {
			t.Fatalf("round %d, repaired: %v", i, bad)
		}
	}
}

// inotifyFDs counts this process's open inotify instances.
func inotifyFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && l == "anon_inode:inotify" {
			n++
		}
	}
	return n
}

// TestStatCacheOpensAtTheFirstCheck: a store no check reads holds no
// inotify instance (they are counted per user), and its Close closes no
// descriptor it does not own; the first check opens one, Close closes it.
func TestStatCacheOpensAtTheFirstCheck(t *testing.T) {
	before := inotifyFDs(t)
	s := openT(t, t.TempDir(), Options{})
	if n := inotifyFDs(t); n != before {
		t.Errorf("Open: %d inotify instances, want %d", n, before)
	}
	putT(t, s, "a", "1", map[string]string{"x": "ex"})
	if n := inotifyFDs(t); n != before {
		t.Errorf("Put: %d inotify instances, want %d", n, before)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.FcntlInt(0, unix.F_GETFD, 0); err != nil {
		t.Fatalf("Close of a store never checked closed descriptor 0: %v", err)
	}

	s = watched(t, Options{})
	if n := inotifyFDs(t); n != before+1 {
		t.Errorf("after the first check: %d inotify instances, want %d", n, before+1)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := inotifyFDs(t); n != before {
		t.Errorf("after Close: %d inotify instances, want %d", n, before)
	}
}

// TestCheckManyFiles: an avatar of more than 64 files is trusted file by
// file like any other (the bit sets grow past one word), and the damage
// of its last file is reported.
func TestCheckManyFiles(t *testing.T) {
	s := watched(t, Options{})
	files := map[string]string{}
	for i := range 150 {
		files[fmt.Sprintf("f%03d", i)] = fmt.Sprintf("content %d", i)
	}
	putT(t, s, "a", "1", files)
	if bad, n := statsOf(s, "a"); bad != nil || n != 150 {
		t.Fatalf("first check: %v, %d stats; want none bad, 150", bad, n)
	}
	if bad, n := statsOf(s, "a"); bad != nil || n != 0 {
		t.Fatalf("unchanged: %v, %d stats; want none bad, 0", bad, n)
	}
	if err := os.Remove(s.BlobPath(digestOf([]byte("content 149")))); err != nil {
		t.Fatal(err)
	}
	if bad, n := statsOf(s, "a"); !slices.Equal(bad, []string{"f149"}) || n != 1 {
		t.Fatalf("the last removed: %v, %d stats; want f149, 1", bad, n)
	}
}
