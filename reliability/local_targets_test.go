package reliability

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/testkit"
)

// TestLocalTargetsThroughProxy: the real daemon, with a remote-looking
// origin.url (http://origin.test, allow_insecure) reached through
// HTTP_PROXY on 127.0.0.1, loads avatars whose asset urls (or a redirect)
// name this machine or link-local addresses in every spelling. Each load
// fails insecureOrigin, not transient; a listener on 127.0.0.1 sees no
// connection and the proxy no request for those hosts, while an asset
// from the origin itself loads through the same proxy.
func TestLocalTargetsThroughProxy(t *testing.T) {
	blob := []byte("a secret of this machine")
	var conns atomic.Int64
	target := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(blob) }))
	target.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	target.Start()
	defer target.Close()
	_, p, _ := net.SplitHostPort(target.Listener.Addr().String())

	urls := map[string]string{
		"zeros": "http://0.0.0.0:" + p + "/x", "any6": "http://[::]:" + p + "/x",
		"short": "http://127.1:" + p + "/x", "decimal": "http://2130706433:" + p + "/x",
		"dotted": "http://localhost.:" + p + "/x", "mapped": "http://[::ffff:127.0.0.1]:" + p + "/x",
		"metadata": "http://169.254.169.254/latest/meta-data/",
	}
	var stray atomic.Int64 // proxy requests for anything but origin.test
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Host != "origin.test" {
			stray.Add(1)
			http.Error(w, "not proxied", http.StatusBadGateway)
			return
		}
		id, _ := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/v1/avatars/"), "/manifest")
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/blobs/"):
			w.Write(blob)
		case strings.HasPrefix(r.URL.Path, "/redirect"):
			http.Redirect(w, r, urls["short"], http.StatusFound)
		case id == "plain":
			fmt.Fprintf(w, `{"schema":1,"avatarId":"plain","version":"1","assets":[{"path":"a","size":%d,"sha256":%q}]}`, len(blob), testkit.Sum(blob))
		case id == "redirect":
			fmt.Fprintf(w, `{"schema":1,"avatarId":"redirect","version":"1","assets":[{"path":"a","size":%d,"sha256":%q,"url":"/redirect"}]}`, len(blob), testkit.Sum(blob))
		case urls[id] != "":
			fmt.Fprintf(w, `{"schema":1,"avatarId":%q,"version":"1","assets":[{"path":"a","size":%d,"sha256":%q,"url":%q}]}`, id, len(blob), testkit.Sum(blob), urls[id])
		default:
			http.NotFound(w, r)
		}
	}))
	defer proxy.Close()

	e := newEnv(t, "http://origin.test")
	e.origin = "allow_insecure = true"
	e.writeConfig()
	env := []string{"HTTP_PROXY=" + proxy.URL, "http_proxy=" + proxy.URL, "NO_PROXY=", "no_proxy="}
	e.WaitHealthy(e.Run(exec.Command(bin, "serve", "--config", e.Config), env...))
	c := e.Client()
	defer c.CloseIdleConnections()

	ids := []string{"redirect"}
	for id := range urls {
		ids = append(ids, id)
	}
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		ev, err := e.load(ctx, c, id)
		cancel()
		if err != nil || ev.Error == nil || ev.Error.Code != errcode.FailedToDownloadAvatarAssets ||
			ev.Error.Reason != errcode.ReasonInsecure || ev.Error.Transient {
			t.Errorf("%s (%s): %v %+v, want failed insecureOrigin, not transient", id, urls[id], err, ev.Error)
		}
	}
	if n, m := conns.Load(), stray.Load(); n != 0 || m != 0 {
		t.Errorf("the local listener saw %d connections, the proxy %d requests for other hosts", n, m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	ev, err := e.load(ctx, c, "plain")
	cancel()
	if err != nil || ev.Type != "completed" {
		t.Errorf("an asset of the origin through the proxy: %v %+v", err, ev.Error)
	}
	secTable.add(t, "HTTP_PROXY on 127.0.0.1, origin.url http://origin.test; asset urls 0.0.0.0, [::], 127.1, 2130706433, localhost., [::ffff:127.0.0.1], 169.254.169.254, and a redirect to 127.1",
		fmt.Sprintf("%d loads fail insecureOrigin (not transient); 0 connections to the listener on 127.0.0.1, 0 proxied requests for those hosts; the origin's own asset loads through the proxy", len(ids)))
}
