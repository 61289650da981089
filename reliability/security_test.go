package reliability

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/config"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/fetch"
	"github.com/assetd/assetd/internal/manager"
	"github.com/assetd/assetd/internal/store"
	"github.com/assetd/assetd/internal/testkit"
)

// TestSocketMode: the socket has api.socket_mode (default 0660).
func TestSocketMode(t *testing.T) {
	a := newAvatar("rohan", 1, 4<<10)
	o := newBinOrigin(t, a)
	var got []string
	for _, mode := range []string{"", "0600"} {
		e := newEnv(t, o.Srv.URL)
		if mode != "" {
			e.api = fmt.Sprintf("socket_mode = %q", mode)
		}
		e.writeConfig()
		p := e.Start()
		fi, err := os.Stat(e.Sock)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o660)
		if mode == "0600" {
			want = 0o600
		}
		if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != want {
			t.Errorf("socket mode %v, want socket %v", fi.Mode(), want)
		}
		got = append(got, fmt.Sprintf("%#o", fi.Mode().Perm()))
		p.Stop()
	}
	secTable.add(t, "socket_mode unset, then \"0600\"", "socket created with mode "+strings.Join(got, ", then "))
}

// TestPeerCredentials: a client running as another uid reaches the socket
// (opened to 0666 by the test) and is refused by the peer-credential check, unless
// api.allowed_uids names it. The overflow uid 65534 (what every unmapped
// user appears as) is refused by the config, so the test uses 4242.
func TestPeerCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		secTable.add(t, "a client as uid 4242", "skipped: needs root to run a child as another uid")
		t.Skip("needs root to run a client as another uid (SysProcAttr.Credential)")
	}
	// The other uid must be able to run the binary and reach the socket.
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	a := newAvatar("rohan", 1, 4<<10)
	o := newBinOrigin(t, a)
	const other = 4242
	run := func(allowed bool) (string, int) {
		e := newEnv(t, o.Srv.URL)
		if err := os.Chmod(e.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if allowed {
			e.api = fmt.Sprintf("allowed_uids = [%d]", other)
		}
		e.writeConfig()
		p := e.Start()
		defer p.Stop()
		// The config refuses a world-writable socket; the test opens it up
		// so that the peer-credential check is what stands in the way.
		if err := os.Chmod(e.Sock, 0o666); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "--socket", e.Sock, "--json", "stats")
		cmd.Env = testkit.CleanEnv()
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: other, Gid: other}}
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	// The overflow uid cannot be admitted: serve refuses the config.
	over := newEnv(t, o.Srv.URL)
	over.api = "allowed_uids = [65534]"
	over.writeConfig()
	po := over.Spawn()
	overflow := over.exitedOrHealthy(po)
	const overMsg = "65534 is the overflow user ID"
	if !strings.Contains(overflow, "serve exited") || !strings.Contains(po.Stderr.String(), overMsg) {
		t.Errorf("allowed_uids = [65534]: %s; want serve to exit naming %q\n%s", overflow, overMsg, po.Stderr.String())
	}
	out, code := run(false)
	if code == 0 || !strings.Contains(out, "forbidden") && !strings.Contains(out, "not allowed") {
		t.Errorf("a client as uid %d: exit %d, output %q; want a refusal (forbidden)", other, code, out)
	}
	refused := fmt.Sprintf("exit %d: %s", code, strings.TrimSpace(firstLine(out)))
	out, code = run(true)
	if code != 0 {
		t.Errorf("a client as uid %d listed in allowed_uids: exit %d, output %q", other, code, out)
	}
	secTable.add(t, "`assetd stats` as uid 4242 (SysProcAttr.Credential) on the socket chmod-ed to 0666 by the test (the config refuses socket_mode 0666); then with allowed_uids = [4242]; `assetd serve` with allowed_uids = [65534]",
		fmt.Sprintf("refused by SO_PEERCRED (%s); admitted when listed (exit %d); overflow uid refused by the config (%s)", refused, code, overflow))
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

