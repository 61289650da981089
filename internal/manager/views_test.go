package manager

import (
	"fmt"
	"testing"

	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/store"
)

// TestListKeepsNoViews: listing every cached avatar builds their API forms
// one at a time and keeps none (a view holds each file's local path);
// Retrieve's view cache stays bounded however many avatars it serves.
func TestListKeepsNoViews(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	for _, id := range []string{"rohan", "mira"} {
		e.o.Publish(avatarOf(id, "v1", files3(id)))
		if _, err := e.m.Load(t.Context(), id, LoadOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	e.m.views.reset()
	l := e.m.List()
	if len(l.Avatars) != 2 || l.Avatars[0].AvatarID != "mira" || len(l.Avatars[1].Assets) != 3 {
		t.Fatalf("List = %+v", l)
	}
	if n := len(e.m.views.m); n != 0 {
		t.Fatalf("listing kept %d views", n)
	}
	if _, err := e.m.Retrieve("rohan"); err != nil {
		t.Fatal(err)
	}
	if n := len(e.m.views.m); n != 1 {
		t.Fatalf("Retrieve kept %d views, want 1", n)
	}
	// A listed avatar whose view is cached gets a copy of its assets.
	l = e.m.List()
	path := l.Avatars[1].Assets[0].Path
	l.Avatars[1].Assets[0].Path = "mutated"
	if a, err := e.m.Retrieve("rohan"); err != nil || a.Assets[0].Path != path {
		t.Fatalf("a listing shared the cached view: %v %v", a, err)
	}
	mf := &manifest.Manifest{Assets: []manifest.Asset{{Path: "a", Size: 1, SHA256: "00"}}}
	for i := range maxViews + 100 {
		e.m.viewOf(&store.Avatar{ID: fmt.Sprintf("v%d", i), Manifest: mf})
	}
	if n := len(e.m.views.m); n > maxViews {
		t.Fatalf("%d views cached, more than %d", n, maxViews)
	}
}
