package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

const crashEnv = "ASSETD_STORE_CRASH_DIR"

// TestCrash kills a process that is busy writing the store (SIGKILL, no
// Close) at a few different points and checks that each reopened store is
// consistent and serves only verified blobs.
func TestCrash(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in the child")
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	for round, killAfter := range []int{3, 11, 25} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir, fmt.Sprintf("ASSETD_STORE_CRASH_ROUND=%d", round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		steps := 0
		for steps < killAfter && sc.Scan() {
			if strings.HasPrefix(sc.Text(), "step ") {
				steps++
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if steps < killAfter {
			t.Fatalf("round %d: the child stopped after %d steps", round, steps)
		}

		s := openT(t, dir, Options{})
		checkConsistent(t, s)
		for _, a := range s.List() {
			if a.State != StateReady {
				t.Errorf("round %d: %s is %s %v", round, a.ID, a.State, a.Damaged)
			}
			for _, as := range a.Manifest.Assets {
				if err := s.VerifyBlob(context.Background(), as.SHA256); err != nil {
					t.Errorf("round %d: %s %s: %v", round, a.ID, as.Path, err)
				}
			}
		}
		if len(s.List()) == 0 {
			t.Errorf("round %d: nothing survived", round)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrashChild is the process TestCrash kills: it ingests, commits, puts
// and deletes avatars in a loop, reporting each step, and never closes the
// store.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("run by TestCrash")
	}
	round := os.Getenv("ASSETD_STORE_CRASH_ROUND")
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; ; i++ {
		id := fmt.Sprintf("av-%d", i%7)
		big := strings.Repeat(fmt.Sprintf("round %s step %d ", round, i), 4000)
		a := avatarT(t, s, id, fmt.Sprintf("r%s-%d", round, i), map[string]string{
			"common.bin": "shared by everyone",
			"body.splat": big,
			"pose.json":  fmt.Sprintf(`{"step":%d}`, i%3),
		})
		if err := s.Put(a); err != nil {
			t.Fatal(err)
		}
		if i%5 == 4 {
			if err := s.Delete(fmt.Sprintf("av-%d", (i+3)%7)); err != nil && !strings.Contains(err.Error(), "not cached") {
				t.Fatal(err)
			}
		}
		// A partial download in flight, as a killed load leaves it.
		part := []byte(fmt.Sprintf("partial %s %d", round, i))
		w, err := s.Ingest(ctx, digestOf(append(part, "...rest"...)), int64(len(part)+7))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(part)
		w.Close()
		s.Touch(id)
		if i%4 == 0 {
			s.Flush()
		}
		fmt.Printf("step %d\n", i)
	}
}
