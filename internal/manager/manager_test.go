package manager

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/store"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(crashChild())
	}
	goleak.VerifyTestMain(m)
}

func mustLoad(t *testing.T, m *Manager, id string, o LoadOptions) *apitype.Avatar {
	t.Helper()
	a, err := m.Load(context.Background(), id, o)
	if err != nil {
		t.Fatalf("Load(%s): %v", id, err)
	}
	return a
}

func checkFiles(t *testing.T, a *apitype.Avatar, files map[string][]byte) {
	t.Helper()
	if len(a.Assets) != len(files) {
		t.Fatalf("%d assets, want %d", len(a.Assets), len(files))
	}
	for _, as := range a.Assets {
		b, err := os.ReadFile(as.LocalPath)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(files[as.Path]) {
			t.Errorf("%s: content differs", as.Path)
		}
	}
}

func TestConcurrentLoadsShareOneLoad(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	files := files3("rohan")
	e.o.Publish(avatarOf("rohan", "v1", files))
	gate := e.o.HoldBlobs(0)

	const callers = 10
	var joined atomic.Int32
	recs := make([]*recorder, callers)
	results := make([]*apitype.Avatar, callers)
	var wg sync.WaitGroup
	for i := range callers {
		recs[i] = &recorder{}
		var first sync.Once
		wg.Go(func() {
			a, err := e.m.Load(context.Background(), "rohan", LoadOptions{Progress: func(ev apitype.Event) {
				first.Do(func() {
					if joined.Add(1) == callers {
						gate.Free()
					}
				})
				recs[i].add(ev)
			}})
			if err != nil {
				t.Errorf("caller %d: %v", i, err)
			}
			results[i] = a
		})
	}
	wg.Wait()

	if n := e.o.ManifestGets("rohan"); n != 1 {
		t.Errorf("%d manifest requests, want 1", n)
	}
	for p, b := range files {
		if n := e.o.BlobGets(digestOf(b)); n != 1 {
			t.Errorf("%s: %d GETs, want 1", p, n)
		}
	}
	want := recs[0].events()
	for i, r := range recs {
		evs := r.events()
		last := evs[len(evs)-1]
		if last.Type != apitype.EventCompleted {
			t.Fatalf("caller %d ended with %+v", i, last)
		}
		if diff := cmp.Diff(want[len(want)-1], last); diff != "" {
			t.Errorf("caller %d completed event differs (-0 +%d):\n%s", i, i, diff)
		}
		if evs[0].Type != apitype.EventProgress || evs[0].State != apitype.StateDownloading {
			t.Errorf("caller %d first event %+v", i, evs[0])
		}
		if diff := cmp.Diff(results[0], results[i]); diff != "" {
			t.Errorf("caller %d result differs:\n%s", i, diff)
		}
	}
	checkFiles(t, results[0], files)
	if got := e.m.Metrics().LoadsByResult["ok"]; got != 1 {
		t.Errorf("ok loads = %d, want 1 shared load", got)
	}
}

