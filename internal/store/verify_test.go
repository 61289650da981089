package store

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/assetd/assetd/apitype/errcode"
)

// TestVerifyBlobNotRegular: a directory where a blob should be is damage
// (reason damaged), which the manager drops and fetches again, not an
// internal error.
func TestVerifyBlobNotRegular(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	defer s.Close()
	d := commitT(t, s, []byte("a blob"))
	if err := os.Remove(s.BlobPath(d)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(s.BlobPath(d), 0o700); err != nil {
		t.Fatal(err)
	}
	err := s.VerifyBlob(context.Background(), d)
	if !errors.Is(err, &errcode.Error{Code: errcode.AvatarAssetMissing, Reason: errcode.ReasonDamaged}) {
		t.Fatalf("VerifyBlob of a directory = %v", err)
	}
}
