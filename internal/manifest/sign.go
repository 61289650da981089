package manifest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/assetd/assetd/internal/errs"
)

// SignedBytes returns the bytes a manifest's signature covers: the JCS form
// of the manifest object as received, with its "signature" member removed.
// Working from the raw document keeps fields this version does not know
// under the signature.
func SignedBytes(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	delete(obj, "signature")
	doc, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	return Canonical(doc)
}

// Sign signs the manifest document raw with priv and returns the document
// with its signature member set, in canonical form.
func Sign(raw []byte, keyID string, priv ed25519.PrivateKey) ([]byte, error) {
	msg, err := SignedBytes(raw)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	obj["signature"] = map[string]any{
		"keyId":   keyID,
		"ed25519": base64.StdEncoding.EncodeToString(ed25519.Sign(priv, msg)),
	}
	doc, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	return Canonical(doc)
}

// Verify checks the signature of the parsed manifest m, whose document as
// received is raw, against keys. With no keys every manifest passes. The
// error is failedToFetchAvatarMetadata with reason badSignature.
func Verify(m *Manifest, raw []byte, keys []ed25519.PublicKey) error {
	if len(keys) == 0 {
		return nil
	}
	bad := func(format string, args ...any) error {
		return &errs.Error{Code: errs.FailedToFetchAvatarMetadata, Phase: errs.PhaseMetadata,
			AvatarID: m.AvatarID, Reason: errs.ReasonBadSignature, Message: fmt.Sprintf(format, args...)}
	}
	if m.Signature == nil {
		return bad("manifest is not signed and trusted keys are configured")
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature.Ed25519)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return bad("manifest signature is not a base64 ed25519 signature")
	}
	msg, err := SignedBytes(raw)
	if err != nil {
		return bad("manifest cannot be canonicalized: %v", err)
	}
	for _, k := range keys {
		if ed25519.Verify(k, msg, sig) {
			return nil
		}
	}
	return bad("manifest signature (key %q) matches no trusted key", m.Signature.KeyID)
}

// ParsePublicKey decodes a base64 ed25519 public key, as written in
// origin.trusted_keys and by `assetd keygen`.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("not a base64 ed25519 public key (%d bytes wanted)", ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}
