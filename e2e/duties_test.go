package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/testkit"
)

// damagedEvent matches the /v1/events state event that announces the file
// asset of avatar id damaged, with code avatarAssetMissing.
func damagedEvent(id, asset string) func(apitype.Event) bool {
	return func(ev apitype.Event) bool {
		return ev.Type == apitype.EventState && ev.AvatarID == id && ev.State == apitype.StateDamaged &&
			ev.Error != nil && ev.Error.Code == "avatarAssetMissing" && ev.Error.Asset == asset
	}
}

// TestBlobDamageWithoutSelfHeal: with store.self_heal off, a blob file
// removed (or rewritten) behind the daemon's back makes GET answer 409
// avatarAssetMissing at once, announces the damage on /v1/events, and
// stays so (nothing is fetched) until a load, which fetches only the
// damaged file.
func TestBlobDamageWithoutSelfHeal(t *testing.T) {
	t.Parallel()
	a := newAvatar(t, "rohan", 48<<10, 16<<10)
	o := newOrigin(t, a)
	e := newEnv(t, o)
	e.writeConfigWith(storeConf{noHeal: true})
	p := e.Start()
	c := e.Client()
	got := e.mustLoad(c, "rohan")
	evs := e.subscribe()

	victim := got.Assets[0]
	if err := os.Remove(victim.LocalPath); err != nil {
		t.Fatal(err)
	}
	ev := evs.wait(t, "rohan announced damaged", damagedEvent("rohan", victim.Path))
	t.Logf("event: %s %s %s %s", ev.Type, ev.AvatarID, ev.State, ev.Error.Code)
	e.mustErr(c, "GET", "/v1/avatars/rohan", nil, 409, "avatarAssetMissing")

	// Nothing heals it: still 409 a while later, and no request was made.
	time.Sleep(500 * time.Millisecond)
	e.mustErr(c, "GET", "/v1/avatars/rohan", nil, 409, "avatarAssetMissing")
	if n := o.BlobGets(victim.SHA256); n != 1 {
		t.Errorf("the removed file was downloaded %d times without self-heal, want once", n)
	}

	// A load fetches the missing file, and only it.
	checkFiles(t, a, e.mustLoad(c, "rohan"))
	var vr apitype.VerifyResult
	e.must(c, "POST", "/v1/avatars/rohan/verify", nil, 200, &vr)
	if vr.State != apitype.StateReady || len(vr.Damaged) != 0 {
		t.Errorf("verify after the load: %+v", vr)
	}
	if n, m := o.BlobGets(victim.SHA256), o.BlobGets(got.Assets[1].SHA256); n != 2 || m != 1 {
		t.Errorf("downloads: removed file %d, intact file %d; want 2 and 1", n, m)
	}
	e.must(c, "GET", "/v1/avatars/rohan", nil, 200, nil)

	// A file rewritten in place with other bytes of its size: the same.
	other := got.Assets[1]
	if err := os.Chmod(other.LocalPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other.LocalPath, make([]byte, other.Size), 0o644); err != nil {
		t.Fatal(err)
	}
	evs.wait(t, "rohan announced damaged after a rewrite", damagedEvent("rohan", other.Path))
	e.mustErr(c, "GET", "/v1/avatars/rohan", nil, 409, "avatarAssetMissing")
	time.Sleep(300 * time.Millisecond)
	e.mustErr(c, "GET", "/v1/avatars/rohan", nil, 409, "avatarAssetMissing")
	checkFiles(t, a, e.mustLoad(c, "rohan"))
	if n := o.BlobGets(other.SHA256); n != 2 {
		t.Errorf("the rewritten file was downloaded %d times in all, want twice", n)
	}
	p.Stop()
}

