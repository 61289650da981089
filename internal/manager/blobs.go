package manager

import (
	"context"
	"errors"
	"sort"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/fetch"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/store"
)

// blobWorkers bounds the goroutines of one load; fetch's own cap bounds
// the downloads of all loads together.
const blobWorkers = 16

type wantBlob struct {
	asset   manifest.Asset
	uses    int64 // assets of the avatar with this digest: progress counts each
	counted int64 // bytes of a partial already counted as done (once)
}

// fetchBlobs downloads the blobs of target that the store lacks, in
// parallel. Progress counts the avatar's bytes as SizeBytes does (a file
// listed twice counts twice); what the store holds already, committed or
// partial, counts as done.
func (m *Manager) fetchBlobs(ctx context.Context, f *fetch.Client, fl *flight, target *store.Avatar) error {
	uses := make(map[string]int64, len(target.Manifest.Assets))
	for _, a := range target.Manifest.Assets {
		uses[a.SHA256]++
	}
	var (
		want        []wantBlob
		done, total int64
		need        int64
	)
	for _, a := range target.Manifest.Assets {
		total += a.Size
		n := uses[a.SHA256]
		if n == 0 {
			continue // seen
		}
		uses[a.SHA256] = 0
		if m.st.HasBlob(a.SHA256) {
			done += n * a.Size
			continue
		}
		p := min(max(m.st.Partial(a.SHA256), 0), a.Size)
		done += n * p
		need += a.Size - p
		want = append(want, wantBlob{asset: a, uses: n, counted: p})
	}
	fl.setBytes(m, done, total)
	if len(want) == 0 {
		return nil
	}
	if err := m.makeRoom(need, fl.id); err != nil {
		return err
	}
	// Larger files first: they bound the load's duration.
	sort.SliceStable(want, func(i, j int) bool { return want[i].asset.Size > want[j].asset.Size })
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(blobWorkers)
	for _, w := range want {
		g.Go(func() error { return m.fetchBlob(gctx, f, fl, target, w) })
	}
	return g.Wait()
}

// makeRoom evicts least recently used unpinned avatars, never keep, until
// need more bytes fit in the store (store.EnsureSpaceKeeping).
func (m *Manager) makeRoom(need int64, keep string) error {
	if need <= 0 {
		return nil
	}
	evicted, err := m.st.EnsureSpaceKeeping(need, keep)
	for _, id := range evicted {
		m.views.drop(id)
		m.log.Info("evicted to make room", "avatar", id, "for", keep)
	}
	if err != nil {
		return storeErr(keep, "", err)
	}
	return nil
}

// fetchBlob downloads one blob into the store, resuming a partial, unless
// another load commits it first.
func (m *Manager) fetchBlob(ctx context.Context, f *fetch.Client, fl *flight, target *store.Avatar, w wantBlob) error {
	a := w.asset
	var credit atomic.Int64 // bytes of this blob counted in fl.done (once)
	credit.Store(w.counted)
	settle := func(n int64) { fl.add(m, w.uses*(n-credit.Swap(n))) }

	if m.st.HasBlob(a.SHA256) {
		settle(a.Size)
		return nil
	}
	wr, err := m.st.Ingest(ctx, a.SHA256, a.Size)
	if err != nil {
		return storeErr(fl.id, a.Path, err)
	}
	if m.st.HasBlob(a.SHA256) { // committed by another load while we waited for the lock
		_ = wr.Abort()
		settle(a.Size)
		return nil
	}
	settle(wr.Size())
	b := fetch.Blob{AvatarID: fl.id, Asset: a, ManifestURL: target.ManifestURL, Background: fl.background.Load()}
	fl.downloading(m, 1)
	err = f.Download(ctx, b, wr, func(delta int64) {
		credit.Add(delta)
		fl.receive(m, w.uses*delta, delta)
	})
	fl.downloading(m, -1)
	if err != nil {
		var e *errcode.Error
		if errors.As(err, &e) && (e.Reason == errcode.ReasonInsufficientStorage ||
			e.Reason == errcode.ReasonHashMismatch || e.Reason == errcode.ReasonSizeMismatch) {
			_ = wr.Abort() // bad bytes or a full disk: nothing worth resuming
		} else {
			_ = wr.Close() // keep the partial for the next load to resume
		}
		return storeErr(fl.id, a.Path, err)
	}
	if err := wr.Commit(); err != nil {
		_ = wr.Close()
		return storeErr(fl.id, a.Path, err)
	}
	settle(a.Size)
	return nil
}

// digestsOf lists the digests of mf's assets (repeats and all).
func digestsOf(mf *manifest.Manifest) []string {
	ds := make([]string, len(mf.Assets))
	for i, a := range mf.Assets {
		ds[i] = a.SHA256
	}
	return ds
}

func (m *Manager) allPresent(mf *manifest.Manifest) bool {
	for _, a := range mf.Assets {
		if !m.st.HasBlob(a.SHA256) {
			return false
		}
	}
	return true
}
