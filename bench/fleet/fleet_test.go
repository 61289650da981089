package fleet

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/assetd/assetd/internal/duty"
)

var (
	flagDevices = flag.Int("fleet.devices", defaultDevices, "devices in the simulated fleet")
	flagAvatars = flag.Int("fleet.avatars", 10, "avatars on every device's preload list")
	flagSite    = flag.Int("fleet.site", 30, "devices behind one site cache")
	flagReport  = flag.String("fleet.report", "", "write the Simulation section of this docs/fleet.md")
)

// The default configuration's schedule: refresh_interval 6h, refresh_jitter 30m.
const (
	interval = 6 * time.Hour
	jitter   = 30 * time.Minute
	window   = "02:00-05:00" // preload.refresh_window
)

// scenarios are the refresh schedules compared, each without and with a
// site cache.
func scenarios(siteSize int) []Scenario {
	schedules := []Scenario{
		{Name: "interval 6 h, no jitter", Schedule: duty.Schedule{Interval: interval}},
		{Name: "interval 6 h, jitter 30 m", Schedule: duty.Schedule{Interval: interval, Jitter: jitter}},
	}
	windows, err := duty.ParseWindows([]string{window})
	if err != nil {
		panic(err)
	}
	schedules = append(schedules, Scenario{Name: "interval 6 h, window " + window,
		Schedule: duty.Schedule{Interval: interval, Jitter: jitter, Windows: windows}})
	var out []Scenario
	for _, s := range schedules {
		out = append(out, s)
		s.SiteSize = siteSize
		out = append(out, s)
	}
	return out
}

// TestFleetSimulation runs each scenario's day and checks what must hold
// whatever the fleet's size; with -fleet.report it writes the table.
func TestFleetSimulation(t *testing.T) {
	n, avatars := *flagDevices, *flagAvatars
	if n < 1 || avatars < 1 || *flagSite < 1 {
		t.Fatalf("-fleet.devices, -fleet.avatars and -fleet.site must be positive")
	}
	var results []*Result
	for _, sc := range scenarios(*flagSite) {
		t.Run(sc.Name+cacheName(sc), func(t *testing.T) {
			began := time.Now()
			r := simulate(t, sc, n, avatars)
			t.Logf("%d devices in %v: %d requests, peak %d/s at power-on, %d/s refreshing, egress %d bytes",
				n, time.Since(began).Round(time.Millisecond), r.Requests, r.PeakBoot, r.PeakRefresh, r.Egress)
			checkInvariants(t, r, avatars)
			results = append(results, r)
		})
	}
	if *flagReport != "" && !t.Failed() {
		if err := writeReport(*flagReport, results, avatars); err != nil {
			t.Fatal(err)
		}
	}
}

func cacheName(sc Scenario) string {
	if sc.SiteSize > 0 {
		return fmt.Sprintf(", site cache per %d", sc.SiteSize)
	}
	return ""
}

