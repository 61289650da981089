package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/publish"
)

// KiB and MiB size the generated files.
const (
	KiB = 1 << 10
	MiB = 1 << 20
)

// Version is the version every generated avatar is first published with.
const Version = "2026-11-01.1"

// File is one generated file of an avatar; Edition changes its bytes.
type File struct {
	Path    string
	Size    int
	Edition int
}

// Avatar is one generated avatar.
type Avatar struct {
	ID    string
	Files []File
}

// Avatars returns n avatars of five files and about 8 MiB each; the
// bytes of every file are distinct, so no blob is shared.
func Avatars(n int) []Avatar {
	out := make([]Avatar, n)
	for i := range out {
		out[i] = Avatar{ID: fmt.Sprintf("avatar-%02d", i), Files: []File{
			{Path: "model.splat", Size: 5 * MiB},
			{Path: "texture.bin", Size: 1*MiB + 512*KiB},
			{Path: "anim/idle.bin", Size: 768 * KiB},
			{Path: "anim/talk.bin", Size: 640 * KiB},
			{Path: "meta.json", Size: 2 * KiB},
		}}
	}
	return out
}

// Uniform returns n avatars named prefix-NN of files files of size bytes
// each (file-0.bin, file-1.bin, ...), none shared: issue 15's sets of
// 2 MiB and 8 MiB files.
func Uniform(prefix string, n, files, size int) []Avatar {
	out := make([]Avatar, n)
	for i := range out {
		a := Avatar{ID: fmt.Sprintf("%s-%02d", prefix, i)}
		for j := range files {
			a.Files = append(a.Files, File{Path: fmt.Sprintf("file-%d.bin", j), Size: size})
		}
		out[i] = a
	}
	return out
}

// Bytes returns the content of file f of avatar id: a ChaCha8 stream
// named by the avatar, the path and the edition.
func Bytes(id string, f File) []byte {
	seed := sha256.Sum256(fmt.Appendf(nil, "assetd-bench-v1/%s/%s/%d", id, f.Path, f.Edition))
	b := make([]byte, f.Size)
	_, _ = rand.NewChaCha8(seed).Read(b) // ChaCha8.Read never fails
	return b
}

// Key is the benchmark's signing key, the same on every run.
func Key() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("assetd-bench-v1/signing-key"))
	return ed25519.NewKeyFromSeed(seed[:])
}

// PublicKey is Key's public half as the config's trusted_keys spells it.
func PublicKey() string {
	return publish.EncodePublicKey(Key().Public().(ed25519.PublicKey))
}

// WriteSource writes avatars under src, one folder each with a VERSION.
func WriteSource(src string, avatars []Avatar, version string) error {
	for _, a := range avatars {
		if err := WriteAvatar(src, a, version); err != nil {
			return err
		}
	}
	return nil
}

// WriteAvatar writes (or rewrites) one avatar's folder under src.
func WriteAvatar(src string, a Avatar, version string) error {
	dir := filepath.Join(src, a.ID)
	for _, f := range a.Files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, Bytes(a.ID, f), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, publish.VersionFile), []byte(version+"\n"), 0o644)
}

// Publish writes src as a signed origin tree in out.
func Publish(ctx context.Context, src, out string) error {
	_, err := publish.Publish(ctx, src, out, publish.Options{Key: Key()})
	return err
}

// Item is one file a contender downloads: its URL path below the origin,
// where it goes below the contender's directory, its size and sha256.
type Item struct {
	URLPath string // "/v1/..."
	Rel     string // "<avatar>/<path>", or "<avatar>/manifest"
	Size    int64
	SHA256  string
}

// Items lists what a cold load of ids fetches from the tree in out: each
// manifest, then its assets.
func Items(out string, ids []string) ([]Item, error) {
	var items []Item
	for _, id := range ids {
		mp := publish.ManifestPath(id)
		raw, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(mp)))
		if err != nil {
			return nil, err
		}
		m, err := manifest.Parse(raw, id, 1<<40)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(raw)
		items = append(items, Item{URLPath: "/" + mp, Rel: id + "/manifest", Size: int64(len(raw)), SHA256: hex.EncodeToString(sum[:])})
		for _, a := range m.Assets {
			items = append(items, Item{URLPath: "/" + publish.BlobPath(a.SHA256), Rel: id + "/" + a.Path, Size: a.Size, SHA256: a.SHA256})
		}
	}
	return items, nil
}

// TotalSize sums the sizes of items.
func TotalSize(items []Item) int64 {
	var n int64
	for _, it := range items {
		n += it.Size
	}
	return n
}

// IDs returns the avatars' IDs.
func IDs(avatars []Avatar) []string {
	ids := make([]string, len(avatars))
	for i, a := range avatars {
		ids[i] = a.ID
	}
	return ids
}
