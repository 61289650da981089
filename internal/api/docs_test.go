package api_test

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/api/apitest"
)

// curlCmd is one documented curl line: the request it makes and the
// status its comment promises.
type curlCmd struct {
	line    string
	args    []string // after "curl", without the comment
	method  string
	target  string // path and query, as sent
	body    string
	header  http.Header
	status  int
	hasBody bool
}

// TestDocsCurlExamples runs every `curl --unix-socket "$SOCK"` line of
// docs/api.md against the server with a fake manager, through the Go
// client and, when curl is installed, through curl itself, and checks the
// status the line's comment documents.
func TestDocsCurlExamples(t *testing.T) {
	cmds := readCurlLines(t, "../../docs/api.md")
	if len(cmds) < 20 {
		t.Fatalf("only %d curl lines in docs/api.md", len(cmds))
	}
	fm := docsManager()
	ts := start(t, fm, api.Options{
		SetSession: func(token, appID string) error { return nil },
		Reload:     func(context.Context) error { return nil },
	})
	curl, _ := exec.LookPath("curl")
	if curl == "" {
		t.Log("curl not installed: requests go through the Go client only")
	}
	covered := map[string]bool{}
	for _, c := range cmds {
		t.Run(c.method+" "+c.target, func(t *testing.T) {
			var body io.Reader
			if c.hasBody {
				body = strings.NewReader(c.body)
			}
			status, hdr, b := ts.raw(t, c.method, c.target, body, c.header)
			if status != c.status || status >= 500 {
				t.Errorf("%s\nanswered %d, documented %d: %s", c.line, status, c.status, b)
			}
			checkKind(t, c, status, hdr, b)
			if curl != "" {
				if got := runCurl(t, curl, ts.sock, c); got != c.status {
					t.Errorf("%s\ncurl got %d, documented %d", c.line, got, c.status)
				}
			}
			path, _, _ := strings.Cut(c.target, "?")
			covered[c.method+" "+path] = true
		})
	}
	// Every route is documented with an example.
	for _, want := range []string{
		"GET /v1/health", "POST /v1/avatars/rohan/load", "GET /v1/avatars/rohan", "GET /v1/avatars",
		"DELETE /v1/avatars/rohan/load", "DELETE /v1/loads", "DELETE /v1/avatars/rohan", "DELETE /v1/avatars",
		"POST /v1/cache/lru", "GET /v1/avatars/rohan/size", "GET /v1/cache/stats", "POST /v1/avatars/rohan/verify",
		"PUT /v1/session", "GET /v1/events", "GET /metrics", "POST /v1/avatars/rohan/import",
		"PUT /v1/avatars/rohan/pin", "DELETE /v1/avatars/rohan/pin", "POST /v1/reload",
	} {
		if !covered[want] {
			t.Errorf("docs/api.md has no curl example of %s", want)
		}
	}
}

// checkKind checks the answer is of the documented kind: an error body
// for 4xx, NDJSON for streams, Prometheus text for /metrics, JSON else.
func checkKind(t *testing.T, c curlCmd, status int, hdr http.Header, b []byte) {
	t.Helper()
	ct := hdr.Get("Content-Type")
	switch {
	case status >= 400:
		errorBody(t, b)
	case status == http.StatusNoContent:
		if len(b) != 0 {
			t.Errorf("204 with a body %q", b)
		}
	case isStream(c, status):
		if ct != "application/x-ndjson" {
			t.Errorf("stream with Content-Type %q", ct)
		}
	case c.target == "/metrics":
		if !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("metrics with Content-Type %q", ct)
		}
	default:
		if ct != "application/json" || len(b) == 0 || (b[0] != '{' && b[0] != '[') {
			t.Errorf("Content-Type %q, body %q", ct, b)
		}
	}
}

func isStream(c curlCmd, status int) bool {
	path, query, _ := strings.Cut(c.target, "?")
	if path == "/v1/events" {
		return true
	}
	return c.method == http.MethodPost && strings.HasSuffix(path, "/load") && status == 200 && !strings.Contains(query, "wait=false")
}

func runCurl(t *testing.T, curl, sock string, c curlCmd) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := make([]string, 0, len(c.args)+6)
	for _, a := range c.args {
		args = append(args, strings.ReplaceAll(a, "$SOCK", sock))
	}
	args = append(args, "-s", "-o", os.DevNull, "-w", "%{http_code}")
	cmd := exec.CommandContext(ctx, curl, args...)
	cmd.Dir = t.TempDir()
	for name, body := range docFiles {
		if err := os.WriteFile(filepath.Join(cmd.Dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("curl %q: %v", args, err)
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

// docFiles are the files the examples send with --data-binary @FILE.
var docFiles = map[string]string{"rohan.tar": docTar()}

func docTar() string {
	var b strings.Builder
	tw := tar.NewWriter(&b)
	for _, f := range []struct{ name, data string }{{"./model.splat", "splat"}, {"./anim/talk.bin", "talk"}} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Size: int64(len(f.data)), Mode: 0o644})
		tw.Write([]byte(f.data))
	}
	tw.Close()
	return b.String()
}

