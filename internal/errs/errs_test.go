package errs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/assetd/assetd/apitype/errcode"
)

func TestFrom(t *testing.T) {
	if From(nil) != nil {
		t.Error("From(nil) != nil")
	}
	if c := From(fmt.Errorf("x: %w", context.Canceled)).Code; c != errcode.Cancelled {
		t.Errorf("cancelled context -> %s", c)
	}
	if c := From(errors.New("boom")).Code; c != errcode.Internal {
		t.Errorf("plain error -> %s", c)
	}
}

func TestHTTPStatusAndExitCode(t *testing.T) {
	tests := []struct {
		err       *errcode.Error
		status    int
		exit      int
		transient bool
	}{
		{&errcode.Error{Code: errcode.AvatarIDUnrecognized, Reason: errcode.ReasonInvalidID}, 400, 2, false},
		{&errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Reason: errcode.ReasonNoOrigin}, 502, 2, false},
		{&errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Reason: errcode.ReasonInsecure, Phase: errcode.PhaseLocal}, 502, 2, false},
		{&errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Reason: errcode.ReasonInsecure, Phase: errcode.PhaseDownload}, 502, 1, false},
		{&errcode.Error{Code: errcode.AvatarIDUnrecognized}, 404, 1, false},
		{&errcode.Error{Code: errcode.AvatarAssetMissing, Reason: errcode.ReasonNotCached}, 404, 1, false},
		{&errcode.Error{Code: errcode.AvatarAssetMissing, Reason: errcode.ReasonDamaged}, 409, 1, false},
		{&errcode.Error{Code: errcode.AppIDUnrecognized}, 403, 4, false},
		{&errcode.Error{Code: errcode.SessionTokenInvalid}, 401, 4, false},
		{&errcode.Error{Code: errcode.SessionTokenExpired}, 401, 4, false},
		{&errcode.Error{Code: errcode.InsufficientBalance}, 402, 4, false},
		{&errcode.Error{Code: errcode.SessionTimeout, Transient: true}, 504, 1, true},
		{&errcode.Error{Code: errcode.ConcurrentLimitExceeded, Transient: true}, 429, 1, true},
		{&errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Transient: true}, 502, 1, true},
		{&errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Reason: errcode.ReasonInsufficientStorage}, 507, 1, false},
		{&errcode.Error{Code: errcode.ServerError, HTTPStatus: 500}, 502, 1, false},
		{&errcode.Error{Code: errcode.Cancelled}, StatusClientClosedRequest, 130, false},
		{&errcode.Error{Code: errcode.BadRequest}, 400, 2, false},
		{&errcode.Error{Code: errcode.NotFound}, 404, 2, false},
		{&errcode.Error{Code: errcode.MethodNotAllowed}, 405, 2, false},
		{&errcode.Error{Code: errcode.Forbidden}, 403, 2, false},
		{&errcode.Error{Code: errcode.PayloadTooLarge}, 413, 2, false},
		{&errcode.Error{Code: errcode.DaemonNotRunning}, 503, 3, false},
		{&errcode.Error{Code: errcode.Internal}, 500, 1, false},
	}
	for _, tt := range tests {
		name := string(tt.err.Code) + "/" + tt.err.Reason
		t.Run(name, func(t *testing.T) {
			err := fmt.Errorf("wrapped: %w", tt.err)
			if got := HTTPStatus(err); got != tt.status {
				t.Errorf("HTTPStatus = %d, want %d", got, tt.status)
			}
			if got := ExitCode(err); got != tt.exit {
				t.Errorf("ExitCode = %d, want %d", got, tt.exit)
			}
			if got := IsTransient(err); got != tt.transient {
				t.Errorf("IsTransient = %v, want %v", got, tt.transient)
			}
		})
	}
	if ExitCode(nil) != 0 || HTTPStatus(errors.New("x")) != http.StatusInternalServerError {
		t.Error("nil or plain error mapped wrongly")
	}
}
