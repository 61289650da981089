// Package manifest owns the avatar manifest of the origin protocol
// (docs/origin-protocol.md): its Go form, the validation every manifest
// passes before anything trusts it, the rules for avatar IDs and asset
// paths, and the ed25519 signature over its canonical (RFC 8785) form.
//
// A document is decoded once (Decode): the Manifest and the bytes its
// signature covers are both made from that one reading, and a document
// that JSON readers could read differently (a member name twice at any
// depth) is refused, so what is verified is what is used.
//
// It sits low in the layering (docs/architecture.md), so that fetch, store,
// manager and publish can all share one definition.
package manifest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/assetd/assetd/apitype/errcode"
)

// Limits of the origin protocol.
const (
	SchemaVersion        = 1
	MaxManifestBytes     = 1 << 20 // after any Content-Encoding is undone
	MaxAssets            = 10000
	MaxPathBytes         = 255
	MaxIDLength          = 128
	MaxVersionBytes      = 128
	DefaultMaxAssetBytes = 4 << 30
)

// Manifest is an avatar's metadata: a version and the files that make it.
type Manifest struct {
	Schema    int        `json:"schema"`
	AvatarID  string     `json:"avatarId"`
	Version   string     `json:"version"`
	Assets    []Asset    `json:"assets"`
	Signature *Signature `json:"signature,omitempty"`
}

// Asset is one file of an avatar. Size and SHA256 are the truth: bytes
// that do not match both are never stored as valid.
type Asset struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	URL    string `json:"url,omitempty"`
}

// Signature is the optional ed25519 signature of a manifest.
type Signature struct {
	KeyID   string `json:"keyId,omitempty"`
	Ed25519 string `json:"ed25519"`
}

// TotalSize is the sum of the assets' sizes.
func (m *Manifest) TotalSize() int64 {
	var n int64
	for _, a := range m.Assets {
		n += a.Size
	}
	return n
}

// Parse decodes and validates a manifest for the avatar wantID: Decode
// without the signature. Every failure is failedToFetchAvatarMetadata
// with reason invalidManifest. maxAssetBytes <= 0 means
// DefaultMaxAssetBytes.
func Parse(data []byte, wantID string, maxAssetBytes int64) (*Manifest, error) {
	d, err := Decode(data, wantID, maxAssetBytes)
	if err != nil {
		return nil, err
	}
	return d.Manifest, nil
}

// Document is a manifest document decoded once: the Manifest it holds and
// the bytes its signature covers, both made from the same reading of it.
type Document struct {
	Manifest *Manifest
	signed   []byte // the canonical form without "signature"; nil if unsigned
	signErr  error  // why signed could not be made
}

// Decode decodes and validates the manifest document data of the avatar
// wantID. Members this version does not know are ignored but stay under
// the signature. A document that JSON readers could read differently is
// refused: a member name twice in one object at any depth, an integer
// beyond ±2^53, nesting deeper than 32 levels, data after the object.
// Every failure is failedToFetchAvatarMetadata with reason
// invalidManifest. maxAssetBytes <= 0 means DefaultMaxAssetBytes.
func Decode(data []byte, wantID string, maxAssetBytes int64) (*Document, error) {
	if len(data) > MaxManifestBytes {
		return nil, invalid(wantID, "manifest is %d bytes, more than %d", len(data), MaxManifestBytes)
	}
	tree, err := decodeTree(data)
	if err != nil {
		var dup *DuplicateNameError
		switch {
		case errors.As(err, &dup):
			e := invalid(wantID, "manifest is ambiguous: %v", err)
			e.Err = err
			return nil, e
		case err == errTrailing:
			return nil, invalid(wantID, "manifest has data after its JSON object")
		}
		e := invalid(wantID, "manifest is not valid JSON: %v", err)
		e.Err = err
		return nil, e
	}
	m, err := fromTree(tree)
	if err != nil {
		return nil, invalid(wantID, "manifest: %v", err)
	}
	if m.AvatarID != wantID {
		return nil, invalid(wantID, "manifest is for avatar %q, not %q", truncate(m.AvatarID), wantID)
	}
	if err := m.Validate(maxAssetBytes); err != nil {
		return nil, err
	}
	d := &Document{Manifest: m}
	if m.Signature != nil {
		d.signed, d.signErr = signedForm(tree.(map[string]any))
	}
	return d, nil
}

