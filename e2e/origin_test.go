package e2e

import (
	"testing"

	"github.com/assetd/assetd/internal/testkit"
)

// The test origin and its avatars are testkit's.
type (
	origin = testkit.Origin
	avatar = testkit.Avatar
	asset  = testkit.Asset
)

// newAvatar makes an avatar of random files of the given sizes.
func newAvatar(t *testing.T, id string, sizes ...int) *avatar {
	t.Helper()
	return testkit.RandomAvatar(t, id, sizes...)
}

func newOrigin(t *testing.T, avatars ...*avatar) *origin {
	t.Helper()
	return testkit.NewOrigin(t, avatars...)
}
