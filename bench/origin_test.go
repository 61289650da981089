package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
)

// TestOrigin publishes two small avatars and checks that Items lists what
// the server sends, byte for byte, and that the server counts it.
func TestOrigin(t *testing.T) {
	dir := t.TempDir()
	avatars := []Avatar{{ID: "a", Files: []File{{Path: "x.bin", Size: 1000}, {Path: "d/y.bin", Size: 10}}}, {ID: "b", Files: []File{{Path: "z", Size: 3}}}}
	src, out := filepath.Join(dir, "src"), filepath.Join(dir, "site")
	if err := WriteSource(src, avatars, Version); err != nil {
		t.Fatal(err)
	}
	if err := Publish(context.Background(), src, out); err != nil {
		t.Fatal(err)
	}
	items, err := Items(out, IDs(avatars))
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 5 {
		t.Fatalf("%d items, want 2 manifests and 3 assets: %+v", len(items), items)
	}
	o := NewOrigin(out)
	srv := httptest.NewServer(o)
	defer srv.Close()
	for _, it := range items {
		resp, err := http.Get(srv.URL + it.URLPath)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n != it.Size || resp.Header.Get("ETag") == "" {
			t.Errorf("%s: status %d, %d bytes, ETag %q; want 200, %d bytes, an ETag", it.URLPath, resp.StatusCode, n, resp.Header.Get("ETag"), it.Size)
		}
	}
	sent, reqs := o.Sent()
	if got := sent[items[1].URLPath]; got != items[1].Size || reqs[items[1].URLPath] != 1 {
		t.Errorf("counted %d bytes in %d requests for %s, want %d in 1", got, reqs[items[1].URLPath], items[1].URLPath, items[1].Size)
	}
}