func TestSharedBlobDownloadedOnce(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	shared := randomBytes("shared", 64<<10)
	a, b := files3("rohan"), files3("mei")
	a["anim/idle.bin"], b["anim/idle.bin"] = shared, shared
	e.o.Publish(avatarOf("rohan", "v1", a))
	e.o.Publish(avatarOf("mei", "v1", b))

	var wg sync.WaitGroup
	for _, id := range []string{"rohan", "mei"} {
		wg.Go(func() {
			if _, err := e.m.Load(context.Background(), id, LoadOptions{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := e.o.BlobGets(digestOf(shared)); n != 1 {
		t.Errorf("shared blob fetched %d times, want 1", n)
	}
	ra, err := e.m.Retrieve("rohan")
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, ra, a)
	rb, err := e.m.Retrieve("mei")
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, rb, b)

	// Clearing one leaves the shared file for the other.
	if err := e.m.Clear("rohan"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Retrieve("mei"); err != nil {
		t.Fatalf("mei after clearing rohan: %v", err)
	}
	if _, err := e.m.Retrieve("rohan"); !errors.Is(err, &errcode.Error{Code: errcode.AvatarAssetMissing, Reason: errcode.ReasonNotCached}) {
		t.Fatalf("rohan after clear: %v", err)
	}
}

func TestNewVersionDownloadsOnlyChangedFile(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	files := files3("rohan")
	e.o.Publish(avatarOf("rohan", "v1", files))
	v1 := mustLoad(t, e.m, "rohan", LoadOptions{})
	oldModel := digestOf(files["model.splat"])

	files2 := files3("rohan")
	files2["model.splat"] = randomBytes("rohan/model/v2", 100<<10)
	e.o.Publish(avatarOf("rohan", "v2", files2))
	before := e.o.TotalBlobGets()
	v2 := mustLoad(t, e.m, "rohan", LoadOptions{})
	if v1.Version != "v1" || v2.Version != "v2" {
		t.Fatalf("versions %s, %s", v1.Version, v2.Version)
	}
	if got := e.o.TotalBlobGets() - before; got != 1 {
		t.Errorf("new version made %d blob GETs, want 1", got)
	}
	if n := e.o.BlobGets(digestOf(files2["model.splat"])); n != 1 {
		t.Errorf("changed file fetched %d times", n)
	}
	checkFiles(t, v2, files2)
	if _, err := os.Stat(e.st.BlobPath(oldModel)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old version's blob still on disk: %v", err)
	}
}

func TestRevalidation(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	e.o.Publish(avatarOf("rohan", "v1", files3("rohan")))
	mustLoad(t, e.m, "rohan", LoadOptions{})
	gets := e.o.TotalBlobGets()

	a := mustLoad(t, e.m, "rohan", LoadOptions{})
	if e.o.ManifestGets("rohan") != 2 || e.o.NotModified("rohan") != 1 {
		t.Errorf("manifests %d, 304s %d; want 2 and 1", e.o.ManifestGets("rohan"), e.o.NotModified("rohan"))
	}
	if e.o.TotalBlobGets() != gets {
		t.Errorf("a 304 downloaded %d blobs", e.o.TotalBlobGets()-gets)
	}
	if a.State != apitype.StateReady {
		t.Errorf("state %s", a.State)
	}

	// With max-age the next loads ask nothing until it expires.
	e.o.SetMaxAge(3600)
	mustLoad(t, e.m, "rohan", LoadOptions{})
	n := e.o.Requests()
	mustLoad(t, e.m, "rohan", LoadOptions{})
	if got := e.o.Requests(); got != n {
		t.Errorf("a fresh avatar made %d requests", got-n)
	}
}

func TestStaleWhenOriginDown(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	files := files3("rohan")
	e.o.Publish(avatarOf("rohan", "v1", files))
	mustLoad(t, e.m, "rohan", LoadOptions{})
	events, cancel := e.m.Subscribe()
	defer cancel()

	e.o.SetStatus(http.StatusServiceUnavailable)
	rec := &recorder{}
	a := mustLoad(t, e.m, "rohan", LoadOptions{Progress: rec.add})
	if a.State != apitype.StateStale {
		t.Errorf("state %s, want stale", a.State)
	}
	checkFiles(t, a, files)
	evs := rec.events()
	if last := evs[len(evs)-1]; last.Type != apitype.EventCompleted || last.Avatar.State != apitype.StateStale {
		t.Errorf("last event %+v", last)
	}
	waitState(t, events, "rohan", apitype.StateStale)
	if r, err := e.m.Retrieve("rohan"); err != nil || r.State != apitype.StateStale {
		t.Errorf("Retrieve: %v %v", r, err)
	}
	if s := e.m.Stats(); s.Stale != 1 {
		t.Errorf("stats stale = %d", s.Stale)
	}

	// Back up: ready again.
	e.o.SetStatus(0)
	if a := mustLoad(t, e.m, "rohan", LoadOptions{}); a.State != apitype.StateReady {
		t.Errorf("state after recovery %s", a.State)
	}
	waitState(t, events, "rohan", apitype.StateReady)
}

func TestNonTransientErrorKeepsCache(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	e.o.Publish(avatarOf("rohan", "v1", files3("rohan")))
	mustLoad(t, e.m, "rohan", LoadOptions{})
	e.o.Withdraw("rohan")

	rec := &recorder{}
	_, err := e.m.Load(context.Background(), "rohan", LoadOptions{Progress: rec.add})
	var ee *errcode.Error
	if !errors.As(err, &ee) || ee.Code != errcode.AvatarIDUnrecognized || ee.AvatarID != "rohan" {
		t.Fatalf("Load of a withdrawn avatar: %v", err)
	}
	evs := rec.events()
	if last := evs[len(evs)-1]; last.Type != apitype.EventFailed || last.Error.Code != errcode.AvatarIDUnrecognized {
		t.Errorf("last event %+v", last)
	}
	if _, err := e.m.Retrieve("rohan"); err != nil {
		t.Errorf("cache not intact: %v", err)
	}
	if got := e.m.Metrics().LoadsByResult[string(errcode.AvatarIDUnrecognized)]; got != 1 {
		t.Errorf("metrics: %d failed loads", got)
	}
}

func TestInvalidIDMakesNoRequest(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	for _, id := range []string{"", "../etc", ".hidden", "a/b", "x y"} {
		_, err := e.m.Load(context.Background(), id, LoadOptions{})
		if !errors.Is(err, &errcode.Error{Code: errcode.AvatarIDUnrecognized, Reason: errcode.ReasonInvalidID}) {
			t.Errorf("Load(%q): %v", id, err)
		}
		if errs.HTTPStatus(err) != http.StatusBadRequest {
			t.Errorf("Load(%q): status %d", id, errs.HTTPStatus(err))
		}
		if _, err := e.m.Retrieve(id); !errors.Is(err, errcode.AvatarIDUnrecognized) {
			t.Errorf("Retrieve(%q): %v", id, err)
		}
	}
	if n := e.o.Requests(); n != 0 {
		t.Errorf("%d requests", n)
	}
}

func TestQuotaEvictionKeepsPinned(t *testing.T) {
	one := totalSize(files3("x"))
	e := newEnv(t, store.Options{MaxBytes: 2*one + one/2}, Options{})
	for _, id := range []string{"a", "b", "c"} {
		e.o.Publish(avatarOf(id, "v1", files3(id)))
	}
	mustLoad(t, e.m, "a", LoadOptions{Pin: true})
	mustLoad(t, e.m, "b", LoadOptions{})
	// a is the least recently used, but pinned: b goes.
	mustLoad(t, e.m, "c", LoadOptions{})
	if _, err := e.m.Retrieve("a"); err != nil {
		t.Errorf("pinned a evicted: %v", err)
	}
	if _, err := e.m.Retrieve("b"); !errors.Is(err, errcode.AvatarAssetMissing) {
		t.Errorf("b still cached: %v", err)
	}
	s := e.m.Stats()
	if s.TotalEntries != 2 || s.Pinned != 1 || s.TotalSize > s.MaxSize {
		t.Errorf("stats %+v", s)
	}

	// Nothing evictable: the load fails with insufficientStorage, cache intact.
	if err := e.m.SetPinned("c", true); err != nil {
		t.Fatal(err)
	}
	e.o.Publish(avatarOf("d", "v1", files3("d")))
	_, err := e.m.Load(context.Background(), "d", LoadOptions{})
	if !errors.Is(err, &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Reason: errcode.ReasonInsufficientStorage}) {
		t.Fatalf("load over quota: %v", err)
	}
	if l := e.m.List(); len(l.Avatars) != 2 || len(l.Loads) != 0 {
		t.Errorf("list %+v", l)
	}
}

func TestCancelLeavesNothingAndResumes(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	big := randomBytes("big", 512<<10)
	files := map[string][]byte{"model.splat": big}
	e.o.Publish(avatarOf("rohan", "v1", files))
	gate := e.o.HoldBlobs(200 << 10)
	events, unsub := e.m.Subscribe()
	defer unsub()

	halfway := make(chan struct{})
	var once sync.Once
	rec := &recorder{}
	errc := make(chan error, 1)
	go func() {
		_, err := e.m.Load(context.Background(), "rohan", LoadOptions{Progress: func(ev apitype.Event) {
			rec.add(ev)
			if ev.BytesDone >= 200<<10 {
				once.Do(func() { close(halfway) })
			}
		}})
		errc <- err
	}()
	select {
	case <-halfway:
	case err := <-errc:
		t.Fatalf("load ended early: %v", err)
	}
	if l := e.m.List(); len(l.Loads) != 1 || l.Loads[0].AvatarID != "rohan" || l.Loads[0].BytesDone < 200<<10 {
		t.Errorf("loads in flight %+v", l.Loads)
	}
	if !e.m.CancelLoading("rohan") {
		t.Fatal("CancelLoading = false")
	}
	err := <-errc
	var ee *errcode.Error
	if !errors.As(err, &ee) || ee.Code != errcode.Cancelled || ee.AvatarID != "rohan" {
		t.Fatalf("cancelled load: %v", err)
	}
	evs := rec.events()
	last := evs[len(evs)-1]
	if last.Type != apitype.EventFailed || last.Error.Code != errcode.Cancelled ||
		last.Error.Recovery != "Load the avatar again if it is still needed." {
		t.Errorf("last event %+v", last)
	}
	if _, err := e.m.Retrieve("rohan"); !errors.Is(err, errcode.AvatarAssetMissing) {
		t.Errorf("a cancelled load is visible: %v", err)
	}
	if l := e.m.List(); len(l.Avatars) != 0 || len(l.Loads) != 0 {
		t.Errorf("list after cancel %+v", l)
	}
	if e.m.CancelLoading("rohan") {
		t.Error("second CancelLoading = true")
	}
	// The cancelled load's failed event reached subscribers too.
	for ev := range events {
		if ev.Type == apitype.EventFailed && ev.AvatarID == "rohan" {
			break
		}
	}
	if p := e.st.Partial(digestOf(big)); p < 200<<10 {
		t.Errorf("partial of %d bytes kept, want >= %d", p, 200<<10)
	}

	gate.Free()
	served := e.o.BytesSent.Load()
	rec2 := &recorder{}
	a := mustLoad(t, e.m, "rohan", LoadOptions{Progress: rec2.add})
	checkFiles(t, a, files)
	for _, ev := range rec2.events() {
		if ev.BytesTotal > 0 {
			if ev.BytesDone < 200<<10 {
				t.Errorf("resumed load's first progress %+v does not count the partial", ev)
			}
			break
		}
	}
	second := e.o.BytesSent.Load() - served
	if second >= int64(len(big)) {
		t.Errorf("second load served %d bytes, the whole file is %d: no resume", second, len(big))
	}
	t.Logf("first load served %d bytes, the resumed one %d of %d", served, second, len(big))
}

func TestCancelAll(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	gate := e.o.HoldBlobs(0)
	defer gate.Free()
	for _, id := range []string{"a", "b"} {
		e.o.Publish(avatarOf(id, "v1", files3(id)))
		if _, cached, err := e.m.Start(context.Background(), id, LoadOptions{Background: true}); err != nil || cached != nil {
			t.Fatalf("Start(%s): %v %v", id, cached, err)
		}
	}
	if s := e.m.Stats(); s.LoadsInFlight != 2 {
		t.Errorf("loads in flight %d", s.LoadsInFlight)
	}
	if got := e.m.CancelAll(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("CancelAll = %v", got)
	}
	if got := e.m.CancelAll(); len(got) != 0 {
		t.Errorf("second CancelAll = %v", got)
	}
}

func TestRetrieve(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	files := files3("rohan")
	e.o.Publish(avatarOf("rohan", "v1", files))
	_, err := e.m.Retrieve("rohan")
	if !errors.Is(err, &errcode.Error{Code: errcode.AvatarAssetMissing, Reason: errcode.ReasonNotCached}) || errs.HTTPStatus(err) != 404 {
		t.Fatalf("Retrieve before load: %v", err)
	}
	mustLoad(t, e.m, "rohan", LoadOptions{})
	n := e.o.Requests()
	a, err := e.m.Retrieve("rohan")
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, a, files)
	if a.SizeBytes != totalSize(files) || a.Source != SourceOrigin || a.State != apitype.StateReady {
		t.Errorf("avatar %+v", a)
	}
	if got := e.o.Requests(); got != n {
		t.Errorf("Retrieve made %d requests", got-n)
	}
	if size, err := e.m.CacheSize("rohan"); err != nil || size != totalSize(files) {
		t.Errorf("CacheSize = %d, %v", size, err)
	}
	if got := e.m.AllCacheSize(); got != totalSize(files) {
		t.Errorf("AllCacheSize = %d", got)
	}

	// A file gone from disk: damaged, 409, announced.
	events, cancel := e.m.Subscribe()
	defer cancel()
	victim := e.st.BlobPath(digestOf(files["anim/talk.bin"]))
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	_, err = e.m.Retrieve("rohan")
	if !errors.Is(err, &errcode.Error{Code: errcode.AvatarAssetMissing, Reason: errcode.ReasonDamaged}) || errs.HTTPStatus(err) != 409 {
		t.Fatalf("Retrieve of a damaged avatar: %v", err)
	}
	ev := waitState(t, events, "rohan", apitype.StateDamaged)
	if ev.Error == nil || ev.Error.Reason != errcode.ReasonDamaged {
		t.Errorf("damaged event %+v", ev)
	}
	if got := e.o.Requests(); got != n {
		t.Errorf("Retrieve made %d requests", got-n)
	}
	// A load repairs it, downloading only the missing file.
	gets := e.o.TotalBlobGets()
	a = mustLoad(t, e.m, "rohan", LoadOptions{})
	if got := e.o.TotalBlobGets() - gets; got != 1 {
		t.Errorf("repair downloaded %d blobs, want 1", got)
	}
	checkFiles(t, a, files)
	if _, err := e.m.Retrieve("rohan"); err != nil {
		t.Errorf("after repair: %v", err)
	}
}

func TestProgressMonotonic(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	files := map[string][]byte{}
	for i, size := range []int{300 << 10, 200 << 10, 100 << 10, 10, 0} {
		files[string(rune('a'+i))+".bin"] = randomBytes(string(rune('a'+i)), size)
	}
	files["copy.bin"] = files["a.bin"] // one download, counted twice as in sizeBytes
	e.o.Publish(avatarOf("rohan", "v1", files))
	e.o.SetDelay(100 * time.Microsecond)
	rec := &recorder{}
	mustLoad(t, e.m, "rohan", LoadOptions{Progress: rec.add})
	evs := rec.events()
	if len(evs) < 3 {
		t.Fatalf("only %d events", len(evs))
	}
	prev := -1.0
	var prevDone int64
	for i, ev := range evs {
		if ev.Progress < prev || ev.Progress < 0 || ev.Progress > 1 {
			t.Fatalf("event %d: progress %v after %v", i, ev.Progress, prev)
		}
		if ev.Type == apitype.EventProgress && ev.BytesTotal > 0 && ev.BytesDone < prevDone {
			t.Fatalf("event %d: bytesDone %d after %d", i, ev.BytesDone, prevDone)
		}
		prev, prevDone = ev.Progress, ev.BytesDone
		if i < len(evs)-1 && (ev.Type != apitype.EventProgress || ev.State != apitype.StateDownloading) {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	if p := evs[len(evs)-2]; p.BytesTotal != totalSize(files) || p.BytesDone != p.BytesTotal || p.Progress != 1 {
		t.Errorf("last progress event %+v, total %d", p, totalSize(files))
	}
	if n := e.o.BlobGets(digestOf(files["a.bin"])); n != 1 {
		t.Errorf("a file listed twice was fetched %d times", n)
	}
	last := evs[len(evs)-1]
	if last.Type != apitype.EventCompleted || last.Progress != 1 || last.State != apitype.StateCompleted ||
		last.BytesDone != totalSize(files) || last.Avatar == nil {
		t.Errorf("last event %+v", last)
	}
}

func TestVerifySelfHeal(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{SelfHeal: true})
	files := files3("rohan")
	e.o.Publish(avatarOf("rohan", "v1", files))
	mustLoad(t, e.m, "rohan", LoadOptions{})
	res, err := e.m.Verify(context.Background(), "rohan")
	if err != nil || res.State != apitype.StateReady || res.Checked != 3 || len(res.Damaged) != 0 {
		t.Fatalf("Verify of an intact avatar: %+v %v", res, err)
	}

	events, cancel := e.m.Subscribe()
	defer cancel()
	victim := e.st.BlobPath(digestOf(files["model.splat"]))
	if err := os.Chmod(victim, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(victim, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("flip"), 10); err != nil {
		t.Fatal(err)
	}
	f.Close()

	res, err = e.m.Verify(context.Background(), "rohan")
	if err != nil {
		t.Fatal(err)
	}
	if res.State != apitype.StateDamaged || !slices.Equal(res.Damaged, []string{"model.splat"}) || !res.Healing {
		t.Errorf("Verify = %+v", res)
	}
	waitState(t, events, "rohan", apitype.StateDamaged)
	waitState(t, events, "rohan", apitype.StateReady)
	a, err := e.m.Retrieve("rohan")
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, a, files)
}

func TestVerifyWithoutSelfHeal(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	files := files3("rohan")
	e.o.Publish(avatarOf("rohan", "v1", files))
	mustLoad(t, e.m, "rohan", LoadOptions{})
	victim := e.st.BlobPath(digestOf(files["meta.json"]))
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	res, err := e.m.Verify(context.Background(), "rohan")
	if err != nil || res.State != apitype.StateDamaged || res.Healing || !slices.Equal(res.Damaged, []string{"meta.json"}) {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
	if s := e.m.Stats(); s.Damaged != 1 {
		t.Errorf("stats damaged %d", s.Damaged)
	}
	if _, err := e.m.Retrieve("rohan"); errs.HTTPStatus(err) != 409 {
		t.Errorf("Retrieve: %v", err)
	}
}

func TestClearAndLRU(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	for _, id := range []string{"a", "b", "c", "d"} {
		e.o.Publish(avatarOf(id, "v1", files3(id)))
		mustLoad(t, e.m, id, LoadOptions{Pin: id == "a"})
	}
	if _, err := e.m.Retrieve("b"); err != nil { // b is now more recent than c and d
		t.Fatal(err)
	}
	removed, err := e.m.ClearLRU(2)
	if err != nil || !slices.Equal(removed, []string{"c", "d"}) {
		t.Fatalf("ClearLRU(2) = %v, %v", removed, err)
	}
	if err := e.m.Clear("zzz"); !errors.Is(err, errcode.AvatarAssetMissing) {
		t.Errorf("Clear of an unknown avatar: %v", err)
	}
	if _, err := e.m.ClearLRU(-1); !errors.Is(err, errcode.BadRequest) {
		t.Errorf("ClearLRU(-1): %v", err)
	}
	ids, err := e.m.ClearAll()
	if err != nil || !slices.Equal(ids, []string{"a", "b"}) {
		t.Fatalf("ClearAll = %v, %v", ids, err)
	}
	if s := e.m.Stats(); s.TotalEntries != 0 || s.Blobs != 0 || s.TotalSize != 0 {
		t.Errorf("stats after ClearAll %+v", s)
	}
}

func TestClearCancelsLoad(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	gate := e.o.HoldBlobs(0)
	defer gate.Free()
	e.o.Publish(avatarOf("a", "v1", files3("a")))
	errc := make(chan error, 1)
	go func() {
		_, err := e.m.Load(context.Background(), "a", LoadOptions{})
		errc <- err
	}()
	for len(e.m.List().Loads) == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := e.m.Clear("a"); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, errcode.Cancelled) {
		t.Errorf("load after Clear: %v", err)
	}
}

func TestCallerContextEndsOnlyItsWait(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	gate := e.o.HoldBlobs(0)
	files := files3("a")
	e.o.Publish(avatarOf("a", "v1", files))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := e.m.Load(ctx, "a", LoadOptions{})
		errc <- err
	}()
	for len(e.m.List().Loads) == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, errcode.Cancelled) {
		t.Errorf("caller's cancelled wait: %v", err)
	}
	gate.Free()
	// The load goes on and fills the cache.
	events, unsub := e.m.Subscribe()
	defer unsub()
	if _, err := e.m.Retrieve("a"); err != nil {
		waitState(t, events, "a", apitype.StateReady)
	}
	a, err := e.m.Retrieve("a")
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, a, files)
	if n := e.o.ManifestGets("a"); n != 1 {
		t.Errorf("%d manifest requests", n)
	}
}

