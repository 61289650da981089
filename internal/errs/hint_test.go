package errs

import (
	"testing"

	"github.com/assetd/assetd/apitype/errcode"
)

func TestHintFollowsTheReason(t *testing.T) {
	f := Facts{ConfigPath: "/etc/assetd/assetd.toml", OriginURL: "https://cdn.example/v1"}
	tests := []struct {
		e    *errcode.Error
		want string
	}{
		{&errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Reason: errcode.ReasonNoOrigin}, "set origin.url in /etc/assetd/assetd.toml"},
		{&errcode.Error{Code: errcode.AvatarAssetMissing, Reason: errcode.ReasonNotCached, AvatarID: "nobody"}, "run: assetd preload nobody"},
		{&errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Reason: errcode.ReasonInsufficientStorage, Hint: "raise store.max_bytes (now 5.0 MiB; this avatar needs 8.6 MiB)"},
			"raise store.max_bytes (now 5.0 MiB; this avatar needs 8.6 MiB)"},
		{&errcode.Error{Code: errcode.AvatarAssetMissing, Reason: errcode.ReasonUntrusted, AvatarID: "rohan"},
			"run: assetd preload rohan to fetch it again signed by a key in origin.trusted_keys, or add its key to origin.trusted_keys in /etc/assetd/assetd.toml"},
		{&errcode.Error{Code: errcode.AvatarIDUnrecognized, Reason: errcode.ReasonPlainNotFound, AvatarID: "aria"},
			"check origin.url (https://cdn.example/v1) in /etc/assetd/assetd.toml: it must be the root of the published tree (serving /v1/avatars/{id}/manifest); or publish aria there"},
		{&errcode.Error{Code: errcode.ConcurrentLimitExceeded, Reason: errcode.ReasonTooManyLoads},
			"wait for your loads to finish (assetd ls), or cancel some (assetd cancel); api.max_loads_per_uid in /etc/assetd/assetd.toml sets how many run at once"},
		{&errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Reason: errcode.ReasonNetwork}, "check that origin.url (https://cdn.example/v1) is reachable from this machine, then retry"},
		{&errcode.Error{Code: errcode.Forbidden}, ""},
	}
	for _, tt := range tests {
		if got := f.Hint(tt.e); got != tt.want {
			t.Errorf("%s/%s: hint %q, want %q", tt.e.Code, tt.e.Reason, got, tt.want)
		}
	}
	if got := (Facts{}).Hint(&errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Reason: errcode.ReasonNoOrigin}); got != "set origin.url in a configuration file passed to assetd serve --config" {
		t.Errorf("no config file: %q", got)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 20: "5.0 MiB", 9000000: "8.6 MiB", 256 << 20: "256.0 MiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
