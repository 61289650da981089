package manager

import (
	"context"
	"errors"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/store"
)

// verifyRounds bounds how often Verify starts over on a version that
// changed while it was being verified; then it answers the current state.
const verifyRounds = 3

// Verify re-hashes the files of the cached avatar id on disk. A damaged
// file is removed from the store; every avatar that used it becomes
// damaged (with a state event) and, with SelfHeal, is re-fetched in the
// background. A blob that left the store while it was verified (a load
// replaced the version, a Clear) is no damage: Verify starts over on the
// current version.
func (m *Manager) Verify(ctx context.Context, id string) (apitype.VerifyResult, error) {
	if err := validateID(id); err != nil {
		return apitype.VerifyResult{}, err
	}
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
		var e *errs.Error
		if !errors.As(verr, &e) {
			return res, nil, false, avatarErr(a.ID, verr)
		}
		switch e.Reason {
		case errs.ReasonNotCached:
			return res, nil, true, nil
		case errs.ReasonDamaged, errs.ReasonSizeMismatch, errs.ReasonHashMismatch:
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
