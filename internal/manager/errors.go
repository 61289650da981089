package manager

import (
	"context"
	"errors"

	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/manifest"
)

// The manager's errors, built where the failure is understood: each names
// the avatar (and the file, when one is at fault).

// errCancelled is the cause given to a cancelled load's context.
var errCancelled = errs.New(errs.Cancelled, errs.PhaseLocal, "the load was cancelled")

func cancelledErr(id string) *errs.Error {
	return &errs.Error{Code: errs.Cancelled, Phase: errs.PhaseLocal, AvatarID: id,
		Message: "the load was cancelled"}
}

// avatarErr is err as an *errs.Error that names the avatar.
func avatarErr(id string, err error) *errs.Error {
	if err == nil {
		return nil
	}
	e := errs.From(err)
	if e.AvatarID == "" {
		e = e.WithAvatar(id)
	}
	return e
}

func validateID(id string) error {
	if err := manifest.ValidateID(id); err != nil {
		return avatarErr(id, err)
	}
	return nil
}

func notCached(id string) *errs.Error {
	return &errs.Error{Code: errs.AvatarAssetMissing, Phase: errs.PhaseLocal, AvatarID: id,
		Reason: errs.ReasonNotCached, Message: "avatar " + id + " is not cached"}
}

func damagedErr(id string, paths []string) *errs.Error {
	e := &errs.Error{Code: errs.AvatarAssetMissing, Phase: errs.PhaseLocal, AvatarID: id,
		Reason: errs.ReasonDamaged, Message: "avatar " + id + " has missing or damaged files"}
	if len(paths) > 0 {
		e.Asset = paths[0]
	}
	return e
}

func untrustedErr(id string) *errs.Error {
	return &errs.Error{Code: errs.AvatarAssetMissing, Phase: errs.PhaseLocal, AvatarID: id,
		Reason: errs.ReasonUntrusted, Message: "avatar " + id + "'s cached manifest is signed by no key in origin.trusted_keys (they changed since it was fetched)"}
}

// storeErr is a failure of the store, or of a download into it, as an
// avatar error: an *errs.Error (fetch and store build their own) gets the
// avatar and, when it names no file, asset; a cancel stays itself, so that
// the load ends cancelled; anything else is a store failure.
func storeErr(id, asset string, err error) error {
	var e *errs.Error
	if errors.As(err, &e) {
		e = e.WithAvatar(id)
		if e.Asset == "" {
			e.Asset = asset
		}
		return e
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &errs.Error{Code: errs.FailedToDownloadAvatarAssets, Phase: errs.PhaseStore, AvatarID: id,
		Asset: asset, Message: err.Error(), Err: err}
}