func TestRetryAuthFailed(t *testing.T) {
	o := newOrigin(t)
	o.SetToken("good")
	var token atomic.Value
	token.Store("old")
	st := openStore(t, t.TempDir(), store.Options{})
	m := New(st, newFetcher(t, o.URL(), func() string { return token.Load().(string) }), Options{Logger: quietLogger()})
	defer m.Close()
	o.Publish(avatarOf("a", "v1", files3("a")))

	_, err := m.Load(context.Background(), "a", LoadOptions{Pin: true})
	if !errors.Is(err, errcode.SessionTokenExpired) {
		t.Fatalf("Load with a bad token: %v", err)
	}
	events, cancel := m.Subscribe()
	defer cancel()
	token.Store("good")
	m.RetryAuthFailed()
	waitState(t, events, "a", apitype.StateReady)
	a, err := m.Retrieve("a")
	if err != nil || !a.Pinned {
		t.Fatalf("after retry: %+v, %v", a, err)
	}
	// Retried once: nothing is left to retry.
	n := o.ManifestGets("a")
	m.RetryAuthFailed()
	if o.ManifestGets("a") != n || len(m.List().Loads) != 0 {
		t.Error("a second RetryAuthFailed retried again")
	}
}

func TestSetFetcher(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	o2 := newOrigin(t)
	files := files3("b")
	o2.Publish(avatarOf("b", "v1", files))
	e.m.SetFetcher(newFetcher(t, o2.URL(), nil))
	a := mustLoad(t, e.m, "b", LoadOptions{})
	checkFiles(t, a, files)
	if e.o.Requests() != 0 || o2.ManifestGets("b") != 1 {
		t.Errorf("requests: old origin %d, new %d", e.o.Requests(), o2.ManifestGets("b"))
	}
	if mt := e.m.Metrics(); mt.Requests < 4 || mt.CacheEntries != 1 || mt.LoadsByResult["ok"] != 1 {
		t.Errorf("metrics %+v", mt)
	}
}

