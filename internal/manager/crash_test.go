package manager

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/assetd/assetd/internal/fetch"
	"github.com/assetd/assetd/internal/store"
)

const (
	crashChildEnv = "ASSETD_MANAGER_CRASH_STORE"
	crashURLEnv   = "ASSETD_MANAGER_CRASH_URL"
	crashKills    = 24
)

var crashIDs = []string{"a", "b", "c", "d"}

// crashChild is the process the crash test kills: it loads, clears and
// verifies avatars in a loop against the parent's origin until it is
// killed (or, as a safety net, for 20 seconds).
func crashChild() int {
	dir, url := os.Getenv(crashChildEnv), os.Getenv(crashURLEnv)
	st, err := store.Open(dir, store.Options{Logger: quietLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open store:", err)
		return 2
	}
	f, err := fetch.New(fetch.Config{BaseURL: url, Concurrency: 3, MaxRetries: 2,
		RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond, StallWindow: time.Minute,
		Logger: quietLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "fetch:", err)
		return 2
	}
	m := New(st, f, Options{Logger: quietLogger(), SelfHeal: true})
	fmt.Println("ready")
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		var wg sync.WaitGroup
		for _, id := range crashIDs {
			wg.Go(func() { _, _ = m.Load(ctx, id, LoadOptions{Pin: id == "a", Background: id == "d"}) })
		}
		wg.Wait()
		// Churn, so that every round downloads something again.
		id := crashIDs[i%len(crashIDs)]
		_ = m.Clear(id)
		switch i % 3 {
		case 1:
			_, _ = m.ClearLRU(2)
		case 2:
			_, _ = m.Verify(ctx, crashIDs[(i+1)%len(crashIDs)])
		}
	}
	m.Close()
	st.Close()
	return 0
}

// TestCrashRecovery kills a loading process with SIGKILL at random moments
// and checks, after each, that the store reconciles to a consistent state:
// every avatar it reports ready or stale has the right bytes, and no blob
// is left that no avatar references.
func TestCrashRecovery(t *testing.T) {
	o := newOrigin(t)
	o.SetDelay(time.Millisecond)
	for _, id := range crashIDs {
		o.Publish(avatarOf(id, "v0", crashFiles(id, 0)))
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	var ready, midLoad int
	start := time.Now()
	for i := range crashKills {
		id := crashIDs[i%len(crashIDs)]
		o.Publish(avatarOf(id, fmt.Sprintf("v%d", i+1), crashFiles(id, i+1)))

		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashURLEnv+"="+o.URL())
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "ready\n" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("child %d: %q %v", i, line, err)
		}
		time.Sleep(time.Duration(rng.IntN(120_000)) * time.Microsecond)
		if o.Inflight() > 0 {
			midLoad++
		}
		_ = cmd.Process.Kill() // SIGKILL
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		ready += checkCrashedStore(t, dir)
	}
	if midLoad == 0 {
		t.Error("no kill landed during a download")
	}
	t.Logf("%d kills in %v, %d of them during a blob download; %d ready avatars verified after restarts",
		crashKills, time.Since(start).Round(time.Millisecond), midLoad, ready)
}

func crashFiles(id string, gen int) map[string][]byte {
	return map[string][]byte{
		"model.splat":   randomBytes(fmt.Sprintf("%s/model/%d", id, gen), 192<<10),
		"anim/idle.bin": randomBytes("shared/idle", 32<<10),
		"meta.json":     randomBytes(fmt.Sprintf("%s/meta/%d", id, gen/3), 1<<10),
	}
}

// checkCrashedStore opens the store as the next daemon would (two hours
// on, so that reconciliation collects orphans past their grace), checks
// it and returns how many avatars were ready or stale.
func checkCrashedStore(t *testing.T, dir string) int {
	t.Helper()
	later := func() time.Time { return time.Now().Add(2 * time.Hour) }
	st, err := store.Open(dir, store.Options{Logger: quietLogger(), Now: later})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer st.Close()
	referenced := map[string]bool{}
	n := 0
	for _, a := range st.List() {
		for _, as := range a.Manifest.Assets {
			referenced[as.SHA256] = true
		}
		if a.State == store.StateDamaged {
			continue
		}
		n++
		for _, as := range a.Manifest.Assets {
			b, err := os.ReadFile(st.BlobPath(as.SHA256))
			if err != nil {
				t.Fatalf("%s (%s) reported %s: %v", a.ID, as.Path, a.State, err)
			}
			sum := sha256.Sum256(b)
			if int64(len(b)) != as.Size || hex.EncodeToString(sum[:]) != as.SHA256 {
				t.Fatalf("%s (%s) reported %s has wrong bytes", a.ID, as.Path, a.State)
			}
		}
	}
	names, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range names {
		if !referenced[e.Name()] {
			t.Fatalf("blob %s is referenced by no avatar after reconciliation", e.Name())
		}
	}
	return n
}
