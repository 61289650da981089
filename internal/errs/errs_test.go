package errs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestFrom(t *testing.T) {
	if From(nil) != nil {
		t.Error("From(nil) != nil")
	}
	if c := From(fmt.Errorf("x: %w", context.Canceled)).Code; c != Cancelled {
		t.Errorf("cancelled context -> %s", c)
	}
	if c := From(errors.New("boom")).Code; c != Internal {
		t.Errorf("plain error -> %s", c)
	}
}

func TestHTTPStatusAndExitCode(t *testing.T) {
	tests := []struct {
		err       *Error
		status    int
		exit      int
		transient bool
	}{
		{&Error{Code: AvatarIDUnrecognized, Reason: ReasonInvalidID}, 400, 2, false},
		{&Error{Code: FailedToFetchAvatarMetadata, Reason: ReasonNoOrigin}, 502, 2, false},
		{&Error{Code: FailedToFetchAvatarMetadata, Reason: ReasonInsecure, Phase: PhaseLocal}, 502, 2, false},
		{&Error{Code: FailedToDownloadAvatarAssets, Reason: ReasonInsecure, Phase: PhaseDownload}, 502, 1, false},
		{&Error{Code: AvatarIDUnrecognized}, 404, 1, false},
		{&Error{Code: AvatarAssetMissing, Reason: ReasonNotCached}, 404, 1, false},
		{&Error{Code: AvatarAssetMissing, Reason: ReasonDamaged}, 409, 1, false},
		{&Error{Code: AppIDUnrecognized}, 403, 4, false},
		{&Error{Code: SessionTokenInvalid}, 401, 4, false},
		{&Error{Code: SessionTokenExpired}, 401, 4, false},
		{&Error{Code: InsufficientBalance}, 402, 4, false},
		{&Error{Code: SessionTimeout, Transient: true}, 504, 1, true},
		{&Error{Code: ConcurrentLimitExceeded, Transient: true}, 429, 1, true},
		{&Error{Code: FailedToFetchAvatarMetadata, Transient: true}, 502, 1, true},
		{&Error{Code: FailedToDownloadAvatarAssets, Reason: ReasonInsufficientStorage}, 507, 1, false},
		{&Error{Code: ServerError, HTTPStatus: 500}, 502, 1, false},
		{&Error{Code: Cancelled}, StatusClientClosedRequest, 130, false},
		{&Error{Code: BadRequest}, 400, 2, false},
		{&Error{Code: NotFound}, 404, 2, false},
		{&Error{Code: MethodNotAllowed}, 405, 2, false},
		{&Error{Code: Forbidden}, 403, 2, false},
		{&Error{Code: PayloadTooLarge}, 413, 2, false},
		{&Error{Code: DaemonNotRunning}, 503, 3, false},
		{&Error{Code: Internal}, 500, 1, false},
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
