package errcode

import (
	"encoding/json"
	"errors"
	"fmt"
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

func TestHintOnTheWire(t *testing.T) {
	e := &Error{Code: AvatarAssetMissing, Reason: ReasonNotCached, Hint: "run: assetd preload x"}
	b, _ := json.Marshal(e)
	var back Error
	if err := json.Unmarshal(b, &back); err != nil || back.Hint != e.Hint || back.Recovery() != "Re-download with AvatarManager.load()." {
		t.Errorf("%s -> %+v, %v", b, back, err)
	}
}
