package fetch

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/testkit"
)

// A remote origin cannot steer the daemon at this machine: asset URLs that
// point at loopback are refused before any connection is made.
func TestRemoteOriginCannotNameLoopback(t *testing.T) {
	c := newClient(t, testConfig("https://origin.invalid"))
	for _, u := range []string{
		"http://127.0.0.1:1/x",
		"https://127.0.0.1:1/x",
		"http://localhost:1/x",
		"https://[::1]:1/x",
	} {
		a := assetOf("a.bin", []byte("abc"))
		a.URL = u
		err := c.Download(ctxT(t), Blob{AvatarID: "a", Asset: a}, newSink(t), nil)
		if !errors.Is(err, &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Reason: errcode.ReasonInsecure}) {
			t.Errorf("%s: Download = %v, want insecureOrigin", u, err)
		}
	}
	if st := c.Stats(); st.Requests != 0 {
		t.Errorf("%d requests made", st.Requests)
	}
}

// A local origin may name local URLs (the demo and the tests do).
func TestLocalOriginMayNameLoopback(t *testing.T) {
	o := testkit.NewOrigin(t)
	data := []byte("local bytes")
	path := o.AddBlob(data)
	c := newClient(t, testConfig(o.URL()))
	a := assetOf("a.bin", data)
	a.URL = o.URL() + path
	if err := c.Download(ctxT(t), Blob{AvatarID: "a", Asset: a}, newSink(t), nil); err != nil {
		t.Fatal(err)
	}
}

// fakeDNS is a DNS server on 127.0.0.1 answering A and AAAA queries from
// a table (every other name: NXDOMAIN), and a resolver that asks only it.
func fakeDNS(t *testing.T, names map[string][]netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if reply := dnsReply(buf[:n], names); reply != nil {
				pc.WriteTo(reply, from)
			}
		}
	}()
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

// dnsReply answers the one question of query q.
func dnsReply(q []byte, names map[string][]netip.Addr) []byte {
	if len(q) < 12 {
		return nil
	}
	i, labels := 12, []string{}
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1:])
	question := q[12 : i+5]
	var answers [][]byte
	addrs, known := names[strings.ToLower(strings.Join(labels, "."))]
	for _, a := range addrs {
		if (qtype == 1) != a.Is4() || qtype != 1 && qtype != 28 {
			continue
		}
		rr := []byte{0xc0, 12, 0, byte(qtype), 0, 1, 0, 0, 0, 60, 0, byte(len(a.AsSlice()))}
		answers = append(answers, append(rr, a.AsSlice()...))
	}
	r := make([]byte, 12, 512)
	copy(r, q[:2])
	r[2], r[3] = 0x81, 0x80 // response, recursion desired and available
	if !known {
		r[3] |= 3 // NXDOMAIN
	}
	binary.BigEndian.PutUint16(r[4:], 1)
	binary.BigEndian.PutUint16(r[6:], uint16(len(answers)))
	r = append(r, question...)
	for _, a := range answers {
		r = append(r, a...)
	}
	return r
}

// connCounter is a blob server on 127.0.0.1 that counts the connections
// made to it.
type connCounter struct {
	*httptest.Server
	conns atomic.Int64
	port  string
}

func newConnCounter(t *testing.T, data []byte) *connCounter {
	c := &connCounter{}
	c.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(data)
	}))
	c.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.conns.Add(1)
		}
	}
	c.Start()
	t.Cleanup(c.Close)
	_, c.port, _ = net.SplitHostPort(c.Listener.Addr().String())
	return c
}

func wantLocalRefused(t *testing.T, what string, err error) {
	t.Helper()
	e := errs.From(err)
	if e == nil || e.Code != errcode.FailedToDownloadAvatarAssets || e.Reason != errcode.ReasonInsecure || e.Transient {
		t.Errorf("%s: Download = %v, want failedToDownloadAvatarAssets reason insecureOrigin, not transient", what, err)
	}
}