// TestBlobRemovedSelfHeals: with self-heal on, a removed blob makes GET
// answer 409 avatarAssetMissing while the file is fetched again (held
// mid-way at the origin so that the 409 can be seen), an event arrives on
// /v1/events, and then the avatar is ready with verified files.
func TestBlobRemovedSelfHeals(t *testing.T) {
	t.Parallel()
	a := newAvatar(t, "rohan", 96<<10, 16<<10)
	o := newOrigin(t, a)
	e := newEnv(t, o)
	p := e.Start()
	c := e.Client()
	got := e.mustLoad(c, "rohan")
	evs := e.subscribe()

	victim := got.Assets[0]
	h := o.HoldBlob(victim.SHA256, 32<<10)
	if err := os.Remove(victim.LocalPath); err != nil {
		t.Fatal(err)
	}
	evs.wait(t, "rohan announced damaged", damagedEvent("rohan", victim.Path))
	select {
	case <-h.Sent:
	case <-time.After(waitLimit):
		t.Fatalf("the removed file was not fetched again within %v", waitLimit)
	}
	e.mustErr(c, "GET", "/v1/avatars/rohan", nil, 409, "avatarAssetMissing")
	h.Free()
	evs.wait(t, "rohan ready again", func(ev apitype.Event) bool {
		return ev.AvatarID == "rohan" && ((ev.Type == apitype.EventState && ev.State == apitype.StateReady) || ev.Type == apitype.EventCompleted)
	})
	waitFor(t, "GET rohan to answer 200", func() bool {
		code, _ := e.status(c, "/v1/avatars/rohan")
		return code == 200
	})
	var av apitype.Avatar
	e.must(c, "GET", "/v1/avatars/rohan", nil, 200, &av)
	checkFiles(t, a, &av)
	var vr apitype.VerifyResult
	e.must(c, "POST", "/v1/avatars/rohan/verify", nil, 200, &vr)
	if vr.State != apitype.StateReady || len(vr.Damaged) != 0 {
		t.Errorf("verify after healing: %+v", vr)
	}
	if n := o.BlobGets(got.Assets[1].SHA256); n != 1 {
		t.Errorf("the intact file was downloaded %d times, want once", n)
	}
	p.Stop()
}

