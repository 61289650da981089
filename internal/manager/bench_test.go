package manager

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/assetd/assetd/internal/store"
)

// BenchmarkRetrieve is the hot path of GET /v1/avatars/{id}: a cached
// avatar of five files.
func BenchmarkRetrieve(b *testing.B) {
	e := newEnv(b, store.Options{}, Options{})
	files := files3("rohan")
	files["texture.bin"] = randomBytes("tex", 1000)
	files["anim/idle.bin"] = randomBytes("idle", 1000)
	e.o.Publish(avatarOf("rohan", "v1", files))
	if _, err := e.m.Load(b.Context(), "rohan", LoadOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.m.Retrieve("rohan"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRetrieveParallel(b *testing.B) {
	e := newEnv(b, store.Options{}, Options{})
	e.o.Publish(avatarOf("rohan", "v1", files3("rohan")))
	if _, err := e.m.Load(b.Context(), "rohan", LoadOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.m.Retrieve("rohan"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCheckAvatar is the store's share of Retrieve: a stat per file.
func BenchmarkCheckAvatar(b *testing.B) {
	e := newEnv(b, store.Options{}, Options{})
	files := files3("rohan")
	files["texture.bin"] = randomBytes("tex", 1000)
	files["anim/idle.bin"] = randomBytes("idle", 1000)
	e.o.Publish(avatarOf("rohan", "v1", files))
	if _, err := e.m.Load(b.Context(), "rohan", LoadOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if bad := e.st.CheckAvatar("rohan"); len(bad) > 0 {
			b.Fatal(bad)
		}
	}
}

// BenchmarkVerifyCached is the trusted keys' pass's cost per cached
// avatar: read its stored manifest from the index, decode it (five files,
// signed) and verify the signature against two keys, the signer's last.
func BenchmarkVerifyCached(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	e := newEnv(b, store.Options{}, Options{})
	e.o.SetSigner(signer(priv))
	e.m.SetFetcher(newFetcher(b, e.o.URL(), nil, pub))
	files := files3("rohan")
	files["texture.bin"] = randomBytes("tex", 1000)
	files["anim/idle.bin"] = randomBytes("idle", 1000)
	e.o.Publish(avatarOf("rohan", "v1", files))
	if _, err := e.m.Load(b.Context(), "rohan", LoadOptions{}); err != nil {
		b.Fatal(err)
	}
	a, _ := e.st.Get("rohan")
	keys := []ed25519.PublicKey{other, pub}
	b.ReportAllocs()
	for b.Loop() {
		if !e.m.verifyCached(a, keys) {
			b.Fatal("not verified")
		}
	}
}
