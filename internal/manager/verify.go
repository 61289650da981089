package manager

import (
	"context"
	"errors"
	"slices"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/store"
)

// verifyRounds bounds how often Verify starts over on a version that
// changed while it was being verified; then it answers the current state.
const verifyRounds = 3

// verifiesAtOnce bounds the avatars verified at once: each run reads and
// hashes every byte of an avatar, so more would only share the disk.
const verifiesAtOnce = 2

// verifyRun is one verification of an avatar, shared by every caller that
// asks for it while it runs. Its fields but done and the result are
// guarded by Manager.mu.
type verifyRun struct {
	callers int
	cancel  context.CancelFunc
	done    chan struct{}
	res     apitype.VerifyResult // set before done is closed
	err     error
}

// Verify re-hashes the files of the cached avatar id on disk. A damaged
// file is removed from the store; every avatar that used it becomes
// damaged (with a state event) and, with SelfHeal, is re-fetched in the
// background. A blob that left the store while it was verified (a load
// replaced the version, a Clear) is no damage: Verify starts over on the
// current version. Callers asking while a verification of id runs share
// it; at most verifiesAtOnce avatars are verified at once, the rest wait.
// ctx ends this caller's wait; the run stops when no caller is left.
func (m *Manager) Verify(ctx context.Context, id string) (apitype.VerifyResult, error) {
	if err := validateID(id); err != nil {
		return apitype.VerifyResult{}, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return apitype.VerifyResult{}, cancelledErr(id)
	}
	r := m.verifies[id]
	if r == nil {
		rctx, cancel := context.WithCancel(m.ctx)
		r = &verifyRun{cancel: cancel, done: make(chan struct{})}
		m.verifies[id] = r
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer cancel()
			res, err := m.verifyTurn(rctx, id)
			m.mu.Lock()
			if m.verifies[id] == r {
				delete(m.verifies, id)
			}
			m.mu.Unlock()
			r.res, r.err = res, err
			close(r.done)
		}()
	}
	r.callers++
	m.mu.Unlock()

	select {
	case <-r.done:
		res := r.res
		res.Damaged = slices.Clone(res.Damaged)
		return res, r.err
	case <-ctx.Done():
		m.mu.Lock()
		if r.callers--; r.callers == 0 {
			r.cancel()
			if m.verifies[id] == r {
				delete(m.verifies, id) // the next caller starts afresh
			}
		}
		m.mu.Unlock()
		e := cancelledErr(id)
		e.Err = ctx.Err()
		return apitype.VerifyResult{}, e
	}
}

// verifyTurn waits for one of the verifiesAtOnce turns and verifies id.
func (m *Manager) verifyTurn(ctx context.Context, id string) (apitype.VerifyResult, error) {
	select {
	case m.verifySem <- struct{}{}:
		defer func() { <-m.verifySem }()
	case <-ctx.Done():
		e := cancelledErr(id)
		e.Err = ctx.Err()
		return apitype.VerifyResult{}, e
	}
	return m.verify(ctx, id)
}

func (m *Manager) verify(ctx context.Context, id string) (apitype.VerifyResult, error) {
	for round := 1; ; round++ {
		a, ok := m.st.Get(id)
		if !ok || a.Manifest == nil {
			return apitype.VerifyResult{}, notCached(id)
		}
		res, bad, changed, err := m.verifyVersion(ctx, a)
		if err != nil {
			return apitype.VerifyResult{}, err
		}
		if changed {
			cur, ok := m.st.Get(id)
			if !ok || cur.Manifest == nil {
				return apitype.VerifyResult{}, notCached(id)
			}
			if cur.Version != a.Version && round < verifyRounds {
				continue
			}
			// The same version lost a blob to RemoveBlob (damage someone
			// else recorded), or it keeps changing: answer its state.
			return m.stateResult(id, res.Checked)
		}
		if len(bad) == 0 {
			return m.stateResult(id, res.Checked)
		}
		for _, as := range a.Manifest.Assets {
			if bad[as.SHA256] {
				res.Damaged = append(res.Damaged, as.Path)
			}
		}
		res.State = apitype.StateDamaged
		res.Healing = m.dropBlobs(id, bad)
		return res, nil
	}
}

// verifyVersion re-hashes the blobs of version a. bad holds the digests
// found damaged; changed reports a blob no longer in the store, after which
// it stops.
func (m *Manager) verifyVersion(ctx context.Context, a *store.Avatar) (res apitype.VerifyResult, bad map[string]bool, changed bool, err error) {
	res = apitype.VerifyResult{AvatarID: a.ID}
	bad = map[string]bool{}
	checked := map[string]bool{}
	for _, as := range a.Manifest.Assets {
		res.Checked++
		if checked[as.SHA256] {
			continue
		}
		checked[as.SHA256] = true
		if m.testHookVerifyBlob != nil {
			m.testHookVerifyBlob(as.SHA256)
		}
		verr := m.st.VerifyBlob(ctx, as.SHA256)
		if verr == nil {
			continue
		}
		if ctx.Err() != nil {
			e := cancelledErr(a.ID)
			e.Err = ctx.Err()
			return res, nil, false, e
		}
		var e *errcode.Error
		if !errors.As(verr, &e) {
			return res, nil, false, avatarErr(a.ID, verr)
		}
		switch e.Reason {
		case errcode.ReasonNotCached:
			return res, nil, true, nil
		case errcode.ReasonDamaged, errcode.ReasonSizeMismatch, errcode.ReasonHashMismatch:
			bad[as.SHA256] = true
		default:
			return res, nil, false, avatarErr(a.ID, verr)
		}
	}
	return res, bad, false, nil
}

// stateResult answers Verify with the state the store records for id.
func (m *Manager) stateResult(id string, checked int) (apitype.VerifyResult, error) {
	cur, ok := m.st.Get(id)
	if !ok {
		return apitype.VerifyResult{}, notCached(id)
	}
	res := apitype.VerifyResult{AvatarID: id, Checked: checked, State: apitype.State(cur.State), Damaged: cur.Damaged}
	if res.State == "" {
		res.State = apitype.StateReady
	}
	return res, nil
}