// Validate checks every rule of the origin protocol.
func (m *Manifest) Validate(maxAssetBytes int64) error {
	if maxAssetBytes <= 0 {
		maxAssetBytes = DefaultMaxAssetBytes
	}
	if m.Schema != SchemaVersion {
		return invalid(m.AvatarID, "manifest schema %d is not supported (want %d)", m.Schema, SchemaVersion)
	}
	if err := ValidateID(m.AvatarID); err != nil {
		return invalid(m.AvatarID, "manifest avatarId: %v", err)
	}
	if m.Version == "" || len(m.Version) > MaxVersionBytes || !printable(m.Version) {
		return invalid(m.AvatarID, "manifest version %q must be 1-%d printable bytes", truncate(m.Version), MaxVersionBytes)
	}
	if len(m.Assets) > MaxAssets {
		return invalid(m.AvatarID, "manifest lists %d assets, more than %d", len(m.Assets), MaxAssets)
	}
	seen := make(map[string]bool, len(m.Assets))
	for i, a := range m.Assets {
		if err := ValidatePath(a.Path); err != nil {
			return invalid(m.AvatarID, "asset %d: %v", i, err)
		}
		if seen[a.Path] {
			return invalid(m.AvatarID, "asset path %q appears twice", a.Path)
		}
		seen[a.Path] = true
		if a.Size < 0 || a.Size > maxAssetBytes {
			return invalid(m.AvatarID, "asset %q: size %d is outside 0..%d", a.Path, a.Size, maxAssetBytes)
		}
		if !ValidDigest(a.SHA256) {
			return invalid(m.AvatarID, "asset %q: sha256 %q is not 64 lowercase hex digits", a.Path, truncate(a.SHA256))
		}
		if a.URL != "" {
			u, err := url.Parse(a.URL)
			if err != nil || (u.IsAbs() && u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
				return invalid(m.AvatarID, "asset %q: url %q is not an http(s) URL", a.Path, truncate(a.URL))
			}
		}
	}
	if m.Signature != nil && m.Signature.Ed25519 == "" {
		return invalid(m.AvatarID, "manifest signature has no ed25519 value")
	}
	return nil
}

// ValidateID checks an avatar ID: 1-128 characters of [A-Za-z0-9._-], not
// starting with a dot. The error is avatarIDUnrecognized, reason invalidId,
// with one message for every way of breaking the rule (the daemon, the
// client and the command line all say the same).
func ValidateID(id string) error {
	ok := id != "" && len(id) <= MaxIDLength && id[0] != '.'
	for i := 0; ok && i < len(id); i++ {
		ok = idChar(id[i])
	}
	if ok {
		return nil
	}
	return &errcode.Error{Code: errcode.AvatarIDUnrecognized, Phase: errcode.PhaseLocal, Reason: errcode.ReasonInvalidID,
		Message: fmt.Sprintf("invalid avatar ID %q: an avatar ID is 1 to %d characters of A-Z a-z 0-9 . _ - and does not start with a dot", truncate(id), MaxIDLength)}
}

func idChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// ValidatePath checks an asset path: relative, '/'-separated, no empty, "."
// or ".." segment, no backslash or NUL or other control byte, valid UTF-8,
// at most 255 bytes.
func ValidatePath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty path")
	case len(p) > MaxPathBytes:
		return fmt.Errorf("path of %d bytes, more than %d", len(p), MaxPathBytes)
	case p[0] == '/':
		return fmt.Errorf("path %q is absolute", truncate(p))
	case strings.ContainsAny(p, "\\\x00"):
		return fmt.Errorf("path %q has a backslash or NUL", truncate(p))
	case !printable(p):
		return fmt.Errorf("path %q has a control character or is not UTF-8", truncate(p))
	}
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "":
			return fmt.Errorf("path %q has an empty segment", p)
		case ".", "..":
			return fmt.Errorf("path %q has a %q segment", p, seg)
		}
	}
	return nil
}

// ValidDigest reports whether s is 64 lowercase hex digits.
func ValidDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return false
		}
	}
	return true
}

func invalid(id, format string, args ...any) *errcode.Error {
	return &errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Phase: errcode.PhaseMetadata, AvatarID: id,
		Reason: errcode.ReasonInvalidManifest, Message: fmt.Sprintf(format, args...)}
}

// truncate keeps hostile strings out of logs at a readable length.
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
