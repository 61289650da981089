package api_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/api/apitest"
)

// TestListIsStreamed: GET /v1/avatars is written as it is encoded (chunked,
// no Content-Length, many writes for a large cache), and its body is what
// encoding/json makes of the whole apitype.List.
func TestListIsStreamed(t *testing.T) {
	want := apitype.List{Loads: []apitype.Load{{AvatarID: "loading", State: apitype.StateDownloading, BytesDone: 1, BytesTotal: 2}}}
	for i := range 2000 {
		a := sampleAvatar(fmt.Sprintf("avatar-%04d", i))
		a.Pinned = i%2 == 0
		if i%3 == 0 {
			a.Damaged = []string{"voice.bin"}
			a.State = apitype.StateDamaged
		}
		want.Avatars = append(want.Avatars, *a)
	}
	fm := &apitest.Manager{ListFn: func() apitype.List { return want }}
	ts := start(t, fm, api.Options{})
	status, hdr, body := ts.raw(t, "GET", "/v1/avatars", nil, nil)
	if status != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, header %v", status, hdr)
	}
	if cl := hdr.Get("Content-Length"); cl != "" {
		t.Fatalf("Content-Length %s: the whole list was built before it was sent", cl)
	}
	whole, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != string(whole)+"\n" {
		t.Fatalf("the streamed list differs from encoding/json's:\n got %.300s\nwant %.300s", body, whole)
	}
	l, err := ts.c.List(testCtx(t))
	if err != nil || len(l.Avatars) != 2000 || len(l.Loads) != 1 {
		t.Fatalf("client: %d avatars, %d loads, %v", len(l.Avatars), len(l.Loads), err)
	}
}
