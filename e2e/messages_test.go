package e2e

import (
	"strings"
	"testing"

	"github.com/assetd/assetd/internal/testkit"
)

// TestHintsFollowTheCause (issue 14 item 4): what the CLI prints after an
// error is the next step in assetd's terms, chosen by the cause and
// filled with the daemon's configuration, not the SDK's recovery text.
func TestHintsFollowTheCause(t *testing.T) {
	t.Parallel()
	big := newAvatar(t, "big", 200<<10)
	o := newOrigin(t, big)
	e := newEnv(t, o)
	e.Write(e.Config, e.ConfigText(testkit.Config{OriginURL: "", MaxRetries: 1}))
	p := e.Start()

	_, errOut, _ := e.CLI("preload", "aria")
	if want := "(set origin.url in " + e.Config + ")"; !strings.Contains(errOut, want) {
		t.Errorf("preload with no origin.url: stderr lacks %q:\n%s", want, errOut)
	}
	_, errOut, _ = e.CLI("get", "nobody")
	if want := "(run: assetd preload nobody)"; !strings.Contains(errOut, want) || strings.Contains(errOut, "AvatarManager") {
		t.Errorf("get nobody: stderr lacks %q or speaks SDK:\n%s", want, errOut)
	}
	p.Stop()

	e.Write(e.Config, e.ConfigText(testkit.Config{OriginURL: o.URL(), MaxRetries: 1, MaxBytes: "64KiB"}))
	p = e.Start()
	defer p.Stop()
	_, errOut, _ = e.CLI("preload", "big")
	for _, want := range []string{
		"(raise store.max_bytes (now 64.0 KiB; this avatar needs 200.0 KiB))",
		"200.0 KiB more needed, but the cache would hold 200.0 KiB of its 64.0 KiB quota (store.max_bytes)",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("preload over the quota: stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "Check network connectivity") {
		t.Errorf("preload over the quota blames the network:\n%s", errOut)
	}
}