// TestTokenFileRewrites: the token file rewritten in place (truncate and
// write) and then replaced by an atomic rename: each time the next
// requests carry the new token, and the load that failed with
// sessionTokenExpired on the old one loads by itself.
func TestTokenFileRewrites(t *testing.T) {
	t.Parallel()
	avs := []*avatar{newAvatar(t, "a1", 8<<10), newAvatar(t, "a2", 8<<10), newAvatar(t, "a3", 8<<10), newAvatar(t, "a4", 8<<10)}
	o := newOrigin(t, avs...)
	o.SetToken("e2e-token-one")
	e := newEnv(t, o)
	e.Write(e.Token, "e2e-token-one\n")
	p := e.Start()
	c := e.Client()
	checkFiles(t, avs[0], e.mustLoad(c, "a1"))

	steps := []struct {
		how, token, failing, next string
		write                     func(path, text string)
	}{
		{"in place", "e2e-token-two", "a2", "a3", func(path, text string) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString(text); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{"by rename", "e2e-token-three", "a4", "a1", e.Write},
	}
	for _, s := range steps {
		o.SetToken(s.token)
		evs, err := e.load(c, s.failing)
		if err != nil {
			t.Fatal(err)
		}
		if last := evs[len(evs)-1]; last.Error == nil || last.Error.Code != "sessionTokenExpired" {
			t.Fatalf("%s: load %s with the old token ended with %+v", s.how, s.failing, last)
		}
		ino := inode(t, e.Token)
		s.write(e.Token, s.token+"\n")
		if s.how == "in place" && inode(t, e.Token) != ino {
			t.Fatalf("the in-place rewrite replaced the file")
		}
		waitFor(t, s.how+": the failed load retried with the new token", func() bool {
			code, _ := e.status(c, "/v1/avatars/"+s.failing)
			return code == 200
		})
		// The next requests carry the new token (s.next is removed first, if
		// cached, so that its load asks the origin).
		if _, err := e.do(c, "DELETE", "/v1/avatars/"+s.next, nil, nil); err != nil {
			t.Fatal(err)
		}
		before := len(o.Auths())
		e.mustLoad(c, s.next)
		auths := o.Auths()[before:]
		if len(auths) == 0 {
			t.Fatalf("%s: loading %s made no request", s.how, s.next)
		}
		for _, a := range auths {
			if a != "Bearer "+s.token {
				t.Errorf("%s: a request after the rewrite carried %q", s.how, a)
			}
		}
	}
	p.Stop()
	if log := p.Stderr.String(); strings.Contains(log, "e2e-token-") {
		t.Errorf("the log shows a token:\n%s", log)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestConfigFilePreloadAndBrokenEdits: the config file gains an avatar in
// [preload]: it is downloaded and pinned with no restart and no signal.
// Then broken files (bad TOML; a valid file with an invalid value that
// also points at another origin) are logged with their error and leave the
// old configuration in force.
func TestConfigFilePreloadAndBrokenEdits(t *testing.T) {
	t.Parallel()
	rohan := newAvatar(t, "rohan", 16<<10)
	mei := newAvatar(t, "mei", 24<<10)
	aria := newAvatar(t, "aria", 8<<10)
	o := newOrigin(t, rohan, mei, aria)
	other := newOrigin(t)
	e := newEnv(t, o)
	e.preload = []string{"rohan"}
	e.writeConfig("")
	p := e.Start()
	c := e.Client()
	pinnedReady := func(id string) func() bool {
		return func() bool {
			var av apitype.Avatar
			code, _ := e.do(c, "GET", "/v1/avatars/"+id, nil, &av)
			return code == 200 && av.Pinned && av.State == apitype.StateReady
		}
	}
	waitFor(t, "rohan preloaded and pinned", pinnedReady("rohan"))

	e.preload = []string{"rohan", "mei"}
	e.writeConfig("")
	waitFor(t, "mei preloaded and pinned after the edit", pinnedReady("mei"))
	var av apitype.Avatar
	e.must(c, "GET", "/v1/avatars/mei", nil, 200, &av)
	checkFiles(t, mei, &av)
	if n := strings.Count(p.Stderr.String(), "configuration reloaded"); n < 1 {
		t.Fatalf("no reload logged")
	}

	broken := []struct{ name, text, want string }{
		{"bad TOML", "[origin\nurl = \"" + other.Srv.URL + "\"\n", "assetd.toml"},
		{"invalid value", strings.Replace(strings.Replace(e.configText(storeConf{}), o.Srv.URL, other.Srv.URL, 1),
			"[preload]\n", "[preload]\nrefresh_interval = \"1s\"\n", 1), "preload.refresh_interval"},
	}
	for i, b := range broken {
		e.Write(e.Config, b.text)
		waitFor(t, b.name+": the failed reload logged", func() bool {
			return strings.Count(p.Stderr.String(), "configuration reload failed") >= i+1
		})
		line := p.Stderr.String()
		line = line[strings.LastIndex(line, "configuration reload failed"):]
		line = line[:strings.IndexByte(line+"\n", '\n')]
		if !strings.Contains(line, b.want) {
			t.Errorf("%s: the log line %q does not name %q", b.name, line, b.want)
		}
		// The old configuration is in force: loads still go to the old
		// origin, the preloaded avatars stay pinned.
		checkFiles(t, aria, e.mustLoad(c, "aria"))
		e.must(c, "DELETE", "/v1/avatars/aria", nil, 200, nil)
		if !pinnedReady("mei")() || !pinnedReady("rohan")() {
			t.Errorf("%s: the preloaded avatars are no longer pinned and ready", b.name)
		}
	}
	if n := other.Requests(); n != 0 {
		t.Errorf("the origin of a broken config got %d requests", n)
	}
	// A good file applies again.
	e.preload = []string{"rohan"}
	e.writeConfig("")
	waitFor(t, "mei unpinned by a good edit", func() bool {
		var av apitype.Avatar
		code, _ := e.do(c, "GET", "/v1/avatars/mei", nil, &av)
		return code == 200 && !av.Pinned
	})
	p.Stop()
}

// TestUnchangedRefreshIs304: the preload of a cached, unchanged avatar
// (the origin sends no max-age, so every load revalidates) makes one
// conditional request, answered 304, and downloads nothing. The trigger
// is a restart, whose preload revalidates, and an interactive load; the
// periodic refresh (refresh_interval is at least a minute) takes the same
// path with Manager.Refresh, covered in internal/manager and internal/duty.
func TestUnchangedRefreshIs304(t *testing.T) {
	t.Parallel()
	a := newAvatar(t, "rohan", 64<<10, 8<<10)
	o := newCondOrigin(t, a)
	e := newEnv(t, o.origin)
	e.preload = []string{"rohan"}
	e.writeConfig("")
	p := e.Start()
	c := e.Client()
	waitFor(t, "rohan preloaded", func() bool {
		code, _ := e.status(c, "/v1/avatars/rohan")
		return code == 200
	})
	if cond, nm := o.counts("rohan"); cond != 0 || nm != 0 || o.manifestGets("rohan") != 1 {
		t.Fatalf("first preload: %d conditional, %d manifests; want 0 and 1", cond, o.manifestGets("rohan"))
	}
	blobs := o.Requests() - o.manifestGets("rohan")
	p.Stop()

	p = e.Start()
	waitFor(t, "the preload at restart to revalidate", func() bool {
		_, nm := o.counts("rohan")
		return nm >= 1
	})
	waitFor(t, "rohan ready and pinned", func() bool {
		var av apitype.Avatar
		code, _ := e.do(c, "GET", "/v1/avatars/rohan", nil, &av)
		return code == 200 && av.Pinned && av.State == apitype.StateReady
	})
	// The 304 is counted when the origin sends it, before the preload's
	// load ends; a load started before then joins it (rightly) and asks
	// nothing. Wait for the preload to be over.
	waitFor(t, "the preload's load to end", func() bool {
		var l apitype.List
		code, _ := e.do(c, "GET", "/v1/avatars", nil, &l)
		return code == 200 && len(l.Loads) == 0
	})
	// An interactive load revalidates too.
	checkFiles(t, a, e.mustLoad(c, "rohan"))
	cond, nm := o.counts("rohan")
	t.Logf("origin: %d manifest answers with a body, %d conditional requests, %d answered 304, %d blob requests",
		o.manifestGets("rohan"), cond, nm, o.Requests()-o.manifestGets("rohan"))
	if cond != 2 || nm != 2 || o.manifestGets("rohan") != 1 {
		t.Errorf("want 2 conditional requests answered 304 and still 1 full manifest")
	}
	if n := o.Requests() - o.manifestGets("rohan"); n != blobs {
		t.Errorf("revalidations downloaded %d blobs", n-blobs)
	}
	p.Stop()
}

// TestPeriodicRefreshIs304 is the real periodic refresh: refresh_interval
// at its minimum (a minute) plus up to 5 s of jitter, against an origin
// whose max-age (an hour) would let a plain load skip the origin. The
// refresh revalidates: one conditional request, a 304, no download. It
// takes over a minute, so it runs only with ASSETD_E2E_LONG=1;
// TestUnchangedRefreshIs304 covers the same path in the default run.
func TestPeriodicRefreshIs304(t *testing.T) {
	if os.Getenv("ASSETD_E2E_LONG") != "1" {
		t.Skip("takes over a minute (refresh_interval is at least 1m); set ASSETD_E2E_LONG=1 to run it")
	}
	t.Parallel()
	a := newAvatar(t, "rohan", 64<<10)
	o := newCondOrigin(t, a)
	o.setKeepMaxAge(true)
	e := newEnv(t, o.origin)
	e.preload = []string{"rohan"}
	e.writeConfigWith(storeConf{refresh: "refresh_interval = \"1m\"\nrefresh_jitter = \"5s\""})
	p := e.Start()
	c := e.Client()
	waitFor(t, "rohan preloaded", func() bool {
		code, _ := e.status(c, "/v1/avatars/rohan")
		return code == 200
	})
	loaded := time.Now()
	blobs := o.BlobGets(a.Assets[0].SHA256)
	deadline := time.After(90 * time.Second)
	for {
		if _, nm := o.counts("rohan"); nm >= 1 {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("no refresh within 90 s of the preload")
		case <-time.After(100 * time.Millisecond):
		}
	}
	took := time.Since(loaded)
	cond, nm := o.counts("rohan")
	t.Logf("refreshed %v after the preload: %d conditional requests, %d answered 304", took.Round(100*time.Millisecond), cond, nm)
	if took < 59*time.Second {
		t.Errorf("refreshed %v after the preload, before refresh_interval", took)
	}
	if cond != 1 || o.manifestGets("rohan") != 1 || o.BlobGets(a.Assets[0].SHA256) != blobs {
		t.Errorf("the refresh made %d conditional requests, %d full manifests in all, %d more blob requests; want 1, 1, 0",
			cond, o.manifestGets("rohan"), o.BlobGets(a.Assets[0].SHA256)-blobs)
	}
	p.Stop()
}

// TestPreloadWaitsBehindInteractive: with fetch.concurrency = 1, two
// preloads at start, one holding the download slot (held at the origin)
// and one queued, then an interactive load: it does not wait for the slot
// the preload holds but downloads beside it, and completes while the
// preload's download is still held; the queued preload goes last.
func TestPreloadWaitsBehindInteractive(t *testing.T) {
	t.Parallel()
	p1, p2, y := newAvatar(t, "pre1", 64<<10), newAvatar(t, "pre2", 64<<10), newAvatar(t, "y", 64<<10)
	o := newCondOrigin(t, p1, p2, y)
	h1 := o.HoldBlob(p1.Assets[0].SHA256, 16<<10)
	h2 := o.HoldBlob(p2.Assets[0].SHA256, 16<<10)
	e := newEnv(t, o.origin)
	e.preload = []string{"pre1", "pre2"}
	e.writeConfigWith(storeConf{extra: "concurrency = 1"})
	p := e.Start()
	c := e.Client()

	select {
	case <-h1.Sent:
	case <-h2.Sent:
	case <-time.After(waitLimit):
		t.Fatalf("no preload download started within %v", waitLimit)
	}
	waitFor(t, "both preload manifests fetched", func() bool { return o.manifestGets("pre1") == 1 && o.manifestGets("pre2") == 1 })
	time.Sleep(200 * time.Millisecond) // let the second preload reach the queue; if not, the order below holds anyway
	yDone := make(chan error, 1)
	go func() {
		_, err := e.load(e.Client(), "y")
		yDone <- err
	}()
	select {
	case err := <-yDone:
		if err != nil {
			t.Fatalf("load y: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("load y did not end within %v while a preload held the one download slot", waitLimit)
	}
	if got := o.order(); len(got) != 2 {
		t.Fatalf("blob requests %v while a preload's download is held, want it and y's", got)
	}
	h1.Free()
	h2.Free()
	waitFor(t, "both preloaded", func() bool {
		c1, _ := e.status(c, "/v1/avatars/pre1")
		c2, _ := e.status(c, "/v1/avatars/pre2")
		return c1 == 200 && c2 == 200
	})
	got := o.order()
	if len(got) != 3 || got[1] != y.Assets[0].SHA256 {
		t.Errorf("blob requests in the order %v; want the interactive %s second, before the queued preload", got, y.Assets[0].SHA256)
	}
	p.Stop()
}

// TestPreloadAddedWaitsBehindInteractive: the same across a config edit
// that adds a preload (the edit keeps the download queue): an interactive
// load holds the one slot, the new preload queues, then a second
// interactive load; the interactive one goes first.
func TestPreloadAddedWaitsBehindInteractive(t *testing.T) {
	t.Parallel()
	x, pre, y := newAvatar(t, "x", 64<<10), newAvatar(t, "pre", 64<<10), newAvatar(t, "y", 64<<10)
	o := newCondOrigin(t, x, pre, y)
	e := newEnv(t, o.origin)
	e.writeConfigWith(storeConf{extra: "concurrency = 1"})
	p := e.Start()
	c := e.Client()

	h := o.HoldBlob(x.Assets[0].SHA256, 16<<10)
	xDone := make(chan error, 1)
	go func() {
		_, err := e.load(e.Client(), "x")
		xDone <- err
	}()
	select {
	case <-h.Sent:
	case <-time.After(waitLimit):
		t.Fatalf("x's download did not start within %v", waitLimit)
	}
	e.preload = []string{"pre"}
	e.writeConfigWith(storeConf{extra: "concurrency = 1"})
	waitFor(t, "pre's manifest fetched", func() bool { return o.manifestGets("pre") == 1 })
	time.Sleep(200 * time.Millisecond) // let it reach the download queue; if not, the order below holds anyway
	yDone := make(chan error, 1)
	go func() {
		_, err := e.load(e.Client(), "y")
		yDone <- err
	}()
	waitFor(t, "y's manifest fetched", func() bool { return o.manifestGets("y") == 1 })
	time.Sleep(200 * time.Millisecond)
	if got := o.order(); len(got) != 1 {
		t.Fatalf("%d blob requests while the one slot is taken, want x's only", len(got))
	}
	h.Free()
	for name, ch := range map[string]chan error{"x": xDone, "y": yDone} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatalf("load %s: %v", name, err)
			}
		case <-time.After(waitLimit):
			t.Fatalf("load %s did not end within %v", name, waitLimit)
		}
	}
	waitFor(t, "pre preloaded", func() bool {
		code, _ := e.status(c, "/v1/avatars/pre")
		return code == 200
	})
	got := o.order()
	if len(got) != 3 || got[1] != y.Assets[0].SHA256 || got[2] != pre.Assets[0].SHA256 {
		t.Errorf("blob requests in the order %v; want x, then y (interactive) %s, then pre (preload) %s", got, y.Assets[0].SHA256, pre.Assets[0].SHA256)
	}
	p.Stop()
}

// TestScrubFindsDamageAtRest is the real scrub: a cached file rewritten
// with other bytes of its size while the daemon is stopped (so neither the
// blob watch nor the size check at start sees it) is found by the scrub at
// store.scrub_interval (its minimum, a minute), announced on /v1/events and
// healed. It takes over a minute, so it runs only with ASSETD_E2E_LONG=1.
func TestScrubFindsDamageAtRest(t *testing.T) {
	if os.Getenv("ASSETD_E2E_LONG") != "1" {
		t.Skip("takes over a minute (scrub_interval is at least 1m); set ASSETD_E2E_LONG=1 to run it")
	}
	t.Parallel()
	a := newAvatar(t, "rohan", 64<<10, 16<<10)
	o := newOrigin(t, a)
	e := newEnv(t, o)
	e.writeConfigWith(storeConf{scrub: "1m"})
	p := e.Start()
	c := e.Client()
	got := e.mustLoad(c, "rohan")
	p.Stop()

	victim := got.Assets[0]
	if err := os.Chmod(victim.LocalPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(victim.LocalPath, make([]byte, victim.Size), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(victim.LocalPath, 0o444); err != nil {
		t.Fatal(err)
	}
	p = e.Start()
	evs := e.subscribe()
	started := time.Now()
	timeout := time.After(90 * time.Second)
	for found := false; !found; {
		select {
		case ev, ok := <-evs.ch:
			if !ok {
				t.Fatal("/v1/events ended")
			}
			found = damagedEvent("rohan", victim.Path)(ev)
		case <-timeout:
			t.Fatalf("the scrub did not find the damage within 90 s")
		}
	}
	t.Logf("the scrub found the damage %v after the start", time.Since(started).Round(100*time.Millisecond))
	waitFor(t, "rohan healed", func() bool {
		code, _ := e.status(c, "/v1/avatars/rohan")
		return code == 200 && o.BlobGets(victim.SHA256) == 2
	})
	var av apitype.Avatar
	e.must(c, "GET", "/v1/avatars/rohan", nil, 200, &av)
	checkFiles(t, a, &av)
	if n := o.BlobGets(got.Assets[1].SHA256); n != 1 {
		t.Errorf("the intact file was downloaded %d times, want once", n)
	}
	p.WaitLog("scrub finished")
	p.Stop()
}

// TestQuotaEvictsUnpinnedOnly: a quota too small for everything evicts the
// least recently used unpinned avatars; a pinned (preloaded) one stays;
// a load that would not fit even after evicting every unpinned avatar
// fails with insufficientStorage and evicts nothing.
func TestQuotaEvictsUnpinnedOnly(t *testing.T) {
	t.Parallel()
	pin := newAvatar(t, "pin", 64<<10)
	u1, u2, u3 := newAvatar(t, "u1", 64<<10), newAvatar(t, "u2", 64<<10), newAvatar(t, "u3", 64<<10)
	huge := newAvatar(t, "huge", 150<<10)
	o := newOrigin(t, pin, u1, u2, u3, huge)
	e := newEnv(t, o)
	e.preload = []string{"pin"}
	e.writeConfigWith(storeConf{maxBytes: strconv.Itoa(200 << 10)})
	p := e.Start()
	c := e.Client()
	waitFor(t, "pin preloaded", func() bool {
		var av apitype.Avatar
		code, _ := e.do(c, "GET", "/v1/avatars/pin", nil, &av)
		return code == 200 && av.Pinned
	})
	e.mustLoad(c, "u1")
	e.mustLoad(c, "u2")
	checkFiles(t, u3, e.mustLoad(c, "u3")) // u1 is the least recently used unpinned
	cached := func() map[string]bool {
		var l apitype.List
		e.must(c, "GET", "/v1/avatars", nil, 200, &l)
		m := map[string]bool{}
		for _, a := range l.Avatars {
			m[a.AvatarID] = true
		}
		return m
	}
	if got := cached(); !got["pin"] || got["u1"] || !got["u2"] || !got["u3"] {
		t.Fatalf("cached after the quota was reached: %v, want pin, u2, u3", got)
	}
	var st apitype.Stats
	e.must(c, "GET", "/v1/cache/stats", nil, 200, &st)
	if st.TotalSize > 200<<10 || st.Pinned != 1 {
		t.Errorf("stats %+v", st)
	}

	evs, err := e.load(c, "huge")
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	if last.Error == nil || last.Error.Code != "failedToDownloadAvatarAssets" || last.Error.Reason != "insufficientStorage" {
		t.Fatalf("load over the quota ended %+v, want failedToDownloadAvatarAssets/insufficientStorage", last)
	}
	if got := cached(); !got["pin"] || !got["u2"] || !got["u3"] || got["huge"] {
		t.Errorf("cached after the failed load: %v, want pin, u2, u3 untouched", got)
	}
	if n := o.BlobGets(huge.Assets[0].SHA256); n != 0 {
		t.Errorf("the avatar over the quota was requested %d times", n)
	}
	for _, id := range []string{"pin", "u2", "u3"} {
		var vr apitype.VerifyResult
		e.must(c, "POST", "/v1/avatars/"+id+"/verify", nil, 200, &vr)
		if vr.State != apitype.StateReady {
			t.Errorf("verify %s: %+v", id, vr)
		}
	}
	p.Stop()
}

// TestFullDisk, on a real 24 MiB tmpfs: a disk too full for a load fails
// it with insufficientStorage before a byte is requested or written; a
// disk that fills up in the middle of a download (another file takes the
// space while the origin holds the body) fails it the same way, removes
// its partial file, and leaves the cached avatars intact; with the space
// back, the load succeeds.
func TestFullDisk(t *testing.T) {
	t.Parallel()
	mnt := testkit.MountTmpfs(t, 24<<20)
	cached := newAvatar(t, "cached", 2<<20, 64<<10)
	big := newAvatar(t, "big", 4<<20)
	bigger := newAvatar(t, "bigger", 8<<20)
	o := newOrigin(t, cached, big, bigger)
	e := newEnv(t, o)
	e.State = filepath.Join(mnt, "state")
	e.writeConfigWith(storeConf{reserve: strconv.Itoa(256 << 10)})
	p := e.Start()
	c := e.Client()
	checkFiles(t, cached, e.mustLoad(c, "cached"))
	filler := filepath.Join(mnt, "filler")
	intact := func(when string) {
		t.Helper()
		var av apitype.Avatar
		e.must(c, "GET", "/v1/avatars/cached", nil, 200, &av)
		checkFiles(t, cached, &av)
		var vr apitype.VerifyResult
		e.must(c, "POST", "/v1/avatars/cached/verify", nil, 200, &vr)
		if vr.State != apitype.StateReady || len(vr.Damaged) != 0 {
			t.Errorf("%s: verify cached: %+v", when, vr)
		}
		if files := ingestFiles(t, e.State); len(files) != 0 {
			t.Errorf("%s: partial files left: %v", when, files)
		}
	}
	insufficient := func(when, id string) {
		t.Helper()
		evs, err := e.load(c, id)
		if err != nil {
			t.Fatal(err)
		}
		last := evs[len(evs)-1]
		if last.Error == nil || last.Error.Code != "failedToDownloadAvatarAssets" || last.Error.Reason != "insufficientStorage" {
			t.Fatalf("%s: load %s ended %+v (error %+v), want failedToDownloadAvatarAssets/insufficientStorage", when, id, last, last.Error)
		}
		t.Logf("%s: %s", when, last.Error.Message)
	}

	// Too full from the start: 1 MiB free, the cached avatar (evictable,
	// 2 MiB) would not make room for 4 MiB either.
	testkit.Fill(t, filler, 1<<20)
	t.Logf("filled to %d bytes free", testkit.FreeBytes(t, mnt))
	insufficient("disk too full", "big")
	if n := o.BlobGets(big.Assets[0].SHA256); n != 0 {
		t.Errorf("disk too full: the blob was requested %d times, want none", n)
	}
	intact("disk too full")
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}

	// Full in the middle of the download.
	h := o.HoldBlob(bigger.Assets[0].SHA256, 1<<20)
	done := make(chan []apitype.Event, 1)
	go func() {
		evs, _ := e.load(c, "bigger")
		done <- evs
	}()
	select {
	case <-h.Sent:
	case <-time.After(waitLimit):
		t.Fatalf("the download did not start within %v", waitLimit)
	}
	waitFor(t, "the partial file to hold bytes", func() bool { return len(ingestFiles(t, e.State)) > 0 })
	n := testkit.Fill(t, filler, 0)
	t.Logf("mid-download: another file took %d bytes until ENOSPC", n)
	h.Free()
	var evs []apitype.Event
	select {
	case evs = <-done:
	case <-time.After(waitLimit):
		t.Fatalf("the load did not end within %v of the disk filling", waitLimit)
	}
	if len(evs) == 0 {
		t.Fatal("the load stream ended without events")
	}
	last := evs[len(evs)-1]
	if last.Error == nil || last.Error.Code != "failedToDownloadAvatarAssets" || last.Error.Reason != "insufficientStorage" {
		t.Fatalf("mid-download ENOSPC: load ended %+v (error %+v), want insufficientStorage", last, last.Error)
	}
	t.Logf("mid-download ENOSPC: %s", last.Error.Message)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	intact("mid-download ENOSPC")

	// With the space back, it loads.
	checkFiles(t, bigger, e.mustLoad(c, "bigger"))
	intact("after the space came back")
	p.Stop()
}

// TestIdleCPU: with 50 cached avatars (and the watches, the preloader and
// the scrub timer running), the daemon idles: its CPU time over 10 s,
// from /proc/PID/stat, is logged and must stay under a generous 5% of a
// core (the target is under 1%).
func TestIdleCPU(t *testing.T) {
	t.Parallel()
	var avs []*avatar
	var ids []string
	for i := range 50 {
		id := "idle" + strconv.Itoa(i)
		avs = append(avs, newAvatar(t, id, 4<<10))
		ids = append(ids, id)
	}
	o := newOrigin(t, avs...)
	e := newEnv(t, o)
	e.level = "info"
	e.preload = ids[:5]
	e.writeConfig("")
	p := e.Start()
	c := e.Client()
	for _, id := range ids {
		e.mustLoad(c, id)
	}
	var st apitype.Stats
	e.must(c, "GET", "/v1/cache/stats", nil, 200, &st)
	if st.TotalEntries != 50 {
		t.Fatalf("%d cached, want 50", st.TotalEntries)
	}
	c.CloseIdleConnections()
	time.Sleep(time.Second) // let the loads' after-work settle
	pid := p.Cmd.Process.Pid
	t0, c0 := time.Now(), cpuTicks(t, pid)
	ns0, sw0 := threadStats(pid)
	time.Sleep(10 * time.Second)
	t1, c1 := time.Now(), cpuTicks(t, pid)
	ns1, sw1 := threadStats(pid)
	const hz = 100 // USER_HZ, the unit of utime and stime on Linux
	cpu := time.Duration(c1-c0) * time.Second / hz
	share := float64(cpu) / float64(t1.Sub(t0)) * 100
	t.Logf("idle CPU over %v with 50 cached avatars: utime+stime %d ticks = %v = %.2f%% of a core", t1.Sub(t0).Round(time.Millisecond), c1-c0, cpu, share)
	t.Logf("per-thread schedstat: %v on a CPU (%.4f%% of a core), %d context switches (%.1f wakeups/s)",
		time.Duration(ns1-ns0), float64(ns1-ns0)/float64(t1.Sub(t0))*100, sw1-sw0, float64(sw1-sw0)/t1.Sub(t0).Seconds())
	if share >= 5 {
		t.Errorf("idle daemon used %.2f%% of a core, want under 5%% (target 1%%)", share)
	}
	p.Stop()
}

// cpuTicks is utime+stime of pid, in clock ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	// The command name, in parentheses, may hold spaces: count fields after it.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("parsing %s: %v %v", s, err1, err2)
	}
	return u + k
}

// TestLimitsApplyOnEdit: a config edit that lowers store.max_bytes and
// raises store.reserve_bytes applies without a restart: the stats show the
// new limits and the next load evicts down to the new quota.
func TestLimitsApplyOnEdit(t *testing.T) {
	t.Parallel()
	u1, u2, u3 := newAvatar(t, "u1", 64<<10), newAvatar(t, "u2", 64<<10), newAvatar(t, "u3", 64<<10)
	o := newOrigin(t, u1, u2, u3)
	e := newEnv(t, o)
	p := e.Start()
	c := e.Client()
	e.mustLoad(c, "u1")
	e.mustLoad(c, "u2")
	e.writeConfigWith(storeConf{maxBytes: strconv.Itoa(100 << 10), reserve: strconv.Itoa(4 << 10)})
	waitFor(t, "the new limits in the stats", func() bool {
		var st apitype.Stats
		code, _ := e.do(c, "GET", "/v1/cache/stats", nil, &st)
		return code == 200 && st.MaxSize == 100<<10 && st.ReserveBytes == 4<<10
	})
	if l := p.LogLine("takes effect at the next restart"); l != "" {
		t.Errorf("the log says a limit needs a restart: %s", l)
	}
	checkFiles(t, u3, e.mustLoad(c, "u3"))
	var l apitype.List
	e.must(c, "GET", "/v1/avatars", nil, 200, &l)
	if ids := listIDs(l); len(ids) != 1 || ids[0] != "u3" {
		t.Errorf("cached under the new quota: %v, want [u3]", ids)
	}
	p.Stop()
}

// TestOffline: with the origin gone, cached avatars keep being served
// (GET, and a load answers the cached avatar, stale); the preload at start
// fails transiently and backs off, leaving the avatar pinned and served.
func TestOffline(t *testing.T) {
	t.Parallel()
	a := newAvatar(t, "rohan", 32<<10)
	o := newCondOrigin(t, a) // no max-age: every load asks the origin
	e := newEnv(t, o.origin)
	e.preload = []string{"rohan"}
	e.writeConfig("")
	p := e.Start()
	c := e.Client()
	waitFor(t, "rohan preloaded", func() bool {
		code, _ := e.status(c, "/v1/avatars/rohan")
		return code == 200
	})
	p.Stop()
	o.Srv.Close()

	p = e.Start()
	p.WaitLog("preload failed; will retry")
	if l := p.LogLine("preload failed; will retry"); !strings.Contains(l, "retryIn") {
		t.Errorf("the backoff is not logged: %s", l)
	}
	var av apitype.Avatar
	e.must(c, "GET", "/v1/avatars/rohan", nil, 200, &av)
	if !av.Pinned {
		t.Errorf("offline: rohan is not pinned: %+v", av)
	}
	checkFiles(t, a, &av)
	got := e.mustLoad(c, "rohan")
	if got.State != apitype.StateStale {
		t.Errorf("a load while offline answered state %q, want stale", got.State)
	}
	checkFiles(t, a, got)
	p.Stop()
}

// threadStats sums, over pid's threads, the nanoseconds on a CPU
// (/proc/PID/task/TID/schedstat) and the context switches
// (/proc/PID/task/TID/status). Threads that ended are not counted: this is
// a finer figure to log next to cpuTicks, not a bound.
func threadStats(pid int) (ns, switches int64) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0
	}
	for _, task := range tasks {
		if b, err := os.ReadFile(filepath.Join(dir, task.Name(), "schedstat")); err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				ns += n
			}
		}
		b, err := os.ReadFile(filepath.Join(dir, task.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				switches += n
			}
		}
	}
	return ns, switches
}
