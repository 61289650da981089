package manager

import (
	"context"

	"github.com/assetd/assetd/apitype"
)

// Verify re-hashes the files of the cached avatar id on disk. A damaged
// file is removed from the store; every avatar that used it becomes
// damaged (with a state event) and, with SelfHeal, is re-fetched in the
// background.
func (m *Manager) Verify(ctx context.Context, id string) (apitype.VerifyResult, error) {
	if err := validateID(id); err != nil {
		return apitype.VerifyResult{}, err
	}
	a, ok := m.st.Get(id)
	if !ok || a.Manifest == nil {
		return apitype.VerifyResult{}, notCached(id)
	}
	res := apitype.VerifyResult{AvatarID: id}
	bad := map[string]bool{}
	checked := map[string]bool{}
	for _, as := range a.Manifest.Assets {
		res.Checked++
		if checked[as.SHA256] {
			continue
		}
		checked[as.SHA256] = true
		if err := m.st.VerifyBlob(ctx, as.SHA256); err != nil {
			if ctx.Err() != nil {
				e := cancelledErr(id)
				e.Err = ctx.Err()
				return apitype.VerifyResult{}, e
			}
			bad[as.SHA256] = true
		}
	}
	if len(bad) == 0 {
		cur, ok := m.st.Get(id)
		if !ok {
			return apitype.VerifyResult{}, notCached(id)
		}
		res.State = apitype.State(cur.State)
		res.Damaged = cur.Damaged
		if res.State == "" {
			res.State = apitype.StateReady
		}
		return res, nil
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
