package manager

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/store"
)

func genKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// eventually waits until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isReason(err error, code errcode.Code, reason string) bool {
	return errors.Is(err, &errcode.Error{Code: code, Reason: reason})
}

// TestKeyRevocation: an avatar cached signed by k1, fresh by its max-age;
// the trusted keys become [k2] (the fetcher of a reload): Retrieve answers
// 409 untrusted without a request, a load asks the origin without
// If-None-Match and fails badSignature while the origin still signs with
// k1; an imported avatar stays served. The keys back to [k1] make it
// ready again without a request; [k2] and the avatar republished signed by
// k2 make a load store it and Retrieve serve it.
func TestKeyRevocation(t *testing.T) {
	pub1, priv1 := genKey(t)
	pub2, priv2 := genKey(t)
	e := newEnv(t, store.Options{}, Options{})
	e.o.SetMaxAge(3600)
	e.o.SetSigner(signer(priv1))
	e.m.SetFetcher(newFetcher(t, e.o.URL(), nil, pub1))
	files := files3("rohan")
	e.o.Publish(avatarOf("rohan", "v1", files))
	mustLoad(t, e.m, "rohan", LoadOptions{})
	if _, err := importBytes(e.m, "local", tarFiles(t, map[string][]byte{"local.bin": []byte("made here")}), "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Retrieve("rohan"); err != nil {
		t.Fatal(err)
	}

	e.m.SetFetcher(newFetcher(t, e.o.URL(), nil, pub2))
	var err error
	eventually(t, "rohan to be untrusted", func() bool {
		_, err = e.m.Retrieve("rohan")
		return err != nil
	})
	if !isReason(err, errcode.AvatarAssetMissing, errcode.ReasonUntrusted) || errs.HTTPStatus(err) != 409 {
		t.Fatalf("Retrieve = %v, want 409 avatarAssetMissing/untrusted", err)
	}
	if _, err := e.m.Retrieve("local"); err != nil {
		t.Errorf("the imported avatar: %v", err)
	}
	reqs, notMod := e.o.ManifestGets("rohan"), e.o.NotModified("rohan")
	_, err = e.m.Load(t.Context(), "rohan", LoadOptions{})
	if !isReason(err, errcode.FailedToFetchAvatarMetadata, errcode.ReasonBadSignature) {
		t.Fatalf("Load = %v, want badSignature", err)
	}
	if e.o.ManifestGets("rohan") != reqs+1 || e.o.NotModified("rohan") != notMod {
		t.Errorf("the load made %d manifest requests (%d answered 304), want 1 unconditional",
			e.o.ManifestGets("rohan")-reqs, e.o.NotModified("rohan")-notMod)
	}
	if _, err := e.m.Retrieve("rohan"); !isReason(err, errcode.AvatarAssetMissing, errcode.ReasonUntrusted) {
		t.Errorf("after the failed load, Retrieve = %v", err)
	}

	// The keys back: trusted again, by the pass alone.
	e.m.SetFetcher(newFetcher(t, e.o.URL(), nil, pub1))
	eventually(t, "rohan to be trusted again", func() bool {
		_, err := e.m.Retrieve("rohan")
		return err == nil
	})

	// Revoked again, then republished signed by k2: a load stores it.
	e.m.SetFetcher(newFetcher(t, e.o.URL(), nil, pub2))
	eventually(t, "rohan to be untrusted", func() bool {
		_, err := e.m.Retrieve("rohan")
		return isReason(err, errcode.AvatarAssetMissing, errcode.ReasonUntrusted)
	})
	e.o.SetSigner(signer(priv2))
	blobs := e.o.TotalBlobGets()
	a, err := e.m.Load(t.Context(), "rohan", LoadOptions{})
	if err != nil {
		t.Fatalf("Load signed by k2: %v", err)
	}
	checkFiles(t, a, files)
	if n := e.o.TotalBlobGets(); n != blobs {
		t.Errorf("the re-signed manifest downloaded %d blobs, want none (the files did not change)", n-blobs)
	}
	if _, err := e.m.Retrieve("rohan"); err != nil {
		t.Errorf("Retrieve after the load: %v", err)
	}

	// No keys: every manifest is trusted.
	e.o.SetSigner(signer(nil))
	e.m.SetFetcher(newFetcher(t, e.o.URL(), nil))
	if _, err := e.m.Retrieve("rohan"); err != nil {
		t.Errorf("with no keys: %v", err)
	}
}

// TestKeyRevocationOffRequestPath: the pass that verifies the cached
// manifests again runs in the background: SetFetcher returns, and Retrieve
// answers, while it is held in the middle of its work; a key change during
// a pass cancels it and starts another; Close stops it.
func TestKeyRevocationOffRequestPath(t *testing.T) {
	pub1, priv1 := genKey(t)
	pub2, _ := genKey(t)
	e := newEnv(t, store.Options{}, Options{})
	held := make(chan string)
	release := make(chan struct{})
	var hold atomic.Bool
	e.m.testHookJudge = func(ctx context.Context, id string) {
		if !hold.Load() {
			return
		}
		select {
		case held <- id:
		case <-ctx.Done():
			return
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
	}
	e.o.SetSigner(signer(priv1))
	e.m.SetFetcher(newFetcher(t, e.o.URL(), nil, pub1))
	for _, id := range []string{"a1", "a2", "a3"} {
		e.o.Publish(avatarOf(id, "v1", files3(id)))
		mustLoad(t, e.m, id, LoadOptions{})
	}
	hold.Store(true)
	e.m.SetFetcher(newFetcher(t, e.o.URL(), nil, pub2)) // returns with the pass held
	first := <-held
	for _, id := range []string{"a1", "a2", "a3"} {
		if _, err := e.m.Retrieve(id); err != nil {
			t.Errorf("Retrieve(%s) while the pass runs: %v", id, err)
		}
	}
	if first != "a1" {
		t.Errorf("the pass began with %s", first)
	}
	// A change of the keys mid-pass: the held pass is cancelled (its hook
	// sees ctx end), a new one starts.
	e.m.SetFetcher(newFetcher(t, e.o.URL(), nil, pub1, pub2))
	<-held
	close(release)
	go func() {
		for range held {
		}
	}()
	if n := e.m.trust.n.Load(); n != 0 {
		t.Errorf("%d verdicts of a cancelled pass recorded", n)
	}
	e.m.SetFetcher(newFetcher(t, e.o.URL(), nil, pub2))
	eventually(t, "every avatar untrusted", func() bool { return e.m.trust.n.Load() == 3 })
	if err := e.m.Close(); err != nil {
		t.Fatal(err)
	}
	close(held)
}
