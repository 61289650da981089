package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/store"
)

// buildIndex writes a store of n avatars of five small files each in dir
// through internal/store (Ingest, Commit, Put: what loads leave behind),
// drawing the files from a pool of 64 blobs. With fsync cheap in a tmpfs
// the build is quick; the store is then copied to dst, on the disk the
// daemon uses.
func buildIndex(ctx context.Context, tmp, dst string, n int) error {
	dir := filepath.Join(tmp, "state")
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		return err
	}
	pool := make([]string, 64)
	for i := range pool {
		data := fmt.Appendf(nil, "indexed avatar blob %d\n", i)
		sum := sha256.Sum256(data)
		pool[i] = hex.EncodeToString(sum[:])
		w, err := st.Ingest(ctx, pool[i], int64(len(data)))
		if err != nil {
			st.Close()
			return err
		}
		if _, err := w.Write(data); err != nil {
			w.Abort()
			st.Close()
			return err
		}
		if err := w.Commit(); err != nil {
			w.Close()
			st.Close()
			return err
		}
		if err := w.Close(); err != nil {
			st.Close()
			return err
		}
	}
	size := func(i int) int64 { return int64(len(fmt.Sprintf("indexed avatar blob %d\n", i))) }
	paths := []string{"model.splat", "texture.bin", "anim/idle.bin", "anim/talk.bin", "meta.json"}
	now := time.Now()
	for i := range n {
		id := fmt.Sprintf("indexed-%05d", i)
		m := &manifest.Manifest{Schema: 1, AvatarID: id, Version: "2026-11-01.1"}
		for k, p := range paths {
			j := (i*len(paths) + k) % len(pool)
			m.Assets = append(m.Assets, manifest.Asset{Path: p, Size: size(j), SHA256: pool[j]})
		}
		raw, err := json.Marshal(m)
		if err != nil {
			st.Close()
			return err
		}
		if err := st.Put(&store.Avatar{
			ID: id, Version: m.Version, Manifest: m, RawManifest: raw,
			ManifestURL: "http://127.0.0.1:9/v1/avatars/" + id + "/manifest",
			Source:      "origin", State: store.StateReady, FetchedAt: now, LastUsed: now,
		}); err != nil {
			st.Close()
			return err
		}
	}
	if err := st.Close(); err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "cp", "-a", dir, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("cp: %w: %s", err, out)
	}
	return os.RemoveAll(dir)
}

// startTimes starts `assetd serve` on the indexed store runs times and
// returns each start-to-ready time in seconds, checking once that the
// daemon indexes all n avatars.
func startTimes(ctx context.Context, bin, dir, originURL string, n, runs int) ([]float64, error) {
	var out []float64
	for r := range runs {
		d, err := startDaemon(bin, dir, daemonConfig(dir, originURL, ""))
		if err != nil {
			return nil, err
		}
		took, err := d.waitReady(ctx)
		if err != nil {
			d.stop()
			return nil, err
		}
		if r == 0 {
			if err := checkEntries(ctx, d, n); err != nil {
				d.stop()
				return nil, err
			}
		}
		if err := d.stop(); err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "start with %d indexed  %7.1f ms\n", n, took.Seconds()*1000)
		out = append(out, took.Seconds())
	}
	return out, nil
}
