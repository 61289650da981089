package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/assetd/assetd/bench"
	"github.com/assetd/assetd/internal/duty"
	"github.com/assetd/assetd/internal/manifest"
)

// The simulated day, in the devices' local time: they all power on at
// dayStart with warm caches, the origin republishes one file of one
// avatar at republishAt, and the day ends 24 h after it began.
const (
	dayStart    = 6 * time.Hour // 06:00
	republishAt = 9 * time.Hour // 09:00
	day         = 24 * time.Hour
)

// Scenario is one run of the fleet.
type Scenario struct {
	Name     string
	Schedule duty.Schedule // Avatars is filled in by the run
	SiteSize int           // devices behind one site cache; 0: none, all reach the origin
}

// outside says whether t is outside the scenario's refresh windows.
func (sc Scenario) outside(t time.Time) bool {
	if len(sc.Schedule.Windows) == 0 {
		return false
	}
	_, held := duty.Held(t, sc.Schedule.Windows)
	return held
}

// Result is what the origin saw during one scenario's day.
type Result struct {
	Scenario Scenario
	Devices  int
	Sites    int

	Requests    int64 // at the origin, all kinds
	Manifests   int64 // manifest requests (conditional when the requester holds one)
	NotModified int64 // of which answered 304
	Blobs       int64 // blob requests
	Egress      int64 // response body bytes the origin sent
	Boot        int64 // requests of the first loads at power-on

	PeakBoot    int     // busiest second of the first loads at power-on
	PeakRefresh int     // busiest second of the periodic refreshes
	Mean        float64 // requests per second over the day

	// Republish is when the origin republished, in virtual time.
	Republish time.Time
	// Hold is, for each device that got the new version, how long after
	// the republish it held it, in order.
	Hold []time.Duration
	// Held is how many devices end the day with the new version.
	Held int
	// BlobFetches is how often each (requester, blob) pair left the
	// origin: the requester is the site cache with one, else the device.
	BlobFetches map[fetchKey]int
	// RefreshOutside counts refresh requests outside the refresh window
	// (only with a window).
	RefreshOutside int64
}

type fetchKey struct {
	requester int // device or site index
	blob      int
}

// blob is one content-addressed file at the origin.
type blob struct {
	id   int
	size int64
}

// version is one published version of an avatar.
type version struct {
	manifestBytes int64
	blobs         []blob
}

// catalogue is what the origin publishes: for each avatar its versions,
// the last one current from the republish on.
type catalogue struct {
	ids       []string
	index     map[string]int
	versions  [][]version
	changed   int // the avatar whose file is republished
	blobSizes []int64
}

// newCatalogue models bench.Avatars(n) (five files, about 8 MiB each),
// with one republish: a new edition of avatar 0's texture.
func newCatalogue(n int) *catalogue {
	c := &catalogue{index: map[string]int{}}
	key := func(id string, f bench.File) string {
		s := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%d", id, f.Path, f.Edition))
		return hex.EncodeToString(s[:])
	}
	blobIDs := map[string]int{}
	mkVersion := func(a bench.Avatar, ver string) version {
		m := manifest.Manifest{Schema: 1, AvatarID: a.ID, Version: ver,
			Signature: &manifest.Signature{KeyID: "ed25519:" + key(a.ID, bench.File{Path: "key"})[:16],
				Ed25519: base64.StdEncoding.EncodeToString(make([]byte, 64))}}
		var v version
		for _, f := range a.Files {
			k := key(a.ID, f)
			m.Assets = append(m.Assets, manifest.Asset{Path: f.Path, Size: int64(f.Size), SHA256: k})
			id, ok := blobIDs[k]
			if !ok {
				id = len(c.blobSizes)
				blobIDs[k] = id
				c.blobSizes = append(c.blobSizes, int64(f.Size))
			}
			v.blobs = append(v.blobs, blob{id: id, size: int64(f.Size)})
		}
		raw, err := json.Marshal(m)
		if err != nil {
			panic(err)
		}
		v.manifestBytes = int64(len(raw))
		return v
	}
	for i, a := range bench.Avatars(n) {
		c.ids = append(c.ids, a.ID)
		c.index[a.ID] = i
		vs := []version{mkVersion(a, bench.Version)}
		if i == c.changed {
			b := bench.Avatar{ID: a.ID, Files: slices.Clone(a.Files)}
			for j := range b.Files {
				if b.Files[j].Path == "texture.bin" {
					b.Files[j].Edition++
				}
			}
			vs = append(vs, mkVersion(b, bench.Version+"-2"))
		}
		c.versions = append(c.versions, vs)
	}
	return c
}

// origin is the counting origin: manifests answered 200 or 304 by ETag
// (the version), blobs by content.
type origin struct {
	cat     *catalogue
	start   time.Time // the day's start, virtual time
	outside func(time.Time) bool

	mu          sync.Mutex
	republished bool
	res         *Result
	boot        []int32 // first-load requests per second of the day
	refresh     []int32 // refresh requests per second of the day
}

// current is avatar a's current version.
func (o *origin) current(a int) int {
	if o.republished {
		return len(o.cat.versions[a]) - 1
	}
	return 0
}

// count records one request at the origin, now; false when the day is
// over (a refresh due at the very end belongs to the next day).
func (o *origin) count(refresh bool) bool {
	now := time.Now()
	s := int(now.Sub(o.start) / time.Second)
	if s < 0 || s >= len(o.boot) {
		return false
	}
	o.res.Requests++
	if refresh {
		o.refresh[s]++
		if o.outside(now) {
			o.res.RefreshOutside++
		}
	} else {
		o.boot[s]++
		o.res.Boot++
	}
	return true
}