func TestSlowSubscriberNeverBlocks(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{SubscriberBuffer: 1})
	events, cancel := e.m.Subscribe()
	defer cancel()
	for _, id := range []string{"a", "b", "c"} {
		e.o.Publish(avatarOf(id, "v1", files3(id)))
		mustLoad(t, e.m, id, LoadOptions{})
	}
	if n := len(events); n != 1 {
		t.Errorf("buffered %d events", n)
	}
}

func TestCloseCancelsAndWaits(t *testing.T) {
	o := newOrigin(t)
	gate := o.HoldBlobs(0)
	defer gate.Free()
	o.Publish(avatarOf("a", "v1", files3("a")))
	st := openStore(t, t.TempDir(), store.Options{})
	m := New(st, newFetcher(t, o.URL(), nil), Options{Logger: quietLogger()})
	events, _ := m.Subscribe()
	errc := make(chan error, 1)
	go func() {
		_, err := m.Load(context.Background(), "a", LoadOptions{})
		errc <- err
	}()
	for len(m.List().Loads) == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, errcode.Cancelled) {
		t.Errorf("load after Close: %v", err)
	}
	for range events { // closed by Close
	}
	if _, err := m.Load(context.Background(), "a", LoadOptions{}); !errors.Is(err, errcode.Cancelled) {
		t.Errorf("Load after Close: %v", err)
	}
	if _, err := m.Retrieve("a"); !errors.Is(err, errcode.AvatarAssetMissing) {
		t.Errorf("Retrieve after a closed load: %v", err)
	}
}

