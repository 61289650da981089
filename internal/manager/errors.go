package manager

import (
	"context"
	"errors"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/manifest"
)

// The manager's errors, built where the failure is understood: each names
// the avatar (and the file, when one is at fault).

// errCancelled is the cause given to a cancelled load's context.
var errCancelled = errs.New(errcode.Cancelled, errcode.PhaseLocal, "the load was cancelled")

func cancelledErr(id string) *errcode.Error {
	return &errcode.Error{Code: errcode.Cancelled, Phase: errcode.PhaseLocal, AvatarID: id,
		Message: "the load was cancelled"}
}

// avatarErr is err as an *errcode.Error that names the avatar.
func avatarErr(id string, err error) *errcode.Error {
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

func notCached(id string) *errcode.Error {
	return &errcode.Error{Code: errcode.AvatarAssetMissing, Phase: errcode.PhaseLocal, AvatarID: id,
		Reason: errcode.ReasonNotCached, Message: "avatar " + id + " is not cached"}
}

func damagedErr(id string, paths []string) *errcode.Error {
	e := &errcode.Error{Code: errcode.AvatarAssetMissing, Phase: errcode.PhaseLocal, AvatarID: id,
		Reason: errcode.ReasonDamaged, Message: "avatar " + id + " has missing or damaged files"}
	if len(paths) > 0 {
		e.Asset = paths[0]
	}
	return e
}

func untrustedErr(id string) *errcode.Error {
	return &errcode.Error{Code: errcode.AvatarAssetMissing, Phase: errcode.PhaseLocal, AvatarID: id,
		Reason: errcode.ReasonUntrusted, Message: "avatar " + id + "'s cached manifest is signed by no key in origin.trusted_keys (they changed since it was fetched)"}
}

// storeErr is a failure of the store, or of a download into it, as an
// avatar error: an *errcode.Error (fetch and store build their own) gets the
// avatar and, when it names no file, asset; a cancel stays itself, so that
// the load ends cancelled; anything else is a store failure.
func storeErr(id, asset string, err error) error {
	var e *errcode.Error
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
	return &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Phase: errcode.PhaseStore, AvatarID: id,
		Asset: asset, Message: err.Error(), Err: err}
}