// Every spelling of this machine and of link-local addresses in a URL a
// remote origin names is refused with no connection made: literals in any
// form, localhost., a DNS name that resolves to 127.0.0.1 (caught by the
// dialer, on the address it would connect to), and a redirect to it.
// The operator's own hosts, and fetch.allow_local_targets, still reach it.
func TestRemoteOriginCannotReachLocalByAnyName(t *testing.T) {
	data := []byte("local secret")
	target := newConnCounter(t, data)
	o := testkit.NewOrigin(t) // the operator's origin, on 127.0.0.1 but configured by name
	_, oport, _ := net.SplitHostPort(strings.TrimPrefix(o.URL(), "http://"))
	loop := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	res := fakeDNS(t, map[string][]netip.Addr{"origin.test": loop, "loop.test": loop,
		"meta.test": {netip.MustParseAddr("169.254.169.254")}})
	o.Handle("GET /redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://loop.test:"+target.port+"/x", http.StatusFound)
	})
	originURL := "http://origin.test:" + oport
	cfg := testConfig(originURL)
	cfg.AllowInsecure, cfg.Resolver, cfg.MaxRetries = true, res, 0
	c := newClient(t, cfg)

	p := target.port
	for _, u := range []string{
		"http://0.0.0.0:" + p + "/x",
		"http://0.1.2.3:" + p + "/x",
		"http://[::]:" + p + "/x",
		"http://127.1:" + p + "/x",
		"http://2130706433:" + p + "/x",
		"http://0x7f.0.0.1:" + p + "/x",
		"http://localhost.:" + p + "/x",
		"http://LocalHost:" + p + "/x",
		"http://a.localhost:" + p + "/x",
		"http://[::ffff:127.0.0.1]:" + p + "/x",
		"http://169.254.169.254:" + p + "/x",
		"http://[fe80::1]:" + p + "/x",
		"http://loop.test:" + p + "/x",  // resolves to 127.0.0.1: the dialer refuses
		"http://loop.test.:" + p + "/x", // the same, absolute
		"http://meta.test:" + p + "/x",  // resolves to link-local
		originURL + "/redirect",         // the origin redirects to loop.test
	} {
		a := assetOf("a.bin", data)
		a.URL = u
		err := c.Download(ctxT(t), Blob{AvatarID: "a", Asset: a}, newSink(t), nil)
		wantLocalRefused(t, u, err)
	}
	if n := target.conns.Load(); n != 0 {
		t.Fatalf("the local target saw %d connections", n)
	}

	// The operator's origin is trusted as configured, though it resolves to
	// 127.0.0.1.
	a := assetOf("a.bin", data)
	a.URL = originURL + o.AddBlob(data)
	if err := c.Download(ctxT(t), Blob{AvatarID: "a", Asset: a}, newSink(t), nil); err != nil {
		t.Errorf("asset on the configured origin: %v", err)
	}

	// fetch.allow_local_targets lifts the rule: the same URL reaches the
	// listener, so the refusals above were the rule's.
	cfg.AllowLocalTargets = true
	open := newClient(t, cfg)
	a = assetOf("a.bin", data)
	a.URL = "http://loop.test:" + p + "/x"
	if err := open.Download(ctxT(t), Blob{AvatarID: "a", Asset: a}, newSink(t), nil); err != nil {
		t.Errorf("with AllowLocalTargets: %v", err)
	}
	if target.conns.Load() == 0 {
		t.Error("with AllowLocalTargets the target saw no connection")
	}
}

// A loopback origin.url may name loopback, not link-local.
func TestLocalOriginCannotNameLinkLocal(t *testing.T) {
	o := testkit.NewOrigin(t)
	res := fakeDNS(t, map[string][]netip.Addr{"meta.test": {netip.MustParseAddr("169.254.169.254")}})
	cfg := testConfig(o.URL())
	cfg.AllowInsecure, cfg.Resolver, cfg.MaxRetries = true, res, 0
	c := newClient(t, cfg)
	for _, u := range []string{"http://169.254.169.254/x", "http://meta.test/x"} {
		a := assetOf("a.bin", []byte("x"))
		a.URL = u
		wantLocalRefused(t, u, c.Download(ctxT(t), Blob{AvatarID: "a", Asset: a}, newSink(t), nil))
	}
}

// Through a proxy the dialer sees only the proxy, so the target's
// addresses are checked before the request: nothing reaches the proxy for
// a name that resolves to loopback, while a public name goes through it.
func TestLocalTargetThroughProxy(t *testing.T) {
	data := []byte("via proxy")
	target := newConnCounter(t, data)
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		w.Write(data) // a proxy that fetches anything: here, the asset
	}))
	t.Cleanup(proxy.Close)
	pu, _ := url.Parse(proxy.URL)
	res := fakeDNS(t, map[string][]netip.Addr{
		"loop.test":   {netip.MustParseAddr("127.0.0.1")},
		"mixed.test":  {netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("127.0.0.1")},
		"public.test": {netip.MustParseAddr("192.0.2.10")},
	})
	cfg := testConfig("https://origin.invalid")
	cfg.AllowInsecure, cfg.Resolver, cfg.MaxRetries = true, res, 0
	cfg.Proxy = func(*http.Request) (*url.URL, error) { return pu, nil }
	c := newClient(t, cfg)
	for _, u := range []string{
		"http://loop.test:" + target.port + "/x",
		"http://mixed.test:" + target.port + "/x",
		"http://localhost.:" + target.port + "/x",
	} {
		a := assetOf("a.bin", data)
		a.URL = u
		wantLocalRefused(t, u, c.Download(ctxT(t), Blob{AvatarID: "a", Asset: a}, newSink(t), nil))
	}
	if n, m := proxied.Load(), target.conns.Load(); n != 0 || m != 0 {
		t.Fatalf("%d requests reached the proxy, %d connections the target", n, m)
	}
	a := assetOf("a.bin", data)
	a.URL = "http://public.test/x"
	if err := c.Download(ctxT(t), Blob{AvatarID: "a", Asset: a}, newSink(t), nil); err != nil {
		t.Fatalf("public name through the proxy (on 127.0.0.1): %v", err)
	}
	if proxied.Load() != 1 {
		t.Errorf("the proxy saw %d requests, want 1", proxied.Load())
	}
}

func TestLiteralIP(t *testing.T) {
	for host, want := range map[string]string{
		"127.0.0.1": "127.0.0.1", "127.1": "127.0.0.1", "2130706433": "127.0.0.1",
		"0x7f.1": "127.0.0.1", "0177.0.0.1": "127.0.0.1", "127.0.1": "127.0.0.1",
		"0": "0.0.0.0", "::": "::", "fe80::1%eth0": "fe80::1", "10.1.2.3": "10.1.2.3",
		"example.com": "", "1.2.3.4.5": "", "256.1.1.1": "", "1.2.3.256": "", "4294967296": "",
		"08.1.1.1": "", "": "", "1..1": "",
	} {
		a, ok := literalIP(host)
		got := ""
		if ok {
			got = a.String()
		}
		if got != want {
			t.Errorf("literalIP(%q) = %q, want %q", host, got, want)
		}
	}
}
