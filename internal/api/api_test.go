package api_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/client"
	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/api/apitest"
	"github.com/assetd/assetd/internal/errs"
)

func TestHealth(t *testing.T) {
	ts := start(t, &apitest.Manager{}, api.Options{Version: "1.2.3"})
	h, err := ts.c.Health(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if h != (apitype.Health{Status: "ok", Version: "1.2.3"}) {
		t.Errorf("health = %+v", h)
	}
}

func TestGetAvatar(t *testing.T) {
	fm := &apitest.Manager{RetrieveFn: func(id string) (*apitype.Avatar, error) {
		switch id {
		case "rohan":
			return sampleAvatar(id), nil
		case "broken":
			return nil, &errcode.Error{Code: errcode.AvatarAssetMissing, Reason: errcode.ReasonDamaged, AvatarID: id, Asset: "model.splat"}
		}
		return nil, apitest.NotCached(id)
	}}
	ts := start(t, fm, api.Options{})
	ctx := testCtx(t)
	av, err := ts.c.Get(ctx, "rohan")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sampleAvatar("rohan"), av); diff != "" {
		t.Errorf("avatar (-want +got):\n%s", diff)
	}
	e := wantCode(t, errOnly(ts.c.Get(ctx, "nobody")), errcode.AvatarAssetMissing)
	if e.AvatarID != "nobody" || e.Reason != errcode.ReasonNotCached {
		t.Errorf("error = %+v", e)
	}
	e = wantCode(t, errOnly(ts.c.Get(ctx, "broken")), errcode.AvatarAssetMissing)
	if e.Asset != "model.splat" {
		t.Errorf("error = %+v", e)
	}
	for id, status := range map[string]int{"nobody": 404, "broken": 409, "rohan": 200} {
		if got, _, _ := ts.raw(t, "GET", "/v1/avatars/"+id, nil, nil); got != status {
			t.Errorf("GET %s: status %d, want %d", id, got, status)
		}
	}
}

func errOnly[T any](_ T, err error) error { return err }

func TestListAndStats(t *testing.T) {
	fm := &apitest.Manager{
		ListFn: func() apitype.List {
			return apitype.List{Avatars: []apitype.Avatar{*sampleAvatar("a")},
				Loads: []apitype.Load{{AvatarID: "b", State: apitype.StateDownloading, Progress: 0.5, BytesDone: 5, BytesTotal: 10}}}
		},
		StatsFn: func() apitype.Stats { return apitype.Stats{TotalEntries: 1, TotalSize: 8123456, MaxSize: 4 << 30} },
	}
	ts := start(t, fm, api.Options{})
	ctx := testCtx(t)
	l, err := ts.c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Avatars) != 1 || l.Avatars[0].AvatarID != "a" || len(l.Loads) != 1 || l.Loads[0].BytesTotal != 10 {
		t.Errorf("list = %+v", l)
	}
	st, err := ts.c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TotalEntries != 1 || st.MaxSize != 4<<30 {
		t.Errorf("stats = %+v", st)
	}
	// An empty cache lists [] and [], never null.
	fm.ListFn = nil
	_, _, body := ts.raw(t, "GET", "/v1/avatars", nil, nil)
	if got := strings.TrimSpace(string(body)); got != `{"avatars":[],"loads":[]}` {
		t.Errorf("empty list = %s", got)
	}
}

