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
	nginx := LookTool(t, "nginx", "nginx-light")
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    server {
        listen 127.0.0.1:%[2]d;
        %[3]s
    }
}
`, dir, port, fmt.Sprintf(NginxSite, root))
		path := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(nginx, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", path)
		var logs LogBuf
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(done) }()
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		err := waitHTTP(url, done, &waitErr, limit)
		if err == nil {
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-done
			})
			return url
		}
		cmd.Process.Kill()
		<-done
		errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		if attempt == 2 {
			t.Fatalf("nginx did not serve: %v\n%s%s", err, logs.String(), errLog)
		}
		t.Logf("nginx on port %d: %v; trying another port", port, err)
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

// waitHTTP waits until url answers, the process exits (done) or limit.
func waitHTTP(url string, done <-chan struct{}, waitErr *error, limit time.Duration) error {
	c := &http.Client{Timeout: time.Second}
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
