package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/publish"
)

// execute runs the assetd command line in-process and returns what it
// printed on stdout and its exit code.
func pubExecute(t *testing.T, ctx context.Context, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return out.String(), errs.ExitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		return out.String() + err.Error(), errs.ExitUsage
	}
	return out.String() + err.Error(), exitCodeOf(err)
}

func pubWriteTree(t *testing.T, dir string, files map[string]string) {
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
}

func TestKeygenPublishSigned(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, out := filepath.Join(dir, "src"), filepath.Join(dir, "out")
	pubWriteTree(t, src, map[string]string{"rohan/VERSION": "3\n", "rohan/model.splat": "m", "rohan/anim/idle.bin": "i"})

	text, code := pubExecute(t, ctx, "keygen", "--out", filepath.Join(dir, "k"))
	if code != 0 || !strings.Contains(text, "trusted_keys") {
		t.Fatalf("keygen: exit %d\n%s", code, text)
	}
	if _, code := pubExecute(t, ctx, "keygen", "--out", filepath.Join(dir, "k")); code == 0 {
		t.Error("keygen overwrote an existing key")
	}
	text, code = pubExecute(t, ctx, "publish", src, out, "--sign", filepath.Join(dir, "k.key"))
	if code != 0 || !strings.Contains(text, "published 1 avatar to") {
		t.Fatalf("publish: exit %d\n%s", code, text)
	}

	pubText, err := os.ReadFile(filepath.Join(dir, "k.pub"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := manifest.ParsePublicKey(strings.TrimSpace(string(pubText)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(publish.ManifestPath("rohan"))))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := manifest.Decode(raw, "rohan", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Verify([]ed25519.PublicKey{pub}); err != nil || doc.Manifest.Version != "3" {
		t.Errorf("version %q, verify: %v", doc.Manifest.Version, err)
	}

	text, code = pubExecute(t, ctx, "--json", "publish", src, out, "--sign", filepath.Join(dir, "k.key"))
	var res publish.Result
	if code != 0 || json.Unmarshal([]byte(text), &res) != nil {
		t.Fatalf("publish --json: exit %d\n%s", code, text)
	}
	if res.BlobsAdded != 0 || res.Avatars[0].Manifest != publish.ManifestUnchanged {
		t.Errorf("second publish changed OUT: %+v", res)
	}
}

func TestPublishUsageErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pubWriteTree(t, dir, map[string]string{"src/a/f": "x", "bad.key": "nope"})
	for _, args := range [][]string{
		{"publish", filepath.Join(dir, "src")},
		{"publish", filepath.Join(dir, "src"), filepath.Join(dir, "out"), "--sign", filepath.Join(dir, "bad.key")},
		{"publish", filepath.Join(dir, "src"), filepath.Join(dir, "out"), "--sign", filepath.Join(dir, "missing.key")},
		{"keygen", "--out", ""},
	} {
		if text, code := pubExecute(t, ctx, args...); code != errs.ExitUsage {
			t.Errorf("%q: exit %d, want %d\n%s", args, code, errs.ExitUsage, text)
		}
	}
	// No VERSION and no --version, or a folder that is no avatar ID:
	// refused as bad input, nothing written.
	if text, code := pubExecute(t, ctx, "publish", filepath.Join(dir, "src"), filepath.Join(dir, "out")); code != errs.ExitUsage || !strings.Contains(text, "VERSION") {
		t.Errorf("publish without a version: exit %d\n%s", code, text)
	}
	pubWriteTree(t, dir, map[string]string{"src/a/VERSION": "1", "src/bad id/f": "x"})
	if text, code := pubExecute(t, ctx, "publish", filepath.Join(dir, "src"), filepath.Join(dir, "out")); code != errs.ExitUsage || !strings.Contains(text, "not an avatar ID") {
		t.Errorf("publish with a bad folder name: exit %d\n%s", code, text)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("OUT written by a refused publish")
	}
}

func TestSamplesCommand(t *testing.T) {
	dir := t.TempDir()
	text, code := pubExecute(t, context.Background(), "samples", dir)
	if code != 0 || strings.Count(text, "files") != 3 {
		t.Fatalf("samples: exit %d\n%s", code, text)
	}
	if _, err := os.Stat(filepath.Join(dir, "mei", "VERSION")); err != nil {
		t.Error(err)
	}
}

// publish quotes names with control characters in its output and errors:
// a file name cannot drive the terminal.
func TestPublishQuotesControlCharacters(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, out := filepath.Join(dir, "src"), filepath.Join(dir, "out")
	pubWriteTree(t, src, map[string]string{"rohan/VERSION": "1\n", "rohan/model.splat": "m", "notes\x1b[2J\x07.txt": "skipped"})
	text, code := pubExecute(t, ctx, "publish", src, out)
	if code != 0 || strings.ContainsAny(text, "\x1b\x07") || !strings.Contains(text, `"notes\x1b[2J\a.txt"`) {
		t.Fatalf("publish: exit %d, output %q: want the skipped name quoted", code, text)
	}
	pubWriteTree(t, src, map[string]string{"rohan/a\x1b]0;owned\x07.bin": "x"})
	text, code = pubExecute(t, ctx, "publish", src, out)
	if code != errs.ExitUsage || strings.ContainsAny(text, "\x1b\x07") || !strings.Contains(text, `\x1b`) {
		t.Fatalf("publish of a bad name: exit %d, output %q: want exit 2 and the name escaped", code, text)
	}
}
