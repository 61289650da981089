package reliability

import "github.com/assetd/assetd/internal/testkit"

// The origin that serves the real binary, and its avatars, are testkit's.
type (
	binOrigin = testkit.Origin
	avatar    = testkit.Avatar
)

// newAvatar makes an avatar of pseudo-random files of the given sizes.
func newAvatar(id string, seed uint64, sizes ...int) *avatar {
	return testkit.SeededAvatar(id, seed, sizes...)
}

var newBinOrigin = testkit.NewOrigin
