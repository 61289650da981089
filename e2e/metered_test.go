package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/testkit"
)

// TestMeteredLinkHoldsRefreshes: the real daemon on a private system bus
// (a real dbus-daemon) with a stand-in NetworkManager that says the link
// is metered. The first fetch of a preload avatar not cached is not held;
// restarted with it cached, the daemon pins it without a request, assetd
// stats says refreshes are held on the metered link, and the refresh runs
// (a 304) the moment NetworkManager says the link is unmetered.
func TestMeteredLinkHoldsRefreshes(t *testing.T) {
	t.Parallel()
	bus := testkit.StartBus(t)
	nm := testkit.StartNetworkManager(t, bus, testkit.MeteredYes)
	a := newAvatar(t, "rohan", 32<<10)
	o := newCondOrigin(t, a)
	e := newEnv(t, o.origin)
	e.ExtraEnv = []string{"DBUS_SYSTEM_BUS_ADDRESS=" + bus}
	e.preload = []string{"rohan"}
	e.writeConfigWith(storeConf{})
	p := e.Start()
	c := e.Client()
	waitFor(t, "rohan fetched on the metered link (a first fetch is not held)", func() bool {
		code, _ := e.status(c, "/v1/avatars/rohan")
		return code == 200
	})
	waitFor(t, "stats to say the link is metered", func() bool {
		return e.background(c).MeteredLink
	})
	p.Stop()
	if cond, _ := o.counts("rohan"); cond != 0 {
		t.Fatalf("%d conditional requests before the restart, want 0", cond)
	}

	p = e.Start()
	waitFor(t, "the cached avatar pinned without a request", func() bool {
		return strings.Contains(p.Stderr.String(), "the cached avatar is pinned without a request")
	})
	if cond, _ := o.counts("rohan"); cond != 0 {
		t.Fatalf("the restart on a metered link revalidated rohan (%d conditional requests)", cond)
	}
	out, _, code := e.CLI("stats", "--socket", e.Sock)
	if want := "refreshes  held: metered link (fetch.background_on_metered)\n"; code != 0 || !strings.HasSuffix(out, want) {
		t.Errorf("assetd stats: exit %d\n%s\nwant a last line %q", code, out, want)
	}

	nm.Set(testkit.MeteredNo)
	waitFor(t, "the held refresh once the link is unmetered", func() bool {
		_, notModified := o.counts("rohan")
		return notModified == 1
	})
	if b := e.background(c); b.Held {
		t.Errorf("stats still hold refreshes on an unmetered link: %+v", b)
	}
	p.Stop()
}

// TestRefreshWindowInStats: outside preload.refresh_window, a preload
// avatar not cached is still fetched, and stats say refreshes are held
// until the window opens; a reload without the window lifts the hold.
func TestRefreshWindowInStats(t *testing.T) {
	t.Parallel()
	a := newAvatar(t, "rohan", 32<<10)
	o := newCondOrigin(t, a)
	e := newEnv(t, o.origin)
	e.ExtraEnv = []string{"TZ=UTC"}
	e.preload = []string{"rohan"}
	opens := time.Now().UTC().Add(2 * time.Hour).Truncate(time.Minute)
	closes := opens.Add(time.Hour)
	e.writeConfigWith(storeConf{refresh: fmt.Sprintf("refresh_window = [%q]", opens.Format("15:04")+"-"+closes.Format("15:04"))})
	p := e.Start()
	c := e.Client()
	waitFor(t, "rohan fetched outside the window (a first fetch is not held)", func() bool {
		code, _ := e.status(c, "/v1/avatars/rohan")
		return code == 200
	})
	b := e.background(c)
	if !b.Held || !b.OutsideWindow || b.MeteredLink || !b.WindowOpens.Equal(opens) {
		t.Errorf("stats.background = %+v, want held outside the window until %v", b, opens)
	}
	out, _, _ := e.CLI("stats", "--socket", e.Sock)
	if !strings.Contains(out, "refreshes  held: outside the refresh window until ") {
		t.Errorf("assetd stats:\n%s", out)
	}
	// A reload that drops the window lifts the hold.
	e.writeConfigWith(storeConf{})
	if out, errOut, code := e.CLI("reload", "--socket", e.Sock); code != 0 {
		t.Fatalf("assetd reload: exit %d %s %s", code, out, errOut)
	}
	waitFor(t, "the hold lifted by the reload", func() bool { return !e.background(c).Held })
	p.Stop()
}

// background is the daemon's stats.background.
func (e *env) background(c *http.Client) apitype.Background {
	e.t.Helper()
	var raw json.RawMessage
	var st apitype.Stats
	code, err := e.do(c, "GET", "/v1/cache/stats", nil, &raw)
	if err != nil || code != 200 || json.Unmarshal(raw, &st) != nil {
		e.t.Fatalf("stats: %d %v %s", code, err, raw)
	}
	return st.Background
}
