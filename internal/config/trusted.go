package config

import (
	"crypto/ed25519"
	"fmt"

	"github.com/assetd/assetd/internal/manifest"
)

// TrustedKeys returns origin.trusted_keys decoded; nil when none is set
// (manifests need no signature then).
func (c *Config) TrustedKeys() ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for i, s := range c.Origin.TrustedKeys {
		k, err := manifest.ParsePublicKey(s)
		if err != nil {
			return nil, fmt.Errorf("origin.trusted_keys key %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