func TestClearAndCancel(t *testing.T) {
	var keepSeen int
	fm := &apitest.Manager{
		ClearFn: func(id string) error {
			if id == "rohan" {
				return nil
			}
			return apitest.NotCached(id)
		},
		ClearAllFn:      func() ([]string, error) { return []string{"a", "b"}, nil },
		ClearLRUFn:      func(keep int) ([]string, error) { keepSeen = keep; return []string{"old"}, nil },
		CancelLoadingFn: func(id string) bool { return id == "rohan" },
		CancelAllFn:     func() []string { return []string{"x"} },
	}
	ts := start(t, fm, api.Options{})
	ctx := testCtx(t)
	check := func(what string, got []string, err error, want ...string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}
	got, err := ts.c.Clear(ctx, "rohan")
	check("Clear", got, err, "rohan")
	wantCode(t, errOnly(ts.c.Clear(ctx, "nobody")), errcode.AvatarAssetMissing)
	got, err = ts.c.ClearAll(ctx)
	check("ClearAll", got, err, "a", "b")
	got, err = ts.c.ClearLRU(ctx, 3)
	check("ClearLRU", got, err, "old")
	if keepSeen != 3 {
		t.Errorf("keep = %d", keepSeen)
	}
	got, err = ts.c.CancelLoad(ctx, "rohan")
	check("CancelLoad", got, err, "rohan")
	got, err = ts.c.CancelLoad(ctx, "idle")
	check("CancelLoad idle", got, err)
	got, err = ts.c.CancelAll(ctx)
	check("CancelAll", got, err, "x")
	fm.ClearAllFn = func() ([]string, error) { return nil, errors.New("disk on fire") }
	e := wantCode(t, errOnly(ts.c.ClearAll(ctx)), errcode.Internal)
	if !strings.Contains(e.Message, "disk on fire") {
		t.Errorf("message = %q", e.Message)
	}
	if status, _, _ := ts.raw(t, "DELETE", "/v1/avatars", nil, nil); status != 500 {
		t.Errorf("status = %d, want 500", status)
	}
}

func TestSizeVerifyPinImport(t *testing.T) {
	var pinned []bool
	var imported []string // id, version, force, then the stream's entries
	fm := &apitest.Manager{
		CacheSizeFn: func(id string) (int64, error) { return 42, nil },
		VerifyFn: func(_ context.Context, id string) (apitype.VerifyResult, error) {
			return apitype.VerifyResult{AvatarID: id, State: apitype.StateDamaged, Checked: 2, Damaged: []string{"voice.bin"}, Healing: true}, nil
		},
		SetPinnedFn: func(id string, p bool) error { pinned = append(pinned, p); return nil },
		ImportFn: func(_ context.Context, id string, r io.Reader, o api.ImportOptions) (*apitype.Avatar, error) {
			imported = []string{id, o.Version, fmt.Sprint(o.Force)}
			tr := tar.NewReader(r)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					return nil, errs.New(errcode.BadRequest, errcode.PhaseLocal, "%v", err)
				}
				b, _ := io.ReadAll(tr)
				imported = append(imported, h.Name+"="+string(b))
			}
			return sampleAvatar(id), nil
		},
	}
	ts := start(t, fm, api.Options{})
	ctx := testCtx(t)
	if n, err := ts.c.Size(ctx, "rohan"); err != nil || n != 42 {
		t.Errorf("Size = %d, %v", n, err)
	}
	vr, err := ts.c.Verify(ctx, "rohan")
	if err != nil || vr.State != apitype.StateDamaged || !slices.Equal(vr.Damaged, []string{"voice.bin"}) || !vr.Healing {
		t.Errorf("Verify = %+v, %v", vr, err)
	}
	if err := ts.c.SetPinned(ctx, "rohan", true); err != nil {
		t.Fatal(err)
	}
	if err := ts.c.SetPinned(ctx, "rohan", false); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pinned, []bool{true, false}) {
		t.Errorf("pinned = %v", pinned)
	}
	// The client reads the folder and streams it: the daemon sees bytes,
	// never a path.
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "a.bin"), []byte("A"), 0o644)
	os.WriteFile(filepath.Join(dir, "sub", "b.bin"), []byte("BB"), 0o644)
	av, err := ts.c.Import(ctx, "mine", dir, client.ImportOptions{Version: "v1", Force: true})
	if want := []string{"mine", "v1", "true", "a.bin=A", "sub/b.bin=BB"}; err != nil || av.AvatarID != "mine" || !slices.Equal(imported, want) {
		t.Errorf("Import = %+v, %v, saw %q, want %q", av, err, imported, want)
	}
	wantCode(t, errOnly(ts.c.Import(ctx, "mine", filepath.Join(dir, "nope"), client.ImportOptions{})), errcode.BadRequest)
	// A stream over the 64 KiB body limit: this route alone takes it.
	big := bytes.Repeat([]byte{7}, 1<<20)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "big.bin", Size: int64(len(big)), Mode: 0o644})
	tw.Write(big)
	tw.Close()
	if _, err := ts.c.ImportTar(ctx, "mine", bytes.NewReader(tb.Bytes()), int64(tb.Len()), client.ImportOptions{}); err != nil || len(imported) != 4 || imported[2] != "false" || len(imported[3]) != len("big.bin=")+len(big) {
		t.Errorf("ImportTar of 1 MiB: %v", err)
	}

	fm.CacheSizeFn, fm.VerifyFn, fm.SetPinnedFn = nil, nil, nil
	wantCode(t, errOnly(ts.c.Size(ctx, "nobody")), errcode.AvatarAssetMissing)
	wantCode(t, errOnly(ts.c.Verify(ctx, "nobody")), errcode.AvatarAssetMissing)
	wantCode(t, ts.c.SetPinned(ctx, "nobody", true), errcode.AvatarAssetMissing)
}

