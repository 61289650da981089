package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/testkit"
)

// TestKeyRevocation: an avatar published signed by k1 (`assetd publish
// --sign`, served by `assetd origin`, manifests no-cache + ETag) and cached
// by a daemon with trusted_keys = [k1]. The config file rewritten with
// trusted_keys = [k2]: GET answers 409 avatarAssetMissing, reason
// untrusted, with no request to the origin; a load asks the origin
// without If-None-Match and fails badSignature; an imported avatar stays
// served. Republished signed by k2, the avatar loads and GET answers 200.
func TestKeyRevocation(t *testing.T) {
	t.Parallel()
	e := testkit.NewEnv(t, waitLimit)
	pub1 := keygen(t, filepath.Join(e.Dir, "k1"))
	pub2 := keygen(t, filepath.Join(e.Dir, "k2"))
	src, site := filepath.Join(e.Dir, "src"), filepath.Join(e.Dir, "site")
	writeRandom(t, filepath.Join(src, "rohan", "model.splat"), 64<<10)
	signedPublish(t, src, site, filepath.Join(e.Dir, "k1.key"))
	url := testkit.StartOriginCmd(t, site, waitLimit)
	conf := func(pub string) testkit.Config {
		return testkit.Config{OriginURL: url, Origin: fmt.Sprintf("trusted_keys = [%q]", pub)}
	}
	e.WriteConfig(conf(pub1))
	p := e.Start()
	defer p.Stop()
	c := e.Client()
	defer c.CloseIdleConnections()
	if out, errOut, code := e.CLI("preload", "rohan"); code != 0 {
		t.Fatalf("preload: exit %d\n%s%s", code, out, errOut)
	}
	local := filepath.Join(e.Dir, "local")
	writeRandom(t, filepath.Join(local, "local.bin"), 4<<10)
	if out, errOut, code := e.CLI("import", "local", local); code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	if code, err := testkit.Do(c, "GET", "/v1/avatars/rohan", nil, nil); code != 200 || err != nil {
		t.Fatalf("GET rohan: %d %v", code, err)
	}

	e.WriteConfig(conf(pub2))
	var er apitype.ErrorResponse
	waitFor(t, "GET rohan to answer 409 untrusted", func() bool {
		er = apitype.ErrorResponse{}
		code, _ := testkit.Do(c, "GET", "/v1/avatars/rohan", nil, &er)
		return code == 409
	})
	if er.Error.Code != "avatarAssetMissing" || er.Error.Reason != "untrusted" || er.Error.Hint == "" {
		t.Fatalf("GET rohan: %+v, want avatarAssetMissing/untrusted with a hint", er.Error)
	}
	if code, err := testkit.Do(c, "GET", "/v1/avatars/local", nil, nil); code != 200 || err != nil {
		t.Errorf("GET of the imported avatar: %d %v", code, err)
	}
	last := loadLast(t, c, "rohan")
	if last.Error == nil || last.Error.Code != "failedToFetchAvatarMetadata" || last.Error.Reason != "badSignature" {
		t.Fatalf("load under [k2] of a manifest signed by k1: %+v, want badSignature", last)
	}
	if code, _ := testkit.Do(c, "GET", "/v1/avatars/rohan", nil, nil); code != 409 {
		t.Errorf("GET rohan after the failed load: %d, want 409", code)
	}

	signedPublish(t, src, site, filepath.Join(e.Dir, "k2.key"))
	if last := loadLast(t, c, "rohan"); last.Type != apitype.EventCompleted {
		t.Fatalf("load of the manifest signed by k2: %+v", last)
	}
	if code, err := testkit.Do(c, "GET", "/v1/avatars/rohan", nil, nil); code != 200 || err != nil {
		t.Errorf("GET rohan after the load: %d %v", code, err)
	}
	if !strings.Contains(p.Stderr.String(), "untrusted=1") {
		t.Errorf("the log does not count the untrusted manifest:\n%s", p.Stderr.String())
	}
}

func keygen(t *testing.T, prefix string) string {
	t.Helper()
	if b, err := testkit.Command("keygen", "--out", prefix).CombinedOutput(); err != nil {
		t.Fatalf("assetd keygen: %v\n%s", err, b)
	}
	pub, err := os.ReadFile(prefix + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(pub))
}

func signedPublish(t *testing.T, src, out, key string) {
	t.Helper()
	if b, err := testkit.Command("publish", src, out, "--version", "1", "--sign", key).CombinedOutput(); err != nil {
		t.Fatalf("assetd publish: %v\n%s", err, b)
	}
}

// loadLast loads id through the API and returns its last event.
func loadLast(t *testing.T, c *http.Client, id string) apitype.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	evs, err := testkit.Load(ctx, c, id, nil)
	if err != nil || len(evs) == 0 {
		t.Fatalf("load %s: %v (%d events)", id, err, len(evs))
	}
	return evs[len(evs)-1]
}
