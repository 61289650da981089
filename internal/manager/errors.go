package manager

import (
	"context"
	"errors"

	"github.com/assetd/assetd/internal/errs"
)

// storeErr is a store failure as an avatar error.
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

// downloadErr is a fetch failure as an avatar error naming the asset.
func downloadErr(id, asset string, err error) error {
	var e *errs.Error
	if errors.As(err, &e) {
		e = e.WithAvatar(id)
		if e.Asset == "" {
			e.Asset = asset
		}
		return e
	}
	return storeErr(id, asset, err)
}
