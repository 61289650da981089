package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
)

// TestCrash kills `assetd serve` with SIGKILL at random moments while it
// preloads 10 avatars. After each restart `assetd verify` and an
// independent re-hash find no damaged file in any avatar reported ready;
// in the end every load completes, and the bytes the origin sent beyond
// the avatars' size (downloaded again after a kill) are counted.
func TestCrash(t *testing.T) {
	rounds, delay := 5, 25*time.Millisecond
	if *full {
		rounds, delay = 50, 500*time.Millisecond
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	note("The crash harness drew its kill moments from seed %d.", seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	var avatars []*avatar
	var ids []string
	var total int64
	for i := range 10 {
		a := newAvatar(fmt.Sprintf("crash%02d", i), uint64(i), 192<<10, 64<<10)
		avatars = append(avatars, a)
		ids = append(ids, a.id)
		total += a.size()
	}
	o := newBinOrigin(t, avatars...)
	o.chunk, o.delay = 16<<10, delay
	e := newEnv(t, o.srv.URL)
	e.preload = ids
	e.writeConfig()

	var startupKills, verifies, readyChecked int
	for round := range rounds {
		p := e.spawn()
		if round%5 == 4 {
			// a kill while the daemon opens its store and socket
			time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
			p.kill()
			startupKills++
			continue
		}
		e.waitHealthy(p)
		readyChecked += e.checkReady(t, o, round)
		verifies++
		time.Sleep(time.Duration(20+rng.IntN(500)) * time.Millisecond)
		p.kill()
		if t.Failed() {
			t.Logf("round %d log:\n%s", round, tail(p.stderr.String()))
			return
		}
	}

	// The end: every avatar loads, with the origin's bytes.
	p := e.start()
	c := e.client()
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLimit)
	defer cancel()
	for _, a := range avatars {
		ev, err := e.load(ctx, c, a.id)
		if err != nil || ev.Type != apitype.EventCompleted || ev.Avatar == nil {
			t.Fatalf("final load of %s: %v %+v; log:\n%s", a.id, err, ev.Error, tail(p.stderr.String()))
		}
		checkFiles(t, a, ev.Avatar)
	}
	readyChecked += e.checkReady(t, o, rounds)
	verifies++
	p.stop()

	// Nothing leaked on disk: blobs/sha256 holds exactly the avatars'
	// files, and no partial download is left in ingest/.
	want := map[string]bool{}
	for _, a := range avatars {
		for _, f := range a.files {
			want[f.sum] = true
		}
	}
	blobs, err := os.ReadDir(filepath.Join(e.state, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blobs {
		if !want[b.Name()] {
			t.Errorf("a blob no avatar uses is left: %s", b.Name())
		}
		delete(want, b.Name())
	}
	for d := range want {
		t.Errorf("blob %s is missing", d)
	}
	ingest, err := os.ReadDir(filepath.Join(e.state, "ingest"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, d := range ingest {
		t.Errorf("a partial download is left in ingest/: %s", d.Name())
	}

	sent := o.bytesSent.Load()
	kills := rounds
	again := sent - total
	t.Logf("%d kills (%d at startup); %d verify runs checked %d ready avatars; origin sent %d bytes for %d (%d again, %d ranged requests of %d)",
		kills, startupKills, verifies, readyChecked, sent, total, again, o.ranged.Load(), o.blobReqs.Load())
	crashTable.add(t,
		fmt.Sprintf("%d rounds of `assetd serve` preloading 10 avatars (%.1f MiB, 20 files) from an origin sending 16 KiB every %v a download; SIGKILL 20-520 ms after /v1/health answers (every 5th round: 0-40 ms after exec, during startup)",
			rounds, float64(total)/(1<<20), delay),
		fmt.Sprintf("after every restart `assetd verify` + an independent sha256 of every file: 0 damaged in %d ready avatar checks over %d restarts; all 10 loads completed with the origin's bytes; afterwards blobs/ holds exactly their 20 files and ingest/ is empty; origin sent %.2f MiB for %.2f MiB of avatars: %.1f KiB sent again in all, %.1f KiB per kill; %d of %d blob requests resumed with Range",
			readyChecked, verifies, float64(sent)/(1<<20), float64(total)/(1<<20), float64(again)/1024, float64(again)/1024/float64(kills), o.ranged.Load(), o.blobReqs.Load()))
}

// checkReady runs `assetd verify --json` and re-hashes the files of every
// avatar the daemon reports ready; it returns how many it checked.
func (e *env) checkReady(t *testing.T, o *binOrigin, round int) int {
	t.Helper()
	out, errOut, code := e.cli("verify", "--json")
	if code != 0 {
		t.Errorf("round %d: assetd verify exit %d: %s%s", round, code, out, errOut)
	}
	var res []apitype.VerifyResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Errorf("round %d: verify output %q: %v", round, out, err)
	}
	for _, r := range res {
		if len(r.Damaged) > 0 {
			t.Errorf("round %d: %s damaged: %v", round, r.AvatarID, r.Damaged)
		}
	}
	out, errOut, code = e.cli("ls", "--json")
	if code != 0 {
		t.Fatalf("round %d: assetd ls exit %d: %s%s", round, code, out, errOut)
	}
	var l apitype.List
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("round %d: ls output %q: %v", round, out, err)
	}
	n := 0
	for _, av := range l.Avatars {
		if av.State != apitype.StateReady {
			continue
		}
		n++
		o.mu.Lock()
		a := o.avatars[av.AvatarID]
		o.mu.Unlock()
		checkFiles(t, a, &av)
	}
	return n
}

// checkFiles requires every asset of got to hold the bytes of want.
func checkFiles(t *testing.T, want *avatar, got *apitype.Avatar) {
	t.Helper()
	if want == nil || got.AvatarID != want.id || len(got.Assets) != len(want.files) {
		t.Errorf("avatar %s with %d assets does not match the origin's", got.AvatarID, len(got.Assets))
		return
	}
	byPath := map[string]file{}
	for _, f := range want.files {
		byPath[f.path] = f
	}
	for _, a := range got.Assets {
		b, err := os.ReadFile(a.LocalPath)
		if err != nil {
			t.Errorf("%s %s: %v", got.AvatarID, a.Path, err)
			continue
		}
		if w := byPath[a.Path]; sum(b) != w.sum || a.SHA256 != w.sum {
			t.Errorf("%s %s: %d bytes at %s are not the origin's", got.AvatarID, a.Path, len(b), a.LocalPath)
		}
	}
}