func TestBadBytesFailOrKeepTheCachedVersion(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	files := files3("rohan")
	e.o.Publish(avatarOf("rohan", "v1", files))
	bad := digestOf(files["model.splat"])
	e.o.SetCorrupt(bad, true)
	_, err := e.m.Load(context.Background(), "rohan", LoadOptions{})
	var ee *errcode.Error
	if !errors.As(err, &ee) || ee.Code != errcode.FailedToDownloadAvatarAssets || ee.Reason != errcode.ReasonHashMismatch ||
		ee.Asset != "model.splat" || ee.AvatarID != "rohan" {
		t.Fatalf("Load of bad bytes: %v", err)
	}
	if p := e.st.Partial(bad); p != 0 {
		t.Errorf("bad bytes kept as a partial of %d bytes", p)
	}
	if e.st.HasBlob(bad) {
		t.Error("bad bytes committed")
	}
	if _, err := e.m.Retrieve("rohan"); !errors.Is(err, errcode.AvatarAssetMissing) {
		t.Errorf("Retrieve: %v", err)
	}

	// With a good version cached, a new version that cannot be had leaves
	// the old one served, stale.
	e.o.SetCorrupt(bad, false)
	mustLoad(t, e.m, "rohan", LoadOptions{})
	files2 := files3("rohan")
	files2["model.splat"] = randomBytes("v2", 5000)
	e.o.Publish(avatarOf("rohan", "v2", files2))
	e.o.SetBlobStatus(http.StatusServiceUnavailable)
	a := mustLoad(t, e.m, "rohan", LoadOptions{})
	if a.Version != "v1" || a.State != apitype.StateStale {
		t.Errorf("got %s %s, want v1 stale", a.Version, a.State)
	}
	checkFiles(t, a, files)
	e.o.SetBlobStatus(0)
	if a := mustLoad(t, e.m, "rohan", LoadOptions{}); a.Version != "v2" || a.State != apitype.StateReady {
		t.Errorf("after recovery %s %s", a.Version, a.State)
	}
}

