package errs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestTableCoversEveryClientCode(t *testing.T) {
	client := []Code{AppIDUnrecognized, SessionTokenInvalid, SessionTokenExpired, InsufficientBalance,
		SessionTimeout, ConcurrentLimitExceeded, AvatarIDUnrecognized, AvatarAssetMissing,
		FailedToFetchAvatarMetadata, FailedToDownloadAvatarAssets, ServerError}
	for _, c := range client {
		i, ok := Lookup(c)
		if !ok {
			t.Fatalf("%s missing from the table", c)
		}
		if i.IOS == "" || i.Android == "" || i.Description == "" || i.Recovery == "" {
			t.Errorf("%s: incomplete entry %+v", c, i)
		}
		if c != AvatarAssetMissing && i.Web != string(c) {
			t.Errorf("%s: Web spelling %q", c, i.Web)
		}
	}
	if got := Cancelled.Recovery(); got != "Load the avatar again if it is still needed." {
		t.Errorf("cancelled recovery = %q", got)
	}
	if got, _ := Lookup(ServerError); got.Android != "ServerError(message, code)" {
		t.Errorf("ServerError android spelling = %q", got.Android)
	}
	if Code("nope").Known() {
		t.Error("unknown code reported known")
	}
}

func TestIsAndAs(t *testing.T) {
	cause := errors.New("connection reset")
	e := &Error{Code: FailedToDownloadAvatarAssets, Reason: ReasonHashMismatch, Err: cause}
	wrapped := fmt.Errorf("load rohan: %w", e)
	if !errors.Is(wrapped, FailedToDownloadAvatarAssets) {
		t.Error("errors.Is by code failed")
	}
	if errors.Is(wrapped, AvatarAssetMissing) {
		t.Error("errors.Is matched another code")
	}
	if !errors.Is(wrapped, &Error{Code: FailedToDownloadAvatarAssets, Reason: ReasonHashMismatch}) {
		t.Error("errors.Is by code and reason failed")
	}
	if errors.Is(wrapped, &Error{Code: FailedToDownloadAvatarAssets, Reason: ReasonSizeMismatch}) {
		t.Error("errors.Is matched another reason")
	}
	if !errors.Is(wrapped, cause) {
		t.Error("cause not reachable through Unwrap")
	}
	var got *Error
	if !errors.As(wrapped, &got) || got != e {
		t.Error("errors.As failed")
	}
}

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

func TestJSONRoundTrip(t *testing.T) {
	e := &Error{Code: FailedToDownloadAvatarAssets, Message: "bad bytes", Phase: PhaseVerify,
		AvatarID: "rohan", Transient: true, Reason: ReasonHashMismatch, HTTPStatus: 503,
		ServerCode: "x", Asset: "model.splat", Err: errors.New("secret cause")}
	b, err := json.Marshal(Envelope{Error: e.Body()})
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]map[string]any
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	got := env["error"]
	for _, k := range []string{"code", "message", "phase", "avatarId", "transient", "recovery", "reason", "httpStatus", "serverCode", "asset"} {
		if _, ok := got[k]; !ok {
			t.Errorf("field %q missing from %s", k, b)
		}
	}
	if got["recovery"] != "Check network connectivity and retry." {
		t.Errorf("recovery = %v", got["recovery"])
	}
	var back Error
	if err := json.Unmarshal(mustJSON(t, e), &back); err != nil {
		t.Fatal(err)
	}
	if back.Code != e.Code || back.Asset != e.Asset || back.Err != nil {
		t.Errorf("round trip = %+v", back)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestErrorString(t *testing.T) {
	e := &Error{Code: AvatarAssetMissing, AvatarID: "rohan", Asset: "a.bin", Message: "gone", Err: errors.New("stat: no such file")}
	want := "avatarAssetMissing [rohan a.bin]: gone: stat: no such file"
	if e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
}
