package manifest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"

	"github.com/assetd/assetd/apitype/errcode"
)

// SignedBytes returns the bytes a manifest's signature covers: the JCS form
// of the manifest object as received, with its "signature" member removed.
// Working from the raw document keeps fields this version does not know
// under the signature. A document with a member name twice is refused.
func SignedBytes(raw []byte) ([]byte, error) {
	obj, err := decodeObject(raw)
	if err != nil {
		return nil, err
	}
	return signedForm(obj)
}

// signedForm is the canonical form of the document obj without its
// "signature" member. It does not change obj.
func signedForm(obj map[string]any) ([]byte, error) {
	if _, ok := obj["signature"]; ok {
		obj = maps.Clone(obj)
		delete(obj, "signature")
	}
	var b bytes.Buffer
	if err := writeCanonical(&b, obj); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func decodeObject(raw []byte) (map[string]any, error) {
	tree, err := decodeTree(raw)
	if err != nil {
		return nil, err
	}
	obj, ok := tree.(map[string]any)
	if !ok {
		return nil, errors.New("the document is not a JSON object")
	}
	return obj, nil
}

// Sign signs the manifest document raw with priv and returns the document
// with its signature member set, in canonical form.
func Sign(raw []byte, keyID string, priv ed25519.PrivateKey) ([]byte, error) {
	obj, err := decodeObject(raw)
	if err != nil {
		return nil, err
	}
	msg, err := signedForm(obj)
	if err != nil {
		return nil, err
	}
	obj["signature"] = map[string]any{
		"keyId":   keyID,
		"ed25519": base64.StdEncoding.EncodeToString(ed25519.Sign(priv, msg)),
	}
	var b bytes.Buffer
	if err := writeCanonical(&b, obj); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Verify checks the document's signature against keys: the signature must
// be one of a key of keys over exactly the document Decode built the
// Manifest from. With no keys every document passes. The error is
// failedToFetchAvatarMetadata with reason badSignature.
func (d *Document) Verify(keys []ed25519.PublicKey) error {
	if len(keys) == 0 {
		return nil
	}
	m := d.Manifest
	bad := func(format string, args ...any) error {
		return &errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Phase: errcode.PhaseMetadata,
			AvatarID: m.AvatarID, Reason: errcode.ReasonBadSignature, Message: fmt.Sprintf(format, args...)}
	}
	if m.Signature == nil {
		return bad("manifest is not signed and trusted keys are configured")
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature.Ed25519)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return bad("manifest signature is not a base64 ed25519 signature")
	}
	if d.signErr != nil || d.signed == nil {
		return bad("manifest cannot be canonicalized: %v", d.signErr)
	}
	// The keyId is not signed: it only says which key to try first.
	for _, named := range []bool{true, false} {
		for _, k := range keys {
			if (KeyID(k) == m.Signature.KeyID) == named && ed25519.Verify(k, d.signed, sig) {
				return nil
			}
		}
	}
	return bad("manifest signature (key %q) matches no trusted key", m.Signature.KeyID)
}

// KeyID names a public key in a manifest's signature: the first 8 hex
// digits of its sha256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:4])
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
