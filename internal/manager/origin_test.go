package manager

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/fetch"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/store"
	"github.com/assetd/assetd/internal/testkit"
)

// newOrigin is testkit's origin as these tests want it: 8 KiB chunks, so
// that a small file's body reports progress more than once, and no
// Cache-Control, so that every load revalidates unless a test sets a
// max-age.
func newOrigin(t testing.TB) *testkit.Origin {
	o := testkit.UnstartedOrigin()
	o.Chunk = 8 << 10
	o.SetMaxAge(0)
	o.Start(t, o)
	return o
}

// avatarOf is avatar id at version with files path → content.
func avatarOf(id, version string, files map[string][]byte) *testkit.Avatar {
	a := &testkit.Avatar{ID: id, Version: version}
	for p, b := range files {
		a.Assets = append(a.Assets, testkit.Asset{Path: p, Data: b, SHA256: digestOf(b)})
	}
	return a
}

// signer signs manifests with priv; nil for unsigned ones.
func signer(priv ed25519.PrivateKey) func([]byte) ([]byte, error) {
	if priv == nil {
		return nil
	}
	keyID := manifest.KeyID(priv.Public().(ed25519.PublicKey))
	return func(doc []byte) ([]byte, error) { return manifest.Sign(doc, keyID, priv) }
}

// randomBytes is n bytes named by seed.
func randomBytes(seed string, n int) []byte {
	s := sha256.Sum256([]byte(seed))
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newFetcher(t testing.TB, url string, token func() string, keys ...ed25519.PublicKey) *fetch.Client {
	t.Helper()
	f, err := fetch.New(fetch.Config{
		BaseURL:      url,
		Token:        token,
		TrustedKeys:  keys,
		Concurrency:  4,
		MaxRetries:   1,
		RetryWaitMin: time.Millisecond,
		RetryWaitMax: 5 * time.Millisecond,
		StallWindow:  time.Minute,
		Logger:       quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func openStore(t testing.TB, dir string, opts store.Options) *store.Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	st, err := store.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

type env struct {
	o  *testkit.Origin
	st *store.Store
	m  *Manager
}

func newEnv(t testing.TB, sopts store.Options, mopts Options) *env {
	t.Helper()
	o := newOrigin(t)
	st := openStore(t, t.TempDir(), sopts)
	if mopts.Logger == nil {
		mopts.Logger = quietLogger()
	}
	m := New(st, newFetcher(t, o.URL(), nil), mopts)
	t.Cleanup(func() { m.Close() })
	return &env{o: o, st: st, m: m}
}

// files3 is a small avatar: three files named by seed.
func files3(seed string) map[string][]byte {
	return map[string][]byte{
		"model.splat":   randomBytes(seed+"/model", 96<<10),
		"anim/talk.bin": randomBytes(seed+"/talk", 40<<10),
		"meta.json":     []byte(`{"id":"` + seed + `"}`),
	}
}

func totalSize(files map[string][]byte) int64 {
	var n int64
	for _, b := range files {
		n += int64(len(b))
	}
	return n
}

// recorder collects a caller's events.
type recorder struct {
	mu  sync.Mutex
	evs []apitype.Event
}

func (r *recorder) add(ev apitype.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *recorder) events() []apitype.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]apitype.Event(nil), r.evs...)
}

// waitState waits for a state event of id on events.
func waitState(t *testing.T, events <-chan apitype.Event, id string, want apitype.State) apitype.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("events closed before %s became %s", id, want)
			}
			if ev.Type == apitype.EventState && ev.AvatarID == id && ev.State == want {
				return ev
			}
		case <-ctx.Done():
			t.Fatalf("%s never became %s", id, want)
		}
	}
}
