package e2e

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/assetd/assetd/apitype"
)

// TestCurl: the API is usable with curl --unix-socket, as the contract says.
func TestCurl(t *testing.T) {
	t.Parallel()
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("no curl on this machine (make tools installs it)")
	}
	a := newAvatar(t, "rohan", 64<<10)
	e := newEnv(t, newOrigin(t, a))
	p := e.Start()
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(curl, append([]string{"-sS", "--max-time", "20", "--unix-socket", e.Sock}, args...)...).Output()
		if err != nil {
			t.Fatalf("curl %v: %v", args, err)
		}
		return string(out)
	}
	var h apitype.Health
	if err := json.Unmarshal([]byte(run("http://assetd/v1/health")), &h); err != nil || h.Status != "ok" {
		t.Errorf("health: %+v, %v", h, err)
	}
	var last apitype.Event
	lines := bufio.NewScanner(strings.NewReader(run("-N", "-X", "POST", "http://assetd/v1/avatars/rohan/load")))
	for lines.Scan() {
		if err := json.Unmarshal(lines.Bytes(), &last); err != nil {
			t.Fatalf("NDJSON line %q: %v", lines.Text(), err)
		}
	}
	if last.Type != apitype.EventCompleted {
		t.Fatalf("the stream ended with %+v", last)
	}
	checkFiles(t, a, last.Avatar)
	if out := run("-w", "%{http_code}", "-o", "/dev/null", "http://assetd/v1/avatars/..%2fx"); out != "400" {
		t.Errorf("curl of an encoded path trick: status %s, want 400", out)
	}
	p.Stop()
}
