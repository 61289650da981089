package testkit

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// EnvRequireTools set to 1 turns a test's skip for a missing tool (nginx,
// curl) into a failure: CI sets it, where `make tools` installed them.
const EnvRequireTools = "ASSETD_REQUIRE_TOOLS"

// LookTool finds a program the test needs, or skips the test naming the
// Debian package that has it (`make tools` installs it); it fails instead
// when ASSETD_REQUIRE_TOOLS=1.
func LookTool(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := "/usr/sbin/" + name; isExec(p) { // not in a user's PATH on Debian
		return p
	}
	msg := fmt.Sprintf("%s not found (install the Debian package %s; `make tools` does, as root)", name, pkg)
	if os.Getenv(EnvRequireTools) == "1" {
		t.Fatalf("%s, and %s=1", msg, EnvRequireTools)
	}
	t.Skip(msg)
	return ""
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// NginxSite is the server block docs/operations.md gives for serving an
// origin tree with nginx: the headers `assetd origin` sends (manifests
// revalidated every time, blobs immutable). %s is the tree's root.
const NginxSite = `root %s;
location /v1/avatars/ {
    default_type application/json;
    add_header Cache-Control "no-cache" always;
}
location /v1/blobs/ {
    default_type application/octet-stream;
    add_header Cache-Control "public, max-age=31536000, immutable" always;
}`

// StartNginx serves root with nginx (NginxSite) on a free loopback port
// until the test ends and returns its base URL. Its config, pid file, logs
// and temp dirs are in a temp dir; it runs in the foreground as a child.
// The test is skipped when nginx is missing (see LookTool).
func StartNginx(t testing.TB, root string, limit time.Duration) string {
	t.Helper()
	dir := t.TempDir()
	var url string
	RunNginx(t, dir, limit, func(port int) (string, func(<-chan struct{}, *error) error) {
		url = fmt.Sprintf("http://127.0.0.1:%d", port)
		server := fmt.Sprintf("server {\n        listen 127.0.0.1:%d;\n        %s\n    }", port, fmt.Sprintf(NginxSite, root))
		return server, func(done <-chan struct{}, waitErr *error) error {
			return waitHTTP(&http.Client{Timeout: time.Second}, url, done, waitErr, limit)
		}
	})
	return url
}

// NginxConf is a whole nginx.conf for a test: one process in the
// foreground, its pid file, logs and temp dirs in dir, and http holding
// the test's http-context directives.
func NginxConf(dir, http string) string {
	return fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 1024; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    %[2]s
}
`, dir, http)
}

// RunNginx runs nginx with NginxConf(dir, http) until the test ends and
// returns its pid (one process: master_process off). site
// is given a free loopback port and returns the http-context directives
// and a wait for nginx to serve (given a channel closed when nginx exits
// and its exit error); a port taken meanwhile is tried again with another.
// The configuration is checked with nginx -t first. The test is skipped
// when nginx is missing (see LookTool).
func RunNginx(t testing.TB, dir string, limit time.Duration, site func(port int) (http string, ready func(<-chan struct{}, *error) error)) int {
	t.Helper()
	nginx := LookTool(t, "nginx", "nginx-light")
	for attempt := 0; ; attempt++ {
		http, ready := site(freePort(t))
		path := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(path, []byte(NginxConf(dir, http)), 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", path}
		if out, err := exec.Command(nginx, append([]string{"-t", "-q"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("nginx -t refuses the configuration: %v\n%s\n%s", err, out, http)
		}
		cmd := exec.Command(nginx, args...)
		var logs LogBuf
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(done) }()
		err := ready(done, &waitErr)
		if err == nil {
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-done
			})
			return cmd.Process.Pid
		}
		cmd.Process.Kill()
		<-done
		errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		if attempt == 2 {
			t.Fatalf("nginx did not serve: %v\n%s%s", err, logs.String(), errLog)
		}
		t.Logf("nginx: %v; trying another port", err)
	}
}

// freePort is a loopback port free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitHTTP waits until url answers c, the process exits (done) or limit.
func waitHTTP(c *http.Client, url string, done <-chan struct{}, waitErr *error, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := c.Get(url + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("nginx exited: %v", *waitErr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %v: %v", limit, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
