package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/store"
	"github.com/assetd/assetd/internal/testkit"
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
		ids = append(ids, a.ID)
		total += a.Size()
	}
	o := newBinOrigin(t, avatars...)
	o.Chunk = 16 << 10
	o.SetDelay(delay)
	o.SetMaxAge(0) // each start's preload revalidates and picks up new versions
	e := newEnv(t, o.Srv.URL)
	e.preload = ids
	e.writeConfig()

	// Half-way, three avatars get a version 2 with a new second file: the
	// daemon updates them across kills too.
	var updated []*avatar
	var startupKills, verifies, readyChecked int
	seenReady := map[string]bool{} // "id@version" reported ready at some restart
	for round := range rounds {
		if round == rounds/2 {
			for i := range 3 {
				v1 := avatars[i]
				v2 := newAvatar(v1.ID, uint64(1000+i), 192<<10, 96<<10)
				v2.Version = "2"
				v2.Assets[0] = v1.Assets[0]
				o.Publish(v2)
				avatars[i] = v2
				updated = append(updated, v2)
				total += int64(len(v2.Assets[1].Data))
			}
		}
		p := e.Spawn()
		if round%5 == 4 {
			// a kill while the daemon opens its store and socket
			time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
			p.Kill()
			startupKills++
			continue
		}
		e.WaitHealthy(p)
		ready := e.checkReady(t, o, round)
		readyChecked += len(ready)
		for _, r := range ready {
			seenReady[r] = true
		}
		verifies++
		time.Sleep(time.Duration(20+rng.IntN(500)) * time.Millisecond)
		p.Kill()
		if t.Failed() {
			t.Logf("round %d log:\n%s", round, testkit.Tail(p.Stderr.String()))
			return
		}
	}

	// The end: every avatar loads, with the origin's bytes.
	p := e.Start()
	c := e.Client()
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLimit)
	defer cancel()
	for _, a := range avatars {
		ev, err := e.load(ctx, c, a.ID)
		if err == nil && ev.Avatar != nil && ev.Avatar.Version != a.Version {
			t.Errorf("final load of %s: version %s, want %s", a.ID, ev.Avatar.Version, a.Version)
		}
		if err != nil || ev.Type != apitype.EventCompleted || ev.Avatar == nil {
			t.Fatalf("final load of %s: %v %+v; log:\n%s", a.ID, err, ev.Error, testkit.Tail(p.Stderr.String()))
		}
		checkFiles(t, a, ev.Avatar)
	}
	readyChecked += len(e.checkReady(t, o, rounds))
	verifies++
	p.Stop()

	// Nothing leaked on disk. Right away: blobs/sha256 holds the current
	// files, plus replaced version-1 files only while they wait out the
	// store's orphan grace (committed for a version-1 load that a kill cut
	// short and the update made moot); ingest/ holds only partials of
	// such files, kept for ingestGrace. Once those graces pass (the store opened with a clock
	// 25 hours on), exactly the 20 current files are left.
	current := map[string]bool{}
	for _, a := range avatars {
		for _, f := range a.Assets {
			current[f.SHA256] = true
		}
	}
	// A version-1 file of an avatar seen ready at version 1 lost its
	// reference at the update and must be gone at once; one never
	// referenced (its load cut short) may wait out the orphan grace.
	old := map[string]bool{}
	for _, a := range updated {
		if !seenReady[a.ID+"@1"] {
			old[o.Version(a.ID, "1").Assets[1].SHA256] = true
		}
	}
	oldBlobs, oldPartials := e.checkDisk(t, current, old)
	st, err := store.Open(e.State, store.Options{Logger: quiet(), Now: func() time.Time { return time.Now().Add(25 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if b, p := e.checkDisk(t, current, nil); b+p != 0 {
		t.Errorf("after the graces: %d old blobs and %d partials left", b, p)
	}

	if *full && o.Ranged.Load() == 0 {
		t.Error("no blob request resumed with Range in 50 rounds: resume is not at work")
	}
	sent := o.BytesSent.Load()
	kills := rounds
	again := o.Resent()
	t.Logf("%d kills (%d at startup); %d verify runs checked %d ready avatars; origin sent %d bytes for %d (%d again, %d ranged requests of %d); %d old blobs and %d old partials until the graces",
		kills, startupKills, verifies, readyChecked, sent, total, again, o.Ranged.Load(), o.BlobReqs.Load(), oldBlobs, oldPartials)
	crashTable.add(t,
		fmt.Sprintf("%d rounds of `assetd serve` preloading 10 avatars (20 files) from an origin sending 16 KiB every %v a download, no Cache-Control (each start revalidates); at round %d three avatars get a version 2 with a new file (%.1f MiB in all); SIGKILL 20-520 ms after /v1/health answers (every 5th round: 0-40 ms after exec, during startup)",
			rounds, delay, rounds/2, float64(total)/(1<<20)),
		fmt.Sprintf("after every restart `assetd verify` + an independent sha256 of every file: 0 damaged in %d ready avatar checks over %d restarts; every ready avatar held exactly the files of the version it reported; all 10 final loads completed at the current version with the origin's bytes; afterwards blobs/ holds the 20 current files, ingest/ no partial of them (%d unreferenced version-1 blobs, committed by loads a kill cut short before the update, and %d partials of them await the store's graces, and are gone when it opens 25 h later); origin sent %.2f MiB for %.2f MiB of avatars: %.1f KiB sent again beyond each blob's size, %.1f KiB per kill; %d of %d blob requests resumed with Range",
			readyChecked, verifies, oldBlobs, oldPartials, float64(sent)/(1<<20), float64(total)/(1<<20), float64(again)/1024, float64(again)/1024/float64(kills), o.Ranged.Load(), o.BlobReqs.Load()))
}

// checkReady runs `assetd verify --json` and re-hashes the files of every
// avatar the daemon reports ready; it returns them as "id@version".
func (e *env) checkReady(t *testing.T, o *binOrigin, round int) []string {
	t.Helper()
	out, errOut, code := e.CLI("verify", "--json")
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
	out, errOut, code = e.CLI("ls", "--json")
	if code != 0 {
		t.Fatalf("round %d: assetd ls exit %d: %s%s", round, code, out, errOut)
	}
	var l apitype.List
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("round %d: ls output %q: %v", round, out, err)
	}
	var ready []string
	for _, av := range l.Avatars {
		if av.State != apitype.StateReady {
			continue
		}
		ready = append(ready, av.AvatarID+"@"+av.Version)
		checkFiles(t, o.Version(av.AvatarID, av.Version), &av)
	}
	return ready
}

// checkFiles requires every asset of got to hold the bytes of want; it
// reports and goes on.
func checkFiles(t *testing.T, want *avatar, got *apitype.Avatar) {
	t.Helper()
	if err := testkit.CheckFiles(want, got); err != nil {
		t.Error(err)
	}
}

// checkDisk requires blobs/sha256 to hold every current digest and
// nothing but current and old ones, and ingest/ no partial but of old
// ones; it returns the old blobs and old partials it found.
func (e *env) checkDisk(t *testing.T, current, old map[string]bool) (oldBlobs, oldPartials int) {
	t.Helper()
	blobs, err := os.ReadDir(filepath.Join(e.State, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	missing := maps.Clone(current)
	for _, b := range blobs {
		switch {
		case current[b.Name()]:
			delete(missing, b.Name())
		case old[b.Name()]:
			oldBlobs++
		default:
			t.Errorf("a blob no avatar uses is left: %s", b.Name())
		}
	}
	for d := range missing {
		t.Errorf("blob %s is missing", d)
	}
	ingest, err := os.ReadDir(filepath.Join(e.State, "ingest"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, d := range ingest {
		if old[d.Name()] {
			oldPartials++
			continue
		}
		t.Errorf("a partial download is left in ingest/: %s", d.Name())
	}
	return oldBlobs, oldPartials
}