func TestInteractiveJoinerPromotesABackgroundLoad(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	gate := e.o.HoldBlobs(0)
	e.o.Publish(avatarOf("a", "v1", files3("a")))
	l, _, err := e.m.Start(context.Background(), "a", LoadOptions{Background: true})
	if err != nil || !l.Background || l.State != apitype.StateDownloading || l.AvatarID != "a" {
		t.Fatalf("Start = %+v, %v", l, err)
	}
	done := make(chan error, 1)
	first := make(chan struct{})
	var once sync.Once
	go func() {
		_, err := e.m.Load(context.Background(), "a", LoadOptions{Pin: true, Progress: func(apitype.Event) {
			once.Do(func() { close(first) })
		}})
		done <- err
	}()
	<-first
	if ls := e.m.List().Loads; len(ls) != 1 || ls[0].Background {
		t.Errorf("loads %+v", ls)
	}
	gate.Free()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if a, err := e.m.Retrieve("a"); err != nil || !a.Pinned {
		t.Errorf("a joiner's Pin was lost: %+v %v", a, err)
	}
	// Cached and fresh: Start answers with the avatar.
	e.o.SetMaxAge(60)
	mustLoad(t, e.m, "a", LoadOptions{})
	if _, cached, err := e.m.Start(context.Background(), "a", LoadOptions{}); err != nil || cached == nil {
		t.Errorf("Start of a fresh avatar: %v %v", cached, err)
	}
}
