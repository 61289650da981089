package fetch

import (
	"errors"
	"testing"

	"github.com/assetd/assetd/internal/errs"
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
		if !errors.Is(err, &errs.Error{Code: errs.FailedToDownloadAvatarAssets, Reason: errs.ReasonInsecure}) {
			t.Errorf("%s: Download = %v, want insecureOrigin", u, err)
		}
	}
	if st := c.Stats(); st.Requests != 0 {
		t.Errorf("%d requests made", st.Requests)
	}
}

// A local origin may name local URLs (the demo and the tests do).
func TestLocalOriginMayNameLoopback(t *testing.T) {
	o := newOrigin(t)
	data := []byte("local bytes")
	path := o.blob(data)
	c := newClient(t, testConfig(o.URL))
	a := assetOf("a.bin", data)
	a.URL = o.URL + path
	if err := c.Download(ctxT(t), Blob{AvatarID: "a", Asset: a}, newSink(t), nil); err != nil {
		t.Fatal(err)
	}
}
