package manager

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/store"
)

// trust holds the verdict of the keys in force (origin.trusted_keys, the
// fetcher's) on each cached origin avatar's manifest. Every manifest was
// verified when it was fetched; only a change of the keys can make a
// cached one untrusted. So the verdicts are kept for one key set, the one
// in force, and only the negative ones are stored: a verdict is "no key in
// force signed the manifest *Manifest of avatar ID" (the store shares one
// *Manifest per version, so a new version is never confused with the old
// one). A change of the key set starts one pass, in the background, that
// verifies every cached origin manifest again (about 50 µs each: seconds
// for 100k avatars, never on a request's path). Imported avatars are local
// and unsigned by design: they are never judged.
type trust struct {
	mu    sync.Mutex // serialises key changes; guards keys, set, known, stop
	keys  []ed25519.PublicKey
	set   [32]byte // fingerprint of keys
	known bool     // keys were set once
	gen   atomic.Uint64
	stop  func() // cancels the pass in flight and waits for it; nil if none

	vmu       sync.RWMutex
	untrusted map[string]*manifest.Manifest
	n         atomic.Int64 // len(untrusted): Retrieve takes no lock when 0
}

// keySet is the fingerprint of a set of keys, in any order.
func keySet(keys []ed25519.PublicKey) [32]byte {
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, func(a, b ed25519.PublicKey) int { return bytes.Compare(a, b) })
	sorted = slices.CompactFunc(sorted, func(a, b ed25519.PublicKey) bool { return a.Equal(b) })
	h := sha256.New()
	for _, k := range sorted {
		h.Write(k)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// current is the key set in force and its generation.
func (t *trust) current() ([]ed25519.PublicKey, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.keys, t.gen.Load()
}

// isUntrusted reports whether a's manifest is judged signed by no key in
// force.
func (t *trust) isUntrusted(a *store.Avatar) bool {
	if t.n.Load() == 0 {
		return false
	}
	t.vmu.RLock()
	mf := t.untrusted[a.ID]
	t.vmu.RUnlock()
	return mf != nil && mf == a.Manifest
}

// judge records the verdict on avatar id's manifest mf under the key set
// of generation gen; a verdict of an older key set is dropped. It reports
// whether the verdict was recorded.
func (t *trust) judge(gen uint64, id string, mf *manifest.Manifest, ok bool) bool {
	t.vmu.Lock()
	defer t.vmu.Unlock()
	if gen != t.gen.Load() {
		return false
	}
	if ok {
		delete(t.untrusted, id)
	} else {
		if t.untrusted == nil {
			t.untrusted = map[string]*manifest.Manifest{}
		}
		t.untrusted[id] = mf
	}
	t.n.Store(int64(len(t.untrusted)))
	return true
}

// forget drops the verdicts on the IDs for which keep is false (all when
// keep is nil).
func (t *trust) forget(keep func(id string) bool) {
	t.vmu.Lock()
	for id := range t.untrusted {
		if keep == nil || !keep(id) {
			delete(t.untrusted, id)
		}
	}
	t.n.Store(int64(len(t.untrusted)))
	t.vmu.Unlock()
}

func (t *trust) forgetID(id string) {
	if t.n.Load() == 0 {
		return
	}
	t.forget(func(other string) bool { return other != id })
}

// verifyCached reports whether a key of keys signed the manifest the store
// keeps for a (the document as the origin sent it, read from the index).
// With no keys, every manifest passes; an imported avatar always does.
func (m *Manager) verifyCached(a *store.Avatar, keys []ed25519.PublicKey) bool {
	if len(keys) == 0 || a.Source == SourceImport {
		return true
	}
	if a.Manifest == nil {
		return false
	}
	raw, err := m.st.RawManifest(a.ID)
	if err != nil || len(raw) == 0 {
		return false
	}
	d, err := manifest.Decode(raw, a.ID, 1<<62)
	if err != nil || d.Manifest.Version != a.Manifest.Version {
		return false
	}
	return d.Verify(keys) == nil
}

// setTrustedKeys makes keys the key set in force. When they differ from
// the set in force, it cancels a pass in flight and starts one that
// judges every cached avatar under the new set. It does not wait for it.
func (m *Manager) setTrustedKeys(keys []ed25519.PublicKey) {
	t := &m.trust
	t.mu.Lock()
	defer t.mu.Unlock()
	set := keySet(keys)
	if t.known && set == t.set {
		return
	}
	gen := t.gen.Add(1) // first: the pass in flight records no more verdicts
	if t.stop != nil {
		t.stop()
		t.stop = nil
	}
	first := !t.known
	t.keys, t.set, t.known = slices.Clone(keys), set, true
	if len(keys) == 0 {
		t.forget(nil) // no keys: every manifest is trusted
		return
	}
	m.mu.Lock()
	closed := m.closed
	if !closed {
		m.wg.Add(1)
	}
	m.mu.Unlock()
	if closed {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	done := make(chan struct{})
	t.stop = func() { cancel(); <-done }
	go func(keys []ed25519.PublicKey) {
		defer m.wg.Done()
		defer close(done)
		defer cancel()
		m.rejudge(ctx, gen, keys, first)
	}(t.keys)
}

// rejudge is the pass: it verifies the manifest of every cached origin
// avatar against keys and records the verdicts of generation gen.
func (m *Manager) rejudge(ctx context.Context, gen uint64, keys []ed25519.PublicKey, atStart bool) {
	start := time.Now()
	ids := m.st.IDs()
	seen := make(map[string]bool, len(ids))
	var checked, bad int
	var badIDs []string
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		seen[id] = true
		a, cached := m.st.Get(id)
		if !cached || a.Source == SourceImport {
			continue
		}
		if m.testHookJudge != nil {
			m.testHookJudge(ctx, a.ID)
		}
		checked++
		ok := m.verifyCached(a, keys)
		if !m.trust.judge(gen, a.ID, a.Manifest, ok) {
			return // the keys changed again: the next pass judges
		}
		if !ok {
			bad++
			if len(badIDs) < 10 {
				badIDs = append(badIDs, a.ID)
			}
		}
	}
	m.trust.forget(func(id string) bool { return seen[id] })
	msg := "trusted keys changed: cached manifests verified again"
	if atStart {
		msg = "cached manifests verified with the trusted keys"
	}
	log := m.log.Info
	if bad > 0 {
		log = m.log.Warn
	}
	log(msg, "keys", len(keys), "checked", checked, "untrusted", bad, "some", badIDs,
		"took", time.Since(start).Round(time.Millisecond))
}

// rejudgeOne judges avatar id under the keys in force, for a version that
// was stored after a change of the keys (verified by a fetcher with the
// old ones) that the pass may have missed.
func (m *Manager) rejudgeOne(id string) {
	keys, gen := m.trust.current()
	a, ok := m.st.Get(id)
	if !ok {
		return
	}
	if m.verifyCached(a, keys) {
		m.trust.judge(gen, id, a.Manifest, true)
		return
	}
	if m.trust.judge(gen, id, a.Manifest, false) {
		m.log.Warn("avatar's manifest is signed by no trusted key", "avatar", id)
	}
}