// docsManager answers as the examples say: rohan is cached and loads;
// nobody is not cached.
func docsManager() *apitest.Manager {
	fm := &apitest.Manager{Quiet: true}
	fm.RetrieveFn = func(id string) (*apitype.Avatar, error) {
		if id == "rohan" {
			return sampleAvatar(id), nil
		}
		return nil, apitest.NotCached(id)
	}
	fm.LoadFn = func(_ context.Context, id string, o api.LoadOptions) (*apitype.Avatar, error) {
		o.Progress(progress(id, 0, 8123456))
		return sampleAvatar(id), nil
	}
	fm.StartFn = func(id string, o api.LoadOptions) (apitype.Load, *apitype.Avatar, error) {
		return apitype.Load{AvatarID: id, State: apitype.StateDownloading, BytesTotal: 8123456}, nil, nil
	}
	fm.ClearFn = func(string) error { return nil }
	fm.CacheSizeFn = func(string) (int64, error) { return 8123456, nil }
	fm.VerifyFn = func(_ context.Context, id string) (apitype.VerifyResult, error) {
		return apitype.VerifyResult{AvatarID: id, State: apitype.StateReady, Checked: 2}, nil
	}
	fm.SetPinnedFn = func(string, bool) error { return nil }
	fm.ImportFn = func(_ context.Context, id string, r io.Reader, _ api.ImportOptions) (*apitype.Avatar, error) {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return nil, err
		}
		return sampleAvatar(id), nil
	}
	fm.SubscribeFn = func() (<-chan apitype.Event, func()) {
		ch := make(chan apitype.Event, 2)
		ch <- progress("rohan", 1, 2)
		ch <- apitype.Event{Type: apitype.EventState, AvatarID: "rohan", State: apitype.StateReady}
		close(ch) // the stream ends, so that the example ends
		return ch, func() {}
	}
	return fm
}

func readCurlLines(t *testing.T, path string) []curlCmd {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cmds []curlCmd
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, `curl --unix-socket "$SOCK"`) {
			continue
		}
		c, err := parseCurl(line)
		if err != nil {
			t.Errorf("docs/api.md: %s: %v", line, err)
			continue
		}
		cmds = append(cmds, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cmds
}

// parseCurl understands the curl options the docs use; any other is an
// error, so that the docs stay within what this test checks.
func parseCurl(line string) (curlCmd, error) {
	c := curlCmd{line: line, header: http.Header{}}
	words, comment, err := shellWords(line)
	if err != nil {
		return c, err
	}
	if c.status, err = strconv.Atoi(strings.TrimSpace(comment)); err != nil {
		return c, fmt.Errorf("the line must end with the status as a comment, like # 200")
	}
	c.args = words[1:]
	for i := 1; i < len(words); i++ {
		w := words[i]
		arg := func() (string, error) {
			if i+1 >= len(words) {
				return "", fmt.Errorf("%s needs a value", w)
			}
			i++
			return words[i], nil
		}
		var v string
		switch w {
		case "--unix-socket":
			_, err = arg()
		case "-X", "--request":
			c.method, err = arg()
		case "-d", "--data", "--data-raw":
			c.body, err = arg()
			c.hasBody = true
		case "--data-binary":
			// @FILE: a file the test writes (docFiles) in curl's directory.
			if v, err = arg(); err == nil {
				name, _ := strings.CutPrefix(v, "@")
				var ok bool
				if c.body, ok = docFiles[name]; !ok {
					return c, fmt.Errorf("--data-binary %q: docFiles has no such file", v)
				}
				c.hasBody = true
			}
		case "-H", "--header":
			if v, err = arg(); err == nil {
				k, hv, ok := strings.Cut(v, ":")
				if !ok {
					return c, fmt.Errorf("header %q", v)
				}
				c.header.Add(strings.TrimSpace(k), strings.TrimSpace(hv))
			}
		case "-N", "--no-buffer", "-s", "-S", "-sS", "-i", "--path-as-is":
		default:
			if !strings.HasPrefix(w, "http://assetd/") {
				return c, fmt.Errorf("unknown curl option %q", w)
			}
			c.target = strings.TrimPrefix(w, "http://assetd")
		}
		if err != nil {
			return c, err
		}
	}
	switch {
	case c.target == "":
		return c, fmt.Errorf("no http://assetd/ URL")
	case c.method == "" && c.hasBody:
		c.method = http.MethodPost
	case c.method == "":
		c.method = http.MethodGet
	}
	return c, nil
}

// shellWords splits a command line as sh would (quotes and backslashes,
// no expansion) and returns the text of a trailing # comment.
func shellWords(s string) (words []string, comment string, err error) {
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case ch == '#' && !inWord:
			return words, s[i+1:], nil
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, "", fmt.Errorf("unterminated '")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, "", fmt.Errorf("unterminated \"")
			}
			inWord = true
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, "", nil
}