// checkInvariants checks one day's result against what the model and the
// scheduler promise.
func checkInvariants(t *testing.T, r *Result, avatars int) {
	t.Helper()
	n := r.Devices
	cat := newCatalogue(avatars)
	old, cur := cat.versions[cat.changed][0], cat.versions[cat.changed][1]
	if r.Held != n || len(r.Hold) != n {
		t.Errorf("%d of %d devices end the day with the new version (%d got it)", r.Held, n, len(r.Hold))
	}
	// Who fetches the changed blob from the origin: each device once
	// without a cache; each site cache once with one; nobody anything else.
	requesters := n
	if r.Scenario.SiteSize > 0 {
		requesters = r.Sites
		if want := (n + r.Scenario.SiteSize - 1) / r.Scenario.SiteSize; r.Sites != want {
			t.Errorf("%d sites, want %d", r.Sites, want)
		}
	}
	var changed []blob
	for _, b := range cur.blobs {
		if !containsBlob(old.blobs, b.id) {
			changed = append(changed, b)
		}
	}
	if len(changed) != 1 {
		t.Fatalf("the republish changes %d blobs, want 1", len(changed))
	}
	if len(r.BlobFetches) != requesters {
		t.Errorf("%d (requester, blob) pairs left the origin, want %d: one per %s", len(r.BlobFetches), requesters, requesterName(r))
	}
	for k, c := range r.BlobFetches {
		if c != 1 || k.blob != changed[0].id {
			t.Errorf("blob %d left the origin %d times for %s %d, want only blob %d, once", k.blob, c, requesterName(r), k.requester, changed[0].id)
			break
		}
	}
	// Manifests pass through a site cache: the origin sends the new one
	// to every device, cache or not.
	if got := r.Manifests - r.NotModified; got != int64(n) {
		t.Errorf("the origin sent %d manifests (200), want %d: one per device", got, n)
	}
	if want := int64(requesters)*changed[0].size + int64(n)*cur.manifestBytes; r.Egress != want {
		t.Errorf("origin egress %d bytes, want %d", r.Egress, want)
	}
	if r.Requests != r.Manifests+r.Blobs {
		t.Errorf("%d requests, %d manifests + %d blobs", r.Requests, r.Manifests, r.Blobs)
	}
	s := r.Scenario.Schedule
	if len(s.Windows) > 0 {
		// Power-on falls outside the window: a cached avatar is pinned
		// without a request, and every refresh falls inside the window,
		// one a day, spread across it.
		if r.PeakBoot != 0 {
			t.Errorf("with a refresh window, %d requests/s at power-on outside it, want none", r.PeakBoot)
		}
		if r.RefreshOutside != 0 {
			t.Errorf("%d refresh requests outside the window %v", r.RefreshOutside, s.Windows)
		}
		if want := int64(n * avatars); r.Manifests != want {
			t.Errorf("%d manifest requests, want %d: one refresh a day per device and avatar", r.Manifests, want)
		}
		opens, held := duty.Held(r.Republish, s.Windows)
		if !held {
			t.Fatalf("the republish at %v falls inside the window", r.Republish)
		}
		w := s.Windows[0]
		length := time.Duration((w.End-w.Start+24*60)%(24*60)) * time.Minute
		first, last := opens.Sub(r.Republish), opens.Sub(r.Republish)+length
		if r.Hold[0] < first || r.Hold[n-1] > last {
			t.Errorf("devices held the new version from %v to %v after the republish, want within the window, %v to %v", r.Hold[0], r.Hold[n-1], first, last)
		}
		checkSpread(t, r, avatars)
		return
	}
	// At power-on every device revalidates each avatar once, at once: the
	// first load is not jittered.
	if want := n * avatars; r.PeakBoot != want {
		t.Errorf("peak at power-on %d requests/s, want %d (every device's every avatar)", r.PeakBoot, want)
	}
	// Every later request is a refresh, one per avatar per interval at
	// most: the power-on load, then refreshes before the day's end.
	loads := int64((day-1)/s.Interval) + 1
	if r.Manifests > int64(n*avatars)*loads {
		t.Errorf("%d manifest requests, more than %d per device and avatar", r.Manifests, loads)
	}
	if s.Jitter == 0 {
		if r.PeakRefresh < n*avatars {
			t.Errorf("without jitter, peak refresh %d requests/s, want the whole fleet at once (%d)", r.PeakRefresh, n*avatars)
		}
		if last := r.Hold[n-1]; last > s.Interval {
			t.Errorf("the last device held the new version %v after the republish, more than one interval", last)
		}
		return
	}
	checkSpread(t, r, avatars)
	if last := r.Hold[n-1]; last > s.Interval+s.Jitter {
		t.Errorf("the last device held the new version %v after the republish, more than interval + jitter", last)
	}
}

// checkSpread checks that a fleet's refreshes do not fall in the same
// second: the busiest holds less than a tenth of them (for a fleet big
// enough to tell).
func checkSpread(t *testing.T, r *Result, avatars int) {
	t.Helper()
	all := r.Devices * avatars
	if all >= 1000 && r.PeakRefresh >= all/10 {
		t.Errorf("peak refresh %d requests/s: not spread (%d refreshes a round)", r.PeakRefresh, all)
	}
}

func containsBlob(bs []blob, id int) bool {
	for _, b := range bs {
		if b.id == id {
			return true
		}
	}
	return false
}

func requesterName(r *Result) string {
	if r.Scenario.SiteSize > 0 {
		return "site"
	}
	return "device"
}

// writeReport replaces the body of the Simulation section of the
// docs/fleet.md at path.
func writeReport(path string, results []*Result, avatars int) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(raw)
	const head = "## Simulation\n"
	i := strings.Index(doc, head)
	if i < 0 {
		return fmt.Errorf("%s has no %q section", path, strings.TrimSpace(head))
	}
	body := i + len(head)
	end := len(doc)
	if j := strings.Index(doc[body:], "\n## "); j >= 0 {
		end = body + j + 1
	}
	out := doc[:body] + "\n" + report(results, avatars) + "\n" + doc[end:]
	return os.WriteFile(path, []byte(out), 0o644)
}
