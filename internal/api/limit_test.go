package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/api/apitest"
)

// childConnsEnv makes the test child open connections and hold them:
// "PATH:N" sends GET PATH on N connections of their own and prints, per
// connection, its status and error reason; then it waits for its stdin
// to close.
const childConnsEnv = "ASSETD_API_TEST_CHILD_CONNS"

func runConnsChild(sock, spec string) int {
	path, n, _ := strings.Cut(spec, ":")
	count, _ := strconv.Atoi(n)
	var held []net.Conn
	for range count {
		c, err := net.Dial("unix", sock)
		if err != nil {
			fmt.Println("dial", err)
			continue
		}
		held = append(held, c)
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: assetd\r\n\r\n", path)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			fmt.Println("read", err)
			continue
		}
		reason := ""
		if resp.StatusCode != 200 {
			var env errcode.Envelope
			body, _ := io.ReadAll(resp.Body)
			json.Unmarshal(body, &env)
			reason = env.Error.Reason
		}
		fmt.Println(resp.StatusCode, reason)
	}
	io.Copy(io.Discard, os.Stdin)
	for _, c := range held {
		c.Close()
	}
	return 0
}

// connsChild runs the test binary as uid 4242 holding connections (see
// runConnsChild); it returns the lines it printed, and a func that lets
// it go and waits for it.
func connsChild(t *testing.T, bin, sock, spec string, n int) ([]string, func()) {
	t.Helper()
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = []string{childEnv + "=" + sock, childConnsEnv + "=" + spec}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 4242, Gid: 4242}}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	release := func() {
		stdin.Close()
		cmd.Wait()
	}
	var lines []string
	sc := bufio.NewScanner(stdout)
	for len(lines) < n && sc.Scan() {
		lines = append(lines, strings.TrimSpace(sc.Text()))
	}
	if len(lines) < n {
		release()
		t.Fatalf("the child printed %q", lines)
	}
	return lines, release
}

// TestConnectionCaps: a caller other than root gets 429 (reason
// tooManyConnections) past its connection cap, and (tooManySubscribers)
// past its cap on event streams; root is served all along; a closed
// connection gives its place back.
func TestConnectionCaps(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("skipped: running a client under another uid needs root")
	}
	dir, err := os.MkdirTemp("", "assetd-api-caps-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "api.test")
	copyFile(t, bin)
	events := make(chan apitype.Event)
	fm := &apitest.Manager{SubscribeFn: func() (<-chan apitype.Event, func()) { return events, func() {} }}
	ts := startIn(t, dir, fm, api.Options{AllowedUIDs: []int{4242}, MaxConnections: 16,
		MaxConnectionsPerUID: 4, MaxSubscribersPerUID: 2})
	if err := os.Chmod(ts.sock, 0o666); err != nil {
		t.Fatal(err)
	}

	got, release := connsChild(t, bin, ts.sock, "/v1/health:6", 6)
	want := []string{"200", "200", "200", "200", "429 tooManyConnections", "429 tooManyConnections"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("6 connections of uid 4242 under a cap of 4: %q, want %q", got, want)
	}
	// Root is served past the caps.
	for range 20 {
		if _, err := ts.c.Health(testCtx(t)); err != nil {
			t.Fatalf("root refused while uid 4242 holds its cap: %v", err)
		}
	}
	release()

	// The places came back; two event streams, not three.
	got, release = connsChild(t, bin, ts.sock, "/v1/events:3", 3)
	defer release()
	want = []string{"200", "200", "429 tooManySubscribers"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("3 event streams of uid 4242 under a cap of 2: %q, want %q", got, want)
	}
}

// TestUnreadSubscriberDropped: an event stream whose caller reads nothing
// is closed after the read timeout, though no event comes; one that reads
// stays.
func TestUnreadSubscriberDropped(t *testing.T) {
	var open atomic.Int32
	fm := &apitest.Manager{SubscribeFn: func() (<-chan apitype.Event, func()) {
		open.Add(1)
		return make(chan apitype.Event), func() { open.Add(-1) }
	}}
	ts := start(t, fm, api.Options{SubscriberReadTimeout: 300 * time.Millisecond})

	// A reader: its client reads the headers and waits for events.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := ts.c.Do(ctx, "GET", "/v1/events", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	// A caller that sends the request and never reads.
	c, err := net.Dial("unix", ts.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /v1/events HTTP/1.1\r\nHost: assetd\r\n\r\n")
	waitUntil(t, "both streams to open", func() bool { return open.Load() == 2 })
	waitUntil(t, "the unread stream to close", func() bool { return open.Load() == 1 })
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("the dropped stream's connection was not closed: %v", err)
	}
	// The reading one outlives several timeouts.
	time.Sleep(time.Second)
	if open.Load() != 1 {
		t.Error("the stream being read was closed")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