// TestTokenSecrecy: the session token, from the token file and from
// `assetd session set`, reaches the origin and nothing else: not the log
// (debug level), not load errors (even when the origin echoes it), not
// CLI errors, not /metrics, not ps output nor /proc cmdline and environ.
func TestTokenSecrecy(t *testing.T) {
	a := newAvatar("rohan", 1, 16<<10)
	b := newAvatar("mei", 2, 16<<10)
	o := newBinOrigin(t, a, b)
	secret1 := "tok1-" + randHex(16)
	secret2 := "tok2-" + randHex(16)
	o.SetToken(secret1)
	e := newEnv(t, o.Srv.URL)
	e.Write(e.Token, secret1+"\n")
	e.writeConfig()
	p := e.Start()
	c := e.Client()
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()

	var seen strings.Builder // every output the secrets must not be in
	last, err := e.load(ctx, c, "rohan")
	if err != nil || last.Type != apitype.EventCompleted {
		t.Fatalf("load with the file's token: %v %+v", err, last.Error)
	}
	if !slices.Contains(o.Auths(), "Bearer "+secret1) {
		t.Fatal("the origin never saw the token")
	}

	// The origin moves to a token the daemon lacks and echoes what it got.
	o.SetToken(secret2)
	last, err = e.load(ctx, c, "mei")
	if err != nil || last.Error == nil || last.Error.Code != errcode.SessionTokenExpired {
		t.Fatalf("load with a stale token: %v %+v", err, last)
	}
	raw, _ := json.Marshal(last)
	seen.Write(raw)
	out, errOut, code := e.CLI("get", "mei")
	seen.WriteString(out + errOut)
	out, errOut, _ = e.CLI("preload", "mei")
	seen.WriteString(out + errOut)
	if code == 0 {
		t.Error("assetd get of an uncached avatar succeeded")
	}

	// A token given through `assetd session set` on stdin; ps runs while
	// the command waits for it.
	cmd := exec.Command(bin, "--socket", e.Sock, "session", "set")
	cmd.Env = testkit.CleanEnv()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var setOut testkit.LogBuf
	cmd.Stdout, cmd.Stderr = &setOut, &setOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ps, err := exec.Command("ps", "auxww").CombinedOutput()
	if err != nil {
		t.Logf("ps: %v (searching /proc only)", err)
	}
	seen.Write(ps)
	io.WriteString(stdin, secret2+"\n")
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("assetd session set: %v: %s", err, setOut.String())
	}
	seen.WriteString(setOut.String())
	last, err = e.load(ctx, c, "mei")
	if err != nil || last.Type != apitype.EventCompleted {
		t.Fatalf("load after session set: %v %+v", err, last.Error)
	}

	resp, err := c.Get("http://assetd/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	seen.Write(metrics)
	for _, f := range []string{"cmdline", "environ"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", p.Pid(), f))
		if err != nil {
			t.Fatal(err)
		}
		seen.Write(b)
	}
	ps, _ = exec.Command("ps", "-eo", "pid,args").CombinedOutput()
	seen.Write(ps)
	p.Stop()
	seen.WriteString(p.Stderr.String())
	if !strings.Contains(p.Stderr.String(), "level=DEBUG") {
		t.Error("the daemon's log has no debug lines: the search proves little")
	}
	for _, s := range []string{secret1, secret2} {
		if i := strings.Index(seen.String(), s); i >= 0 {
			t.Errorf("the token %s appears: ...%s...", s[:4], seen.String()[max(0, i-200):min(len(seen.String()), i+100)])
		}
	}
	secTable.add(t, "token from a token file, then from `assetd session set` (stdin); the origin echoes the Authorization header it is sent in its 401 error message",
		fmt.Sprintf("neither token found in %d KiB searched: the daemon's debug log, the failed load's error, `assetd get`/`preload` output, /metrics, `ps auxww` (taken while session set ran), `ps -eo args`, /proc/PID/cmdline and environ",
			seen.Len()/1024))
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TestNoFileOutsideStore: manifests that name files outside the store
// (../ paths, absolute paths, backslashes, file:// and climbing asset
// URLs) are refused, and nothing appears outside store.dir: the whole tree
// around it is compared before and after, and /tmp is searched for the
// marker names.
func TestNoFileOutsideStore(t *testing.T) {
	marker := "evil-" + randHex(6)
	good := newAvatar("good", 3, 8<<10)
	blob := good.Assets[0]
	hostile := map[string]string{ // avatar ID -> one asset (raw JSON)
		"dotdot":    fmt.Sprintf(`{"path":"../../../../%s","size":%d,"sha256":%q}`, marker, len(blob.Data), blob.SHA256),
		"midclimb":  fmt.Sprintf(`{"path":"a/../../%s","size":%d,"sha256":%q}`, marker, len(blob.Data), blob.SHA256),
		"absolute":  fmt.Sprintf(`{"path":"/tmp/%s","size":%d,"sha256":%q}`, marker, len(blob.Data), blob.SHA256),
		"backslash": fmt.Sprintf(`{"path":"..\\..\\%s","size":%d,"sha256":%q}`, marker, len(blob.Data), blob.SHA256),
		"dot":       fmt.Sprintf(`{"path":"./%s","size":%d,"sha256":%q}`, marker, len(blob.Data), blob.SHA256),
		"nul":       fmt.Sprintf(`{"path":"%s\u0000x","size":%d,"sha256":%q}`, marker, len(blob.Data), blob.SHA256),
		"fileurl":   fmt.Sprintf(`{"path":"%s","size":%d,"sha256":%q,"url":"file:///tmp/%s"}`, marker, len(blob.Data), blob.SHA256, marker),
		"digest":    fmt.Sprintf(`{"path":"%s","size":%d,"sha256":"../../../%s"}`, marker, len(blob.Data), marker),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/avatars/{id}/manifest", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		asset, ok := hostile[id]
		if id == "relurl" {
			asset, ok = fmt.Sprintf(`{"path":"%s","size":%d,"sha256":%q,"url":"../../../../../%s"}`, marker, len(blob.Data), blob.SHA256, marker), true
		}
		if !ok {
			jsonError(w, http.StatusNotFound, "avatarIDUnrecognized")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"schema":1,"avatarId":%q,"version":"1","assets":[%s]}`, id, asset)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// Any blob URL gets the good bytes: a climbing URL must still not
		// put a file anywhere but the store.
		w.Write(blob.Data)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	e := newEnv(t, srv.URL)
	e.writeConfig()
	before := tree(t, e.Dir)
	p := e.Start()
	c := e.Client()
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var refused []string
	ids := append(slices.Sorted(mapKeys(hostile)), "relurl")
	for _, id := range ids {
		last, err := e.load(ctx, c, id)
		if err != nil {
			t.Fatalf("load %s: %v", id, err)
		}
		switch {
		case id == "relurl":
			// A relative URL resolves on the origin's host: harmless, the
			// file is stored by its digest.
			if last.Type != apitype.EventCompleted {
				t.Errorf("relurl: %+v", last.Error)
			}
		case last.Error == nil:
			t.Errorf("%s: the hostile manifest was accepted", id)
		default:
			refused = append(refused, fmt.Sprintf("%s: %s/%s", id, last.Error.Code, last.Error.Reason))
		}
	}
	// Invalid IDs through the API.
	for _, id := range []string{"..%2F..%2Fx", "%2e%2e", ".hidden"} {
		code, _ := testkit.Do(c, "POST", "/v1/avatars/"+id+"/load", nil, nil)
		if code != 400 {
			t.Errorf("load of ID %q: status %d, want 400", id, code)
		}
	}
	p.Stop()

	after := tree(t, e.Dir)
	var outside []string
	for path := range after {
		if _, ok := before[path]; ok {
			continue
		}
		if !inDir(path, e.State) && !inDir(path, filepath.Dir(e.Sock)) {
			outside = append(outside, path)
		}
	}
	for path, info := range after {
		if strings.Contains(path, marker) && !inDir(path, e.State) {
			outside = append(outside, path+" ("+info+")")
		}
	}
	// The absolute and climbing targets, and anything with the marker in /tmp.
	filepath.WalkDir(os.TempDir(), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fs.SkipDir
		}
		if strings.Count(path, string(filepath.Separator)) > 5 && d.IsDir() {
			return fs.SkipDir
		}
		if strings.Contains(d.Name(), marker) && !inDir(path, e.State) {
			outside = append(outside, path)
		}
		return nil
	})
	for _, f := range outside {
		t.Errorf("a file outside store.dir: %s", f)
	}
	secTable.add(t, fmt.Sprintf("hostile manifests through the daemon: %d asset paths or URLs aiming outside store.dir, and IDs with encoded ../", len(hostile)+1),
		fmt.Sprintf("refused: %s; the relative URL resolved on the origin and was stored by digest; %d files outside store.dir (tree around it compared before/after, /tmp searched for the marker)",
			strings.Join(refused, ", "), len(outside)))
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func inDir(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+string(filepath.Separator))
}

// tree maps every path under root to its mode and size.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err == nil {
			m[path] = fmt.Sprintf("%v %d", info.Mode(), info.Size())
		}
		return nil
	})
	return m
}

// refusingTransport fails every request and records where it would have
// gone, so that a test proves nothing is dialed.
type refusingTransport struct {
	mu    sync.Mutex
	hosts []string
	next  http.RoundTripper
}

func (rt *refusingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.hosts = append(rt.hosts, r.URL.Host)
	rt.mu.Unlock()
	if strings.HasPrefix(r.URL.Host, "127.0.0.1:") {
		return rt.next.RoundTrip(r)
	}
	return nil, errors.New("the test transport refuses " + r.URL.Host)
}

// TestInsecureOrigin: plain http to a non-loopback origin (TEST-NET
// 192.0.2.1, never dialed) is refused by the config, by fetch.New, for an
// asset URL and for a redirect, before any request leaves; allow_insecure
// lets the config through.
func TestInsecureOrigin(t *testing.T) {
	const testNet = "http://192.0.2.1"
	var results []string

	// The daemon's config: serve refuses to start (exit 2, before any dial).
	e := newEnv(t, testNet)
	e.writeConfig()
	cmd := exec.Command(bin, "serve", "--config", e.Config)
	cmd.Env = testkit.CleanEnv()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "plain http") {
		t.Errorf("serve with origin.url %s: %v, output %q; want exit 2 naming plain http", testNet, err, out)
	} else {
		results = append(results, "`assetd serve` exits 2 on the config")
	}
	if err := config.CheckOriginURL(testNet, true); err != nil {
		t.Errorf("allow_insecure: %v", err)
	}
	e.origin = "allow_insecure = true"
	e.writeConfig()
	if out, err := exec.Command(bin, "serve", "--config", e.Config, "--print-config").CombinedOutput(); err != nil {
		t.Errorf("serve --print-config with allow_insecure: %v: %s", err, out)
	} else {
		results = append(results, "accepted with allow_insecure = true (--print-config, nothing dialed)")
	}

	// fetch.New, for the base URL and for a mirror.
	for _, cfg := range []fetch.Config{{BaseURL: testNet}, {BaseURL: "https://127.0.0.1:1", Mirrors: []string{testNet}}} {
		_, err := fetch.New(cfg)
		if e := errs.From(err); e == nil || e.Reason != errcode.ReasonInsecure {
			t.Errorf("fetch.New(%+v): %v, want reason %s", cfg, err, errcode.ReasonInsecure)
		}
	}
	results = append(results, "fetch.New refuses it as origin.url and as a mirror (insecureOrigin)")

	// An asset URL and a redirect to it, from a loopback origin.
	blob := []byte("asset bytes")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/avatars/byurl/manifest", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"schema":1,"avatarId":"byurl","version":"1","assets":[{"path":"a","size":%d,"sha256":%q,"url":"%s/blob"}]}`, len(blob), testkit.Sum(blob), testNet)
	})
	mux.HandleFunc("GET /v1/avatars/redirect/manifest", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"schema":1,"avatarId":"redirect","version":"1","assets":[{"path":"a","size":%d,"sha256":%q}]}`, len(blob), testkit.Sum(blob))
	})
	mux.HandleFunc("GET /v1/blobs/sha256/{d}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, testNet+"/blob", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	rt := &refusingTransport{next: http.DefaultTransport}
	f, err := fetch.New(fetch.Config{BaseURL: srv.URL, Transport: rt, MaxRetries: 1,
		RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := store.Open(filepath.Join(t.TempDir(), "store"), store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	m := manager.New(st, f, manager.Options{Logger: quiet()})
	for _, id := range []string{"byurl", "redirect"} {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		_, err := m.Load(ctx, id, manager.LoadOptions{})
		cancel()
		if e := errs.From(err); e == nil || e.Code != errcode.FailedToDownloadAvatarAssets || e.Reason != errcode.ReasonInsecure || e.Transient {
			t.Errorf("%s: %v, want failedToDownloadAvatarAssets reason %s, not transient", id, err, errcode.ReasonInsecure)
		}
	}
	m.Close()
	st.Close()
	rt.mu.Lock()
	for _, h := range rt.hosts {
		if !strings.HasPrefix(h, "127.0.0.1:") {
			t.Errorf("a request to %s reached the transport", h)
		}
	}
	rt.mu.Unlock()
	results = append(results, "an asset URL and a redirect to it fail insecureOrigin with no request to 192.0.2.1 reaching the transport")
	secTable.add(t, "plain http to 192.0.2.1 (TEST-NET, never dialed): as origin.url, mirror, asset url, redirect target",
		strings.Join(results, "; "))
}

// TestSignatures: with origin.trusted_keys set, the daemon loads manifests
// signed by a trusted key (`assetd keygen`, `assetd publish --sign`,
// `assetd origin`) and refuses unsigned, tampered and wrongly signed ones.
func TestSignatures(t *testing.T) {
	dir := t.TempDir()
	pub1 := keygen(t, filepath.Join(dir, "k1"))
	keygen(t, filepath.Join(dir, "k2"))
	out := filepath.Join(dir, "site")
	for _, x := range []struct{ id, key string }{
		{"signed", "k1.key"}, {"unsigned", ""}, {"wrongkey", "k2.key"}, {"tampered", "k1.key"},
	} {
		src := filepath.Join(dir, "src-"+x.id)
		if err := os.MkdirAll(filepath.Join(src, x.id), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, x.id, "model.bin"), []byte("avatar "+x.id), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"publish", src, out, "--version", "1"}
		if x.key != "" {
			args = append(args, "--sign", filepath.Join(dir, x.key))
		}
		if b, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("assetd %v: %v: %s", args, err, b)
		}
	}
	mf := filepath.Join(out, "v1", "avatars", "tampered", "manifest")
	doc, err := os.ReadFile(mf)
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(string(doc), `"version":"1"`, `"version":"2"`, 1)
	if tampered == string(doc) {
		t.Fatalf("no version to tamper with in %s", doc)
	}
	if err := os.WriteFile(mf, []byte(tampered), 0o644); err != nil {
		t.Fatal(err)
	}

	url := startOrigin(t, out)
	e := newEnv(t, url)
	e.origin = fmt.Sprintf("trusted_keys = [%q]", pub1)
	e.writeConfig()
	p := e.Start()
	c := e.Client()
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var results []string
	for _, id := range []string{"signed", "unsigned", "wrongkey", "tampered"} {
		last, err := e.load(ctx, c, id)
		if err != nil {
			t.Fatalf("load %s: %v", id, err)
		}
		if id == "signed" {
			if last.Type != apitype.EventCompleted {
				t.Errorf("signed: %+v", last.Error)
			}
			results = append(results, "signed: ready")
			continue
		}
		if last.Error == nil || last.Error.Code != errcode.FailedToFetchAvatarMetadata || last.Error.Reason != errcode.ReasonBadSignature {
			t.Errorf("%s: %+v, want failedToFetchAvatarMetadata/badSignature", id, last.Error)
			continue
		}
		results = append(results, id+": "+string(last.Error.Code)+"/"+last.Error.Reason)
	}
	p.Stop()
	secTable.add(t, "manifests from `assetd publish --sign` served by `assetd origin`, daemon with trusted_keys = [k1]: signed by k1, unsigned, signed by k2, signed by k1 then version edited",
		strings.Join(results, "; "))
}

// keygen runs `assetd keygen --out prefix` and returns the public key.
func keygen(t *testing.T, prefix string) string {
	t.Helper()
	if b, err := exec.Command(bin, "keygen", "--out", prefix).CombinedOutput(); err != nil {
		t.Fatalf("assetd keygen: %v: %s", err, b)
	}
	pub, err := os.ReadFile(prefix + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(pub))
}

func startOrigin(t *testing.T, root string) string {
	return testkit.StartOriginCmd(t, root, waitLimit)
}

// TestImportConfusedDeputy: `assetd import` must not let a caller have
// the daemon read what the caller could not. The client reads the files
// with its own rights and streams them; the daemon opens no path of the
// caller's. Here a client running as uid 4242 (admitted by allowed_uids)
// tries a root-only directory (0700, file 0600) and a folder of its own
// holding another user's 0600 file: both fail on the client's side, and
// nothing is stored. Its own folder, with a 0600 file of its own, imports,
// and the copies are 0440 with the daemon's group: uid 4242, not in that
// group, cannot read them back, nor can any other user outside it.
func TestImportConfusedDeputy(t *testing.T) {
	const what = "`assetd import` as uid 4242 (in allowed_uids) of a root-only directory (0700, file 0600); of its own folder holding root's 0600 file; of its own folder with its own 0600 file, then reading the copies as uid 4242"
	if os.Geteuid() != 0 {
		secTable.add(t, what, "skipped: needs root")
		t.Skip("needs root to run a client as another uid")
	}
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	const other = 4242
	o := newBinOrigin(t)
	e := newEnv(t, o.Srv.URL)
	if err := os.Chmod(e.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mkdir := func(name string, mode os.FileMode, uid int) string {
		p := filepath.Join(e.Dir, name)
		if err := os.Mkdir(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write := func(p, data string, uid int) {
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	marker := "root-only-" + randHex(8)
	secret := mkdir("secret", 0o700, 0)
	write(filepath.Join(secret, "session-token"), marker, 0)
	mixed := mkdir("mixed", 0o755, other)
	write(filepath.Join(mixed, "mine.bin"), "mine", other)
	write(filepath.Join(mixed, "roots.bin"), marker, 0)
	mine := mkdir("mine", 0o700, other)
	own := "own-private-" + randHex(8)
	write(filepath.Join(mine, "private.bin"), own, other)

	e.api = fmt.Sprintf("allowed_uids = [%d]", other)
	e.writeConfig()
	p := e.Start()
	defer p.Stop()
	if err := os.Chmod(e.Sock, 0o666); err != nil {
		t.Fatal(err)
	}
	asOther := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = testkit.CleanEnv()
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: other, Gid: other}}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	if out, code := asOther("--socket", e.Sock, "version"); code != 0 {
		t.Fatalf("the client cannot run as uid %d: %s", other, out)
	}
	var problems, results []string
	refused := func(id, dir, unreadable string) {
		out, code := asOther("--socket", e.Sock, "import", id, dir)
		line := strings.TrimSpace(firstLine(out))
		results = append(results, fmt.Sprintf("%s: exit %d: %s", filepath.Base(dir), code, line))
		if code != 2 || !strings.Contains(out, "cannot read "+unreadable) || !strings.Contains(out, "permission denied") {
			problems = append(problems, fmt.Sprintf("import of %s as uid %d: exit %d, %q; want exit 2 naming %s (permission denied)", dir, other, code, out, unreadable))
		}
	}
	refused("leak", secret, secret)
	refused("mixed", mixed, filepath.Join(mixed, "roots.bin"))
	c := e.Client()
	defer c.CloseIdleConnections()
	var list apitype.List
	if code, err := testkit.Do(c, "GET", "/v1/avatars", nil, &list); code != 200 || err != nil || len(list.Avatars) != 0 {
		problems = append(problems, fmt.Sprintf("after the refused imports the cache lists %d avatars (%d, %v)", len(list.Avatars), code, err))
	}

	out, code := asOther("--socket", e.Sock, "--json", "import", "mine", mine)
	var av apitype.Avatar
	if code != 0 || json.Unmarshal([]byte(out), &av) != nil || len(av.Assets) != 1 {
		t.Fatalf("import of its own folder as uid %d: exit %d, %s", other, code, out)
	}
	lp := av.Assets[0].LocalPath
	fi, err := os.Stat(lp)
	if err != nil {
		t.Fatal(err)
	}
	gid := fi.Sys().(*syscall.Stat_t).Gid
	if fi.Mode().Perm() != 0o440 || gid != uint32(os.Getegid()) {
		problems = append(problems, fmt.Sprintf("imported blob %s is %v, group %d; want 0440, the daemon's group %d", lp, fi.Mode().Perm(), gid, os.Getegid()))
	}
	cat := exec.Command("cat", lp)
	cat.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: other, Gid: other}}
	if got, err := cat.Output(); err == nil {
		problems = append(problems, fmt.Sprintf("uid %d, outside the daemon's group, read the imported copy (%q)", other, got))
	}
	results = append(results, fmt.Sprintf("mine: exit 0; the copy is %v, group %d (the daemon's), unreadable to uid %d", fi.Mode().Perm(), gid, other))
	secTable.add(t, what, strings.Join(results, "; "))
	for _, p := range problems {
		t.Error(p)
	}
}

// TestBadTokenSecrecy: a malformed token (a space or a control character
// inside) is refused without being quoted: not by `assetd serve` reading
// the token file, nor by `assetd session set`, nor in the daemon's log.
func TestBadTokenSecrecy(t *testing.T) {
	o := newBinOrigin(t, newAvatar("rohan0", 5, 4<<10), newAvatar("rohan1", 6, 4<<10))
	e := newEnv(t, o.Srv.URL)
	halfA, halfB := "bad1-"+randHex(8), "bad2-"+randHex(8)
	e.Write(e.Token, halfA+" "+halfB+"\n")
	e.writeConfig()
	var seen strings.Builder
	p := e.Spawn()
	fileOutcome := e.exitedOrHealthy(p)
	seen.WriteString(p.Stderr.String())

	// A daemon with a good token, then bad tokens through session set.
	select {
	case <-p.Done:
	default:
		p.Stop()
	}
	good := "good-" + randHex(8)
	o.SetToken(good)
	e.Write(e.Token, good+"\n")
	p2 := e.Start()
	for _, bad := range []string{halfA + " " + halfB, halfA + "\x01" + halfB, halfA + "\n" + halfB} {
		cmd := exec.Command(bin, "--socket", e.Sock, "session", "set")
		cmd.Env = testkit.CleanEnv()
		cmd.Stdin = strings.NewReader(bad)
		out, err := cmd.CombinedOutput()
		seen.Write(out)
		if err == nil {
			t.Errorf("session set accepted a token with %q inside", bad[len(halfA)])
		}
	}
	// The API itself, as curl would call it.
	c := e.Client()
	defer c.CloseIdleConnections()
	var apiStatus []string
	problem := ""
	for i, bad := range []string{halfA + "\x01" + halfB, halfA + "\n" + halfB} {
		body, _ := json.Marshal(map[string]string{"sessionToken": bad})
		var er apitype.ErrorResponse
		code, err := testkit.Do(c, "PUT", "/v1/session", strings.NewReader(string(body)), &er)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(er)
		seen.Write(raw)
		apiStatus = append(apiStatus, strconv.Itoa(code))
		if code != 400 {
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			last, err := e.load(ctx, c, fmt.Sprintf("rohan%d", i))
			cancel()
			what := fmt.Sprintf("%v", err)
			if err == nil && last.Error != nil {
				what = fmt.Sprintf("%s/%s transient=%v", last.Error.Code, last.Error.Reason, last.Error.Transient)
				raw, _ := json.Marshal(last)
				seen.Write(raw)
			} else if err == nil {
				what = string(last.Type)
			}
			problem = fmt.Sprintf("PUT /v1/session accepts a token with a control character or newline inside (status %d), which a token file and `session set` refuse; a load then ends %s", code, what)
		}
	}
	p2.Stop()
	seen.WriteString(p2.Stderr.String())
	for _, s := range []string{halfA, halfB} {
		if i := strings.Index(seen.String(), s); i >= 0 {
			t.Errorf("part of a bad token appears: ...%s...", seen.String()[max(0, i-200):min(seen.Len(), i+60)])
		}
	}
	result := fmt.Sprintf("token file: %s; `session set` refuses all three (exit 2); PUT /v1/session with a control character or newline: status %s; neither half of the bad tokens appears in the daemon's log, the commands' output or the API's answers (%d KiB searched)",
		fileOutcome, strings.Join(apiStatus, ", "), seen.Len()/1024)
	if problem != "" {
		result = problem + "; " + result
	}
	secTable.add(t, "a token file holding a token with a space inside; `assetd session set` given tokens with a space, a control character, two lines; PUT /v1/session with such tokens", result)
	if problem != "" {
		t.Error(problem)
	}
}

// exitedOrHealthy waits until p exits ("serve exited with CODE") or
// answers /v1/health ("serve kept running without it").
func (e *env) exitedOrHealthy(p *testkit.Proc) string {
	e.t.Helper()
	c := e.Client()
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(waitLimit)
	for {
		select {
		case <-p.Done:
			return fmt.Sprintf("serve exited (%v)", p.Err)
		default:
		}
		if code, _ := testkit.Do(c, "GET", "/v1/health", nil, nil); code == 200 {
			return "serve kept running without it"
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("assetd neither exited nor served within %v", waitLimit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKeyRevocation: a key removed from origin.trusted_keys revokes what
// it signed in the cache too. Two avatars published signed by k1 and
// cached; the config rewritten with trusted_keys = [k2] (the daemon's
// watcher reloads it): GET answers 409 untrusted for both, a load fails
// badSignature while the origin serves them signed by k1; one
// republished signed by k2 loads and is served again.
func TestKeyRevocation(t *testing.T) {
	dir := t.TempDir()
	pub1 := keygen(t, filepath.Join(dir, "k1"))
	pub2 := keygen(t, filepath.Join(dir, "k2"))
	out := filepath.Join(dir, "site")
	publishSigned := func(key string, ids ...string) {
		t.Helper()
		src := filepath.Join(dir, "src-"+key)
		for _, id := range ids {
			if err := os.MkdirAll(filepath.Join(src, id), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, id, "model.bin"), []byte("avatar "+id), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		args := []string{"publish", src, out, "--version", "1", "--sign", filepath.Join(dir, key)}
		if b, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("assetd %v: %v: %s", args, err, b)
		}
	}
	publishSigned("k1.key", "rohan", "mei")

	url := startOrigin(t, out)
	e := newEnv(t, url)
	e.origin = fmt.Sprintf("trusted_keys = [%q]", pub1)
	e.writeConfig()
	p := e.Start()
	defer p.Stop()
	c := e.Client()
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for _, id := range []string{"rohan", "mei"} {
		if last, err := e.load(ctx, c, id); err != nil || last.Type != apitype.EventCompleted {
			t.Fatalf("load %s under [k1]: %+v %v", id, last, err)
		}
	}

	e.origin = fmt.Sprintf("trusted_keys = [%q]", pub2)
	e.writeConfig()
	status := func(id string) (int, apitype.ErrorResponse) {
		var er apitype.ErrorResponse
		code, _ := testkit.Do(c, "GET", "/v1/avatars/"+id, nil, &er)
		return code, er
	}
	for {
		code1, _ := status("rohan")
		code2, _ := status("mei")
		if code1 == 409 && code2 == 409 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("GET after the keys changed: %d and %d, want 409", code1, code2)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var results []string
	if _, er := status("rohan"); er.Error.Code != errcode.AvatarAssetMissing || er.Error.Reason != errcode.ReasonUntrusted {
		t.Errorf("GET rohan: %+v, want avatarAssetMissing/untrusted", er.Error)
	} else {
		results = append(results, "GET: 409 "+string(er.Error.Code)+"/"+er.Error.Reason)
	}
	last, err := e.load(ctx, c, "mei")
	if err != nil || last.Error == nil || last.Error.Reason != errcode.ReasonBadSignature {
		t.Errorf("load mei, still signed by k1: %+v %v, want badSignature", last, err)
	} else {
		results = append(results, "load: "+string(last.Error.Code)+"/"+last.Error.Reason)
	}
	publishSigned("k2.key", "rohan")
	if last, err := e.load(ctx, c, "rohan"); err != nil || last.Type != apitype.EventCompleted {
		t.Errorf("load rohan signed by k2: %+v %v", last, err)
	}
	if code, _ := status("rohan"); code != 200 {
		t.Errorf("GET rohan after its load: %d", code)
	} else {
		results = append(results, "republished signed by k2: load ready, GET 200")
	}
	if code, _ := status("mei"); code != 409 {
		t.Errorf("GET mei: %d, want 409", code)
	}
	secTable.add(t, "two avatars cached signed by k1, then trusted_keys changed to [k2] in the config file (reloaded by the watcher); one republished signed by k2",
		strings.Join(results, "; "))
}