func TestSession(t *testing.T) {
	var got [][2]string
	var retried int
	fm := &apitest.Manager{RetryAuthFailedFn: func() { retried++ }}
	ts := start(t, fm, api.Options{SetSession: func(token, appID string) error {
		got = append(got, [2]string{token, appID})
		if token == "bad" {
			return &errcode.Error{Code: errcode.SessionTokenInvalid, Message: "not a token"}
		}
		return nil
	}})
	ctx := testCtx(t)
	if err := ts.c.SetSession(ctx, "tok", "app"); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != [2]string{"tok", "app"} || retried != 1 {
		t.Errorf("SetSession saw %q, retried %d", got, retried)
	}
	wantCode(t, ts.c.SetSession(ctx, "bad", ""), errcode.SessionTokenInvalid)
	wantCode(t, ts.c.SetSession(ctx, "", "app"), errcode.BadRequest)
	if retried != 1 {
		t.Errorf("retried %d times after refused tokens", retried)
	}
	for _, body := range []string{`{"sessionToken":`, `{"token":"x"}`, `{"sessionToken":"x"} {}`, ``, `[]`} {
		status, _, b := ts.raw(t, "PUT", "/v1/session", strings.NewReader(body), nil)
		if e := errorBody(t, b); status != 400 || e.Code != errcode.BadRequest {
			t.Errorf("body %q: %d %s", body, status, e.Code)
		}
	}
	status, _, b := ts.raw(t, "PUT", "/v1/session", strings.NewReader(`{"sessionToken":"t"}`), nil)
	if status != http.StatusNoContent || len(b) != 0 {
		t.Errorf("PUT /v1/session: %d %q", status, b)
	}

	// A daemon without SetSession says so.
	ts2 := start(t, &apitest.Manager{}, api.Options{})
	wantCode(t, ts2.c.SetSession(ctx, "tok", ""), errcode.Internal)
}

