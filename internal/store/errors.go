package store

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/assetd/assetd/apitype/errcode"
)

// storeErr is a failure of the disk or the index. A full disk is
// failedToDownloadAvatarAssets, reason insufficientStorage; errors.Is(err,
// syscall.ENOSPC) still holds.
func storeErr(op string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Phase: errcode.PhaseStore,
			Reason: errcode.ReasonInsufficientStorage, Message: "store: " + op + ": no space left on device", Err: err}
	}
	return &errcode.Error{Code: errcode.Internal, Phase: errcode.PhaseStore, Message: fmt.Sprintf("store: %s: %v", op, err), Err: err}
}

func notCached(id string) error {
	return &errcode.Error{Code: errcode.AvatarAssetMissing, Phase: errcode.PhaseLocal, Reason: errcode.ReasonNotCached,
		AvatarID: id, Message: "avatar is not cached"}
}

func mismatch(reason, digest, format string, args ...any) error {
	return &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Phase: errcode.PhaseVerify, Reason: reason,
		Transient: true, Message: fmt.Sprintf("blob %s: ", digest) + fmt.Sprintf(format, args...)}
}

func badDigest(d string) error {
	if len(d) > 80 {
		d = d[:80] + "..."
	}
	return &errcode.Error{Code: errcode.Internal, Phase: errcode.PhaseStore, Message: fmt.Sprintf("store: %q is not a sha256 hex digest", d)}
}
