package daemon

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/assetd/assetd/internal/alive"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/watch"
)

// control is the one goroutine that changes the configuration: SIGHUP,
// POST /v1/reload, edits of the config file and of the session-token file all come here, so
// reloads never overlap. When a reload changes which files are watched (a
// new origin.session_token_file), the file watcher is replaced.
func (d *daemon) control(ctx context.Context, armed chan<- struct{}, beat *alive.Loop, allowance time.Duration) {
	for {
		files := d.watchedFiles()
		changed := make(chan string)
		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		watcherBeat := d.alive.Loop("config watcher", allowance)
		if w := d.newFileWatcher(files, watcherBeat, func(p string) {
			select {
			case changed <- p:
			case <-wctx.Done():
			}
		}); w != nil {
			wg.Go(func() { _ = w.Run(wctx) })
		} else {
			watcherBeat.Stop()
			watcherBeat = nil
		}
		// The token file may have changed between its last read and the
		// start of this watch, which would report only later changes.
		d.tokenFileChanged()
		if armed != nil {
			// The first watch is in place: an edit from now on is seen.
			close(armed)
			armed = nil
		}
		for slices.Equal(files, d.watchedFiles()) && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-beat.C():
			case <-d.hup:
				_ = d.reload("SIGHUP")
			case req := <-d.reloads:
				req.result <- d.reload("assetd reload (POST /v1/reload)")
			case p := <-changed:
				d.fileChanged(p)
			}
			beat.Beat()
		}
		stop()
		wg.Wait()
		watcherBeat.Stop()
		if ctx.Err() != nil {
			return
		}
	}
}

// watchedFiles are the config file and the token file, absolute; those
// whose directory does not exist cannot be watched and are left out.
func (d *daemon) watchedFiles() []string {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	var files []string
	for _, f := range []string{d.opts.ConfigPath, cfg.TokenFile(d.opts.getenv)} {
		if f == "" {
			continue
		}
		abs, err := filepath.Abs(f)
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Dir(abs)); err != nil {
			continue
		}
		if !slices.Contains(files, abs) {
			files = append(files, abs)
		}
	}
	return files
}

func (d *daemon) newFileWatcher(files []string, beat *alive.Loop, onChange func(string)) *watch.Watcher {
	if len(files) == 0 {
		return nil
	}
	w, err := watch.New(files, onChange, watch.Options{Logger: d.log.With("component", "watch"), Alive: beat})
	if err != nil {
		d.log.Warn("cannot watch the configuration and token files; SIGHUP still reloads", "files", files, "err", err)
		return nil
	}
	return w
}

// fileChanged reacts to an edit of the config file (a reload) or of the
// token file (the new token is used from the next request, and loads that
// failed on auth are retried once).
func (d *daemon) fileChanged(path string) {
	if cfgPath, err := filepath.Abs(d.opts.ConfigPath); err == nil && d.opts.ConfigPath != "" && path == cfgPath {
		_ = d.reload("config file changed")
		return
	}
	d.tokenFileChanged()
}

// tokenFileChanged re-reads the token file; a new token is used from the
// next request, and loads that failed on auth are retried once.
func (d *daemon) tokenFileChanged() {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	if d.readToken(cfg) {
		d.mgr.RetryAuthFailed()
	}
}

// watchBlobs watches the store's committed blobs until ctx ends: a blob
// deleted, renamed away or rewritten behind the daemon's back marks its
// avatars damaged (the manager's Verify does that, announces it and, with
// store.self_heal, fetches the files again). The daemon's own commits
// (create, chmod), collections (blobs no avatar uses) and removals of
// damaged blobs (no longer committed) are ignored.
func (d *daemon) watchBlobs(ctx context.Context, beat *alive.Loop) {
	root := filepath.Join(d.store.Dir(), "blobs")
	w, err := watch.NewTree(root, func(ev watch.Event) { d.blobChanged(ctx, ev) }, watch.Options{Logger: d.log.With("component", "watch"), Alive: beat})
	if err != nil {
		beat.Stop()
		d.log.Warn("cannot watch the blob store; damage is found by verify and the scrub only", "dir", root, "err", err)
		return
	}
	d.blobWatch.Store(w)
	defer d.blobWatch.Store(nil)
	_ = w.Run(ctx)
}

// blobRemoval pauses the blob watch while the store removes many files
// at once (store.Options.OnRemoval: a gc of 100,000 avatars unlinks
// 300,000): its own removals need no report, and reading them cost the
// removal a tenth of its CPU. Resuming reports a Rescan, which finds
// anything else that changed meanwhile. A removal that began before the
// watch did goes unpaused.
func (d *daemon) blobRemoval(removing bool) {
	w := d.blobWatch.Load()
	switch {
	case w == nil:
	case removing:
		w.Pause()
	default:
		w.Resume()
	}
}

func (d *daemon) blobChanged(ctx context.Context, ev watch.Event) {
	if ev.Op.Has(watch.Rescan) {
		// Events were lost (a gc's removals overflow the kernel's queue):
		// stat every cached avatar's files, one ID at a time; only those
		// a stat finds wrong are verified (re-hashed).
		for _, id := range d.store.IDs() {
			if ctx.Err() != nil {
				return
			}
			if len(d.store.CheckAvatar(id)) > 0 {
				d.verify(ctx, id)
			}
		}
		return
	}
	digest := filepath.Base(ev.Path)
	if !manifest.ValidDigest(digest) {
		return
	}
	// The cheap tests come before AvatarsUsing, which walks every avatar:
	// a burst is the daemon's own commits (create, chmod) or collections
	// (the index dropped the blob before its file), by the hundred
	// thousand after a gc.
	removed := ev.Op&(watch.Remove|watch.Rename) != 0
	switch {
	case removed && !d.store.HasBlob(digest):
		return
	case !removed && ev.Op&watch.Write == 0:
		return
	}
	ids := d.store.AvatarsUsing(digest)
	if len(ids) == 0 {
		return
	}
	suspect := false
	if removed {
		for _, id := range ids {
			suspect = suspect || len(d.store.CheckAvatar(id)) > 0
		}
	} else {
		suspect = d.store.VerifyBlob(ctx, digest) != nil
	}
	if !suspect {
		return
	}
	d.log.Warn("a cached file changed on disk", "digest", digest, "op", ev.Op.String(), "avatars", ids)
	for _, id := range ids {
		d.verify(ctx, id)
	}
}

func (d *daemon) verify(ctx context.Context, id string) {
	if _, err := d.mgr.Verify(ctx, id); err != nil && ctx.Err() == nil {
		d.log.Warn("verify after a change on disk failed", "avatarId", id, "err", err)
	}
}