func TestMetrics(t *testing.T) {
	ts := start(t, &apitest.Manager{}, api.Options{Metrics: func() api.Metrics {
		return api.Metrics{
			LoadsByResult:   map[string]uint64{"ok": 7, "failedToDownloadAvatarAssets": 2, "cancelled": 1},
			BytesDownloaded: 1 << 20, BytesFromMirrors: 1000, Retries: 3, Requests: 40,
			BytesCacheHit: 900, BytesCacheMiss: 100,
			HeldMetered:  true,
			CacheEntries: 5, CacheBytes: 123, LoadsInFlight: 2, Stale: 1, Damaged: 2,
			DiskFreeKnown: true, DiskFreeAboveReserve: -5,
			PreloadAvatars: 4, PreloadFailing: map[string]int{"sessionTokenExpired": 2},
			RefreshLastSuccess: time.Unix(1700000000, 0),
		}
	}})
	status, hdr, body := ts.raw(t, "GET", "/metrics", nil, nil)
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: %d %s", status, hdr.Get("Content-Type"))
	}
	text := string(body)
	for _, line := range []string{
		"# TYPE assetd_loads_total counter",
		`assetd_loads_total{result="ok"} 7`,
		`assetd_loads_total{result="failed",code="cancelled"} 1`,
		`assetd_loads_total{result="failed",code="failedToDownloadAvatarAssets"} 2`,
		"# HELP assetd_downloaded_bytes_total ",
		`assetd_downloaded_bytes_total{source="origin"} 1047576`,
		`assetd_downloaded_bytes_total{source="mirror"} 1000`,
		`assetd_site_cache_bytes_total{result="hit"} 900`,
		`assetd_site_cache_bytes_total{result="miss"} 100`,
		`assetd_background_held{reason="metered"} 1`,
		`assetd_background_held{reason="outside_window"} 0`,
		`assetd_avatars{state="ready"} 2`,
		`assetd_avatars{state="stale"} 1`,
		`assetd_avatars{state="damaged"} 2`,
		"assetd_disk_free_above_reserve_bytes -5",
		"assetd_preload_avatars 4",
		`assetd_preload_failing_avatars{code="sessionTokenExpired"} 2`,
		"assetd_refresh_last_success_timestamp_seconds 1700000000",
		"assetd_http_retries_total 3",
		"assetd_http_requests_total 40",
		"# TYPE assetd_cache_entries gauge",
		"assetd_cache_entries 5",
		"assetd_cache_bytes 123",
		"assetd_loads_in_flight 2",
	} {
		if !strings.Contains(text, line) {
			t.Errorf("metrics lack %q:\n%s", line, text)
		}
	}
	// Every non-comment line is "name{labels} value".
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if !strings.HasPrefix(l, "# ") && len(strings.Fields(l)) != 2 {
			t.Errorf("bad sample line %q", l)
		}
	}
	got, err := ts.c.Metrics(testCtx(t))
	if err != nil || got != text {
		t.Errorf("client Metrics = %v", err)
	}

	// Without a Metrics source the cache figures come from Stats.
	ts2 := start(t, &apitest.Manager{StatsFn: func() apitype.Stats { return apitype.Stats{TotalEntries: 9, TotalSize: 99, LoadsInFlight: 1} }}, api.Options{})
	got, err = ts2.c.Metrics(testCtx(t))
	if err != nil || !strings.Contains(got, "assetd_cache_entries 9\n") || !strings.Contains(got, "assetd_loads_in_flight 1\n") {
		t.Errorf("metrics from stats: %v\n%s", err, got)
	}
}

func TestDaemonNotRunning(t *testing.T) {
	ts := start(t, &apitest.Manager{}, api.Options{})
	ts.stop() // the socket file is gone with the listener
	e := wantCode(t, errOnly(ts.c.Health(testCtx(t))), errcode.DaemonNotRunning)
	if e.Message != "assetd is not running at "+ts.sock {
		t.Errorf("message = %q", e.Message)
	}
	if errs.ExitCode(e) != errs.ExitUnreachable {
		t.Errorf("exit code = %d", errs.ExitCode(e))
	}

	// A socket file that nobody listens on: ECONNREFUSED.
	sock := filepath.Join(t.TempDir(), "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	e = wantCode(t, errOnly(client.New(sock).Stats(testCtx(t))), errcode.DaemonNotRunning)
	if e.Message != "assetd is not running at "+sock {
		t.Errorf("message = %q", e.Message)
	}
}