// manifest answers a (conditional, when held >= 0) manifest request for
// avatar a and returns the version the requester now holds.
func (o *origin) manifest(a, held int, refresh bool) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	v := o.current(a)
	if !o.count(refresh) {
		return v
	}
	o.res.Manifests++
	if v == held {
		o.res.NotModified++
		return v
	}
	o.res.Egress += o.cat.versions[a][v].manifestBytes
	return v
}

// blob answers one blob request.
func (o *origin) blob(requester int, b blob, refresh bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.count(refresh) {
		return
	}
	o.res.Blobs++
	o.res.Egress += b.size
	o.res.BlobFetches[fetchKey{requester, b.id}]++
}

// site is the model of one site cache (deploy/site-cache/nginx.conf): it
// holds each blob once fetched, for good (immutable), and passes every
// manifest request to the origin with the device's own If-None-Match (the
// shipped file does not cache manifests), so the origin answers each
// device as without the cache. One lock per site stands for
// proxy_cache_lock: devices that ask for a blob it is still fetching wait
// for that one fetch.
type site struct {
	index int

	mu    sync.Mutex
	blobs map[int]bool
}

// device is one daemon: its held version of each avatar and the Loader
// its Preloader drives.
type device struct {
	index int
	o     *origin
	site  *site

	mu   sync.Mutex
	held []int
	got  bool
}

func (d *device) Preload(ctx context.Context, id string) error { return d.load(id, false) }
func (d *device) Refresh(ctx context.Context, id string) error { return d.load(id, true) }
func (d *device) Unpin(id string) error                        { return nil }

// PinCached is the first load of a cached avatar while refreshes are held
// (outside the refresh windows): no request. Every device is warm.
func (d *device) PinCached(id string) (bool, error) { return true, nil }

// load is the manager's background load, as the origin sees it: one
// conditional manifest request (a manifest is no-cache, so the first load
// after power-on revalidates too), then the blobs of a new version that
// the device does not hold (content addressing: unchanged files are
// kept).
func (d *device) load(id string, refresh bool) error {
	o := d.o
	a, ok := o.cat.index[id]
	if !ok {
		return fmt.Errorf("unknown avatar %q", id)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	held := d.held[a]
	v := o.manifest(a, held, refresh)
	if v == held {
		return nil
	}
	have := map[int]bool{}
	for _, b := range o.cat.versions[a][held].blobs {
		have[b.id] = true
	}
	for _, b := range o.cat.versions[a][v].blobs {
		if have[b.id] {
			continue
		}
		if d.site == nil {
			o.blob(d.index, b, refresh)
			continue
		}
		s := d.site
		s.mu.Lock()
		if !s.blobs[b.id] {
			o.blob(s.index, b, refresh)
			s.blobs[b.id] = true
		}
		s.mu.Unlock()
	}
	d.held[a] = v
	if a == o.cat.changed && v == len(o.cat.versions[a])-1 && !d.got {
		d.got = true
		o.mu.Lock()
		o.res.Hold = append(o.res.Hold, time.Since(o.res.Republish))
		o.mu.Unlock()
	}
	return nil
}

// simulate runs one scenario's day for n devices of avatars avatars each,
// in a synctest bubble: every device is a real duty.Preloader.
func simulate(t *testing.T, sc Scenario, n, avatars int) *Result {
	cat := newCatalogue(avatars)
	res := &Result{Scenario: sc, Devices: n, BlobFetches: map[fetchKey]int{}}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	synctest.Test(t, func(t *testing.T) {
		// The bubble's clock starts at midnight UTC, 2000-01-01: wait
		// for the day's start in local time.
		now := time.Now()
		start := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.Local).Add(dayStart)
		for start.Before(now) {
			start = start.Add(day)
		}
		time.Sleep(start.Sub(now))
		o := &origin{cat: cat, start: start, outside: sc.outside, res: res,
			boot: make([]int32, int(day/time.Second)), refresh: make([]int32, int(day/time.Second))}

		var sites []*site
		if sc.SiteSize > 0 {
			for i := 0; i*sc.SiteSize < n; i++ {
				s := &site{index: i, blobs: map[int]bool{}}
				for a := range cat.versions {
					for _, b := range cat.versions[a][0].blobs {
						s.blobs[b.id] = true // warm: it served the fleet before
					}
				}
				sites = append(sites, s)
			}
		}
		res.Sites = len(sites)
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		devices := make([]*device, n)
		for i := range devices {
			d := &device{index: i, o: o, held: make([]int, avatars)}
			if sc.SiteSize > 0 {
				d.site = sites[i/sc.SiteSize]
			}
			devices[i] = d
			s := sc.Schedule
			s.Avatars = cat.ids
			p := duty.NewPreloader(d, s, quiet)
			wg.Go(func() { _ = p.Run(ctx) })
		}
		time.Sleep(republishAt - dayStart)
		o.mu.Lock()
		res.Republish = time.Now()
		o.republished = true
		o.mu.Unlock()
		time.Sleep(day - (republishAt - dayStart))
		cancel()
		wg.Wait()

		for _, d := range devices {
			if d.held[cat.changed] == len(cat.versions[cat.changed])-1 {
				res.Held++
			}
		}
		slices.Sort(res.Hold)
		res.PeakBoot = int(slices.Max(o.boot))
		res.PeakRefresh = int(slices.Max(o.refresh))
		res.Mean = float64(res.Requests) / day.Seconds()
	})
	return res
}

// quantile is the time by which a share q of all devices held the new
// version; false when fewer did.
func (r *Result) quantile(q float64) (time.Duration, bool) {
	need := int(q*float64(r.Devices) + 0.999999)
	if need < 1 {
		need = 1
	}
	if len(r.Hold) < need {
		return 0, false
	}
	return r.Hold[need-1], true
}
