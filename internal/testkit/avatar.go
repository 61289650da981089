package testkit

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"testing"

	"github.com/assetd/assetd/apitype"
)

// Asset is one file of a test avatar.
type Asset struct {
	Path   string
	Data   []byte
	SHA256 string // hex
}

// Avatar is a test avatar an Origin serves.
type Avatar struct {
	ID      string
	Version string
	Assets  []Asset
}

// Size is the sum of the asset sizes.
func (a *Avatar) Size() int64 {
	var n int64
	for _, x := range a.Assets {
		n += int64(len(x.Data))
	}
	return n
}

// Sum is the hex sha256 of b.
func Sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// RandomAvatar makes an avatar, version "1", of files of random bytes of
// the given sizes, named part0.bin, part1.bin, ...
func RandomAvatar(t testing.TB, id string, sizes ...int) *Avatar {
	t.Helper()
	return newAvatar(id, sizes, func(b []byte) {
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
	})
}

// SeededAvatar is RandomAvatar with pseudo-random bytes from seed: the
// same seed makes the same files.
func SeededAvatar(id string, seed uint64, sizes ...int) *Avatar {
	r := mrand.New(mrand.NewPCG(seed, 7))
	return newAvatar(id, sizes, func(b []byte) {
		for j := range b {
			b[j] = byte(r.Uint32())
		}
	})
}

func newAvatar(id string, sizes []int, fill func([]byte)) *Avatar {
	a := &Avatar{ID: id, Version: "1"}
	for i, n := range sizes {
		b := make([]byte, n)
		fill(b)
		a.Assets = append(a.Assets, Asset{Path: fmt.Sprintf("part%d.bin", i), Data: b, SHA256: Sum(b)})
	}
	return a
}

// CheckFiles reports every way got (an avatar the daemon answered) differs
// from want: another ID, another number of assets, an asset file that
// cannot be read or does not hold want's bytes. nil when they match.
func CheckFiles(want *Avatar, got *apitype.Avatar) error {
	if want == nil {
		return fmt.Errorf("avatar %s: the origin never served it", got.AvatarID)
	}
	if got.AvatarID != want.ID || len(got.Assets) != len(want.Assets) {
		return fmt.Errorf("avatar %s with %d assets, want %s with %d", got.AvatarID, len(got.Assets), want.ID, len(want.Assets))
	}
	byPath := map[string]Asset{}
	for _, x := range want.Assets {
		byPath[x.Path] = x
	}
	var errs []error
	for _, a := range got.Assets {
		b, err := os.ReadFile(a.LocalPath)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", got.AvatarID, a.Path, err))
			continue
		}
		if w, ok := byPath[a.Path]; !ok || !bytes.Equal(b, w.Data) || a.SHA256 != w.SHA256 {
			errs = append(errs, fmt.Errorf("%s %s: %d bytes at %s are not the origin's", got.AvatarID, a.Path, len(b), a.LocalPath))
		}
	}
	return errors.Join(errs...)
}
