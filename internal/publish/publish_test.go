package publish

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/manifest"
)

// tree writes files (slash paths relative to dir) and returns dir.
func tree(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for p, data := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func blobs(t *testing.T, out string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(out, "v1", "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func readManifest(t *testing.T, out, id string) (*manifest.Manifest, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(ManifestPath(id))))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse(raw, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, raw
}

var twoAvatars = map[string]string{
	"rohan/VERSION":       "1\n",
	"rohan/model.splat":   "rohan model",
	"rohan/anim/idle.bin": "shared idle",
	"mei/model.splat":     "mei model",
	"mei/anim/idle.bin":   "shared idle",
	"README.md":           "not an avatar",
	".git/config":         "hidden",
}

func TestPublishTwiceAddsOneBlob(t *testing.T) {
	ctx := context.Background()
	src := tree(t, t.TempDir(), twoAvatars)
	out := t.TempDir()

	res, err := Publish(ctx, src, out, Options{Version: "7"})
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobsAdded != 3 || res.BlobsPresent != 0 {
		t.Errorf("first publish: %d added, %d present; want 3, 0", res.BlobsAdded, res.BlobsPresent)
	}
	if diff := cmp.Diff([]string{".git", "README.md"}, res.Skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	first := blobs(t, out)
	m, raw := readManifest(t, out, "rohan")
	if m.Version != "1" {
		t.Errorf("rohan version %q, want 1 from its VERSION file", m.Version)
	}
	if canon, _ := manifest.Canonical(raw); string(canon) != string(raw) {
		t.Errorf("manifest is not in canonical form:\n%s", raw)
	}
	wantPaths := []string{"anim/idle.bin", "model.splat"}
	var gotPaths []string
	for _, a := range m.Assets {
		gotPaths = append(gotPaths, a.Path)
		b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(BlobPath(a.SHA256))))
		if err != nil || int64(len(b)) != a.Size {
			t.Errorf("blob of %s: %d bytes, %v", a.Path, len(b), err)
		}
	}
	if diff := cmp.Diff(wantPaths, gotPaths); diff != "" {
		t.Errorf("asset paths (-want +got):\n%s", diff)
	}
	if m, _ := readManifest(t, out, "mei"); m.Version != "7" {
		t.Errorf("mei version %q, want 7 from --version", m.Version)
	}

	// Again, unchanged: nothing added, nothing rewritten.
	res, err = Publish(ctx, src, out, Options{Version: "7"})
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobsAdded != 0 || res.Avatars[0].Manifest != ManifestUnchanged || res.Avatars[1].Manifest != ManifestUnchanged {
		t.Errorf("idempotent publish changed something: %+v", res)
	}

	// One changed file: exactly one new blob, one updated manifest.
	tree(t, src, map[string]string{"mei/model.splat": "mei model, take two"})
	res, err = Publish(ctx, src, out, Options{Version: "8"})
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobsAdded != 1 {
		t.Errorf("%d blobs added, want 1", res.BlobsAdded)
	}
	if got := len(blobs(t, out)); got != len(first)+1 {
		t.Errorf("%d blobs in OUT, want %d", got, len(first)+1)
	}
	states := map[string]string{}
	for _, a := range res.Avatars {
		states[a.ID] = a.Manifest
	}
	if diff := cmp.Diff(map[string]string{"mei": ManifestUpdated, "rohan": ManifestUnchanged}, states); diff != "" {
		t.Errorf("manifest states (-want +got):\n%s", diff)
	}
	for _, name := range blobs(t, out) {
		if strings.HasPrefix(name, ".tmp-") {
			t.Errorf("temporary file %s left behind", name)
		}
	}
}

func TestPublishRewritesATruncatedBlob(t *testing.T) {
	src := tree(t, t.TempDir(), map[string]string{"a/VERSION": "1", "a/f": "0123456789"})
	out := t.TempDir()
	if _, err := Publish(context.Background(), src, out, Options{}); err != nil {
		t.Fatal(err)
	}
	m, _ := readManifest(t, out, "a")
	blob := filepath.Join(out, filepath.FromSlash(BlobPath(m.Assets[0].SHA256)))
	if err := os.WriteFile(blob, []byte("01234"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Publish(context.Background(), src, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(blob); string(b) != "0123456789" || res.BlobsAdded != 1 {
		t.Errorf("truncated blob not repaired: %q, %d added", b, res.BlobsAdded)
	}
}

func TestPublishRefusesHostileTrees(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("do not publish"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		setup func(t *testing.T, src string)
		want  string
	}{
		{"symlink outside", func(t *testing.T, src string) {
			link(t, "../../"+filepath.Base(outside)+"/secret", filepath.Join(src, "a", "leak"))
		}, "outside SRC"},
		{"absolute symlink", func(t *testing.T, src string) {
			link(t, secret, filepath.Join(src, "a", "leak"))
		}, "outside SRC"},
		{"symlinked avatar folder", func(t *testing.T, src string) {
			link(t, outside, filepath.Join(src, "b"))
		}, "outside SRC"},
		{"symlinked folder inside", func(t *testing.T, src string) {
			link(t, "..", filepath.Join(src, "a", "loop"))
		}, "symlink to a folder"},
		{"bad ID folder", func(t *testing.T, src string) {
			tree(t, src, map[string]string{"bad id!/f": "x"})
		}, "not an avatar ID"},
		{"bad asset path", func(t *testing.T, src string) {
			tree(t, src, map[string]string{"a/back\\slash": "x"})
		}, "not a valid asset path"},
		{"no version", func(t *testing.T, src string) {
			tree(t, src, map[string]string{"c/f": "x"})
		}, "no VERSION file"},
		{"empty avatar", func(t *testing.T, src string) {
			tree(t, src, map[string]string{"d/VERSION": "1"})
		}, "has no files"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			// SRC sits next to outside's parent so "../../x/secret" from
			// SRC/a leaves SRC.
			src := filepath.Join(filepath.Dir(outside), "src-"+filepath.Base(parent))
			if err := os.Mkdir(src, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(src) })
			tree(t, src, map[string]string{"a/VERSION": "1", "a/model.splat": "m"})
			tc.setup(t, src)
			out := filepath.Join(parent, "out")
			_, err := Publish(context.Background(), src, out, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
			var e *errcode.Error
			if errors.As(err, &e) {
				t.Errorf("publish error carries client code %s; it should be a plain error", e.Code)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("OUT was written before the tree was checked (%v)", err)
			}
		})
	}
}

func link(t *testing.T, target, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

func TestPublishFollowsSymlinksInsideSRC(t *testing.T) {
	src := tree(t, t.TempDir(), map[string]string{"a/VERSION": "1", "a/f": "shared", "b/VERSION": "1"})
	link(t, "../a/f", filepath.Join(src, "b", "f"))
	out := t.TempDir()
	res, err := Publish(context.Background(), src, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobsAdded != 1 || len(res.Avatars) != 2 {
		t.Errorf("%+v, want two avatars sharing one blob", res)
	}
}

func TestPublishRefusesOutInsideSrc(t *testing.T) {
	src := tree(t, t.TempDir(), map[string]string{"a/VERSION": "1", "a/f": "x"})
	if _, err := Publish(context.Background(), src, filepath.Join(src, "out"), Options{}); err == nil {
		t.Fatal("OUT inside SRC accepted")
	}
}

func TestSignedManifestsVerify(t *testing.T) {
	dir := t.TempDir()
	kp, err := WriteKeyPair(filepath.Join(dir, "k"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ReadPrivateKey(kp.PrivatePath)
	if err != nil {
		t.Fatal(err)
	}
	pubText, err := os.ReadFile(kp.PublicPath)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := manifest.ParsePublicKey(strings.TrimSpace(string(pubText)))
	if err != nil {
		t.Fatal(err)
	}
	src := tree(t, t.TempDir(), twoAvatars)
	out := t.TempDir()
	res, err := Publish(context.Background(), src, out, Options{Version: "1", Key: priv})
	if err != nil {
		t.Fatal(err)
	}
	if res.Avatars[0].KeyID != kp.KeyID || len(kp.KeyID) != 8 {
		t.Errorf("keyId %q, want %q", res.Avatars[0].KeyID, kp.KeyID)
	}
	m, raw := readManifest(t, out, "rohan")
	if m.Signature == nil || m.Signature.KeyID != kp.KeyID {
		t.Fatalf("signature %+v, want keyId %s", m.Signature, kp.KeyID)
	}
	doc, err := manifest.Decode(raw, "rohan", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Verify([]ed25519.PublicKey{pub}); err != nil {
		t.Errorf("signed manifest does not verify: %v", err)
	}

	tampered := []byte(strings.Replace(string(raw), `"version":"1"`, `"version":"2"`, 1))
	tm, err := manifest.Decode(tampered, "rohan", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := tm.Verify([]ed25519.PublicKey{pub}); !isBadSignature(err) {
		t.Errorf("tampered manifest: %v, want badSignature", err)
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if err := doc.Verify([]ed25519.PublicKey{other}); !isBadSignature(err) {
		t.Errorf("wrong key: %v, want badSignature", err)
	}

	// Signatures are deterministic: publishing again changes nothing.
	res, err = Publish(context.Background(), src, out, Options{Version: "1", Key: priv})
	if err != nil {
		t.Fatal(err)
	}
	if res.Avatars[0].Manifest != ManifestUnchanged {
		t.Errorf("signed manifest rewritten: %s", res.Avatars[0].Manifest)
	}
}

func isBadSignature(err error) bool {
	var e *errcode.Error
	return errors.As(err, &e) && e.Reason == errcode.ReasonBadSignature
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	kp, err := WriteKeyPair(prefix)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(kp.PrivatePath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := WriteKeyPair(prefix); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second keygen: %v, want a refusal to overwrite", err)
	}
	for name, data := range map[string]string{
		"garbage":   "not a key",
		"short":     "AAAA",
		"wrong PEM": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadPrivateKey(p); err == nil {
			t.Errorf("%s accepted as a private key", name)
		}
	}
}

func TestReadPEMPrivateKey(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "k.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadPrivateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(priv) {
		t.Error("PEM key read back differs")
	}
}

// A changed manifest gets an mtime in a later whole second than the one it
// replaces, even when the clock has not moved past it (a republish within
// the same second, or an old mtime ahead of the clock): static servers'
// validators (nginx's ETag, Last-Modified) are mtime seconds and size.
// An unchanged manifest keeps its mtime.
func TestChangedManifestMovesMtime(t *testing.T) {
	dir := t.TempDir()
	src, out := filepath.Join(dir, "src"), filepath.Join(dir, "out")
	tree(t, src, map[string]string{"kiosk/VERSION": "1", "kiosk/a.bin": "aaaa"})
	ctx := context.Background()
	if _, err := Publish(ctx, src, out, Options{}); err != nil {
		t.Fatal(err)
	}
	mf := filepath.Join(out, filepath.FromSlash(ManifestPath("kiosk")))
	ahead := time.Now().Add(time.Hour).Truncate(time.Second).Add(300 * time.Millisecond)
	if err := os.Chtimes(mf, ahead, ahead); err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(ctx, src, out, Options{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(mf); err != nil || !fi.ModTime().Equal(ahead) {
		t.Fatalf("unchanged manifest: mtime %v (%v), want %v kept", fi.ModTime(), err, ahead)
	}
	tree(t, src, map[string]string{"kiosk/a.bin": "bbbb"})
	if _, err := Publish(ctx, src, out, Options{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(mf)
	if err != nil {
		t.Fatal(err)
	}
	if want := ahead.Truncate(time.Second).Add(time.Second); !fi.ModTime().Equal(want) {
		t.Errorf("changed manifest: mtime %v, want %v (the old one's next second)", fi.ModTime(), want)
	}
	if now := time.Now(); !nextMtime(now.Add(-2*time.Second), now).Equal(now) {
		t.Error("a manifest older than a second is not stamped now")
	}
}

// A file bigger than an asset may be is refused on its size, before a
// byte of it is hashed (a 5 GiB sparse file took minutes to hash only to
// be refused by the manifest's check).
func TestTooBigRefusedBeforeHashing(t *testing.T) {
	dir := t.TempDir()
	src, out := filepath.Join(dir, "src"), filepath.Join(dir, "out")
	tree(t, src, map[string]string{"kiosk/VERSION": "1", "kiosk/small.bin": "s"})
	f, err := os.Create(filepath.Join(src, "kiosk", "huge.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(5 << 30); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	_, err = Publish(context.Background(), src, out, Options{})
	if err == nil || !strings.Contains(err.Error(), "huge.bin: 5368709120 bytes, more than an asset may be (4294967296)") {
		t.Fatalf("Publish = %v, want the size refusal from the scan", err)
	}
	if _, serr := os.Stat(out); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("OUT was written: %v", serr)
	}
}

// Names with control characters are quoted in every error (the CLI
// prints them): an escape sequence in a file name cannot reach the
// terminal.
func TestControlCharactersQuoted(t *testing.T) {
	for _, name := range []string{"kiosk/a\x1b]0;owned\x07.bin", "kiosk/\x1b[2J/x.bin", "bad\x1bid/a.bin"} {
		dir := t.TempDir()
		src, out := filepath.Join(dir, "src"), filepath.Join(dir, "out")
		tree(t, src, map[string]string{"kiosk/VERSION": "1", "kiosk/ok.bin": "x", name: "y"})
		_, err := Publish(context.Background(), src, out, Options{Version: "1"})
		if err == nil {
			t.Errorf("%q: published", name)
			continue
		}
		if msg := err.Error(); strings.ContainsAny(msg, "\x1b\x07") || !strings.Contains(msg, `\x1b`) {
			t.Errorf("%q: error %q carries raw control characters or not the escaped name", name, msg)
		}
	}
}
