package manifest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/assetd/assetd/apitype/errcode"
)

const hexA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func doc(assets string) []byte {
	return []byte(`{"schema":1,"avatarId":"rohan","version":"1","assets":[` + assets + `]}`)
}

func TestParseValid(t *testing.T) {
	m, err := Parse(doc(`{"path":"model.splat","size":3,"sha256":"`+hexA+`"},{"path":"anim/idle.bin","size":0,"sha256":"`+hexA+`","url":"https://cdn.example/x"}`), "rohan", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Assets) != 2 || m.TotalSize() != 3 {
		t.Errorf("parsed %+v", m)
	}
}

func TestParseRejectsHostileManifests(t *testing.T) {
	asset := func(path string, size string, sum string) string {
		return `{"path":` + path + `,"size":` + size + `,"sha256":"` + sum + `"}`
	}
	many := make([]string, MaxAssets+1)
	for i := range many {
		many[i] = asset(`"f`+strings.Repeat("x", i%50)+string(rune('a'+i%26))+`"`, "1", hexA)
	}
	tests := map[string][]byte{
		"dotdot":         doc(asset(`"../etc/passwd"`, "1", hexA)),
		"inner dotdot":   doc(asset(`"a/../../b"`, "1", hexA)),
		"absolute":       doc(asset(`"/etc/passwd"`, "1", hexA)),
		"backslash":      doc(asset(`"a\\b"`, "1", hexA)),
		"nul":            doc(asset(`"a\u0000b"`, "1", hexA)),
		"empty segment":  doc(asset(`"a//b"`, "1", hexA)),
		"dot segment":    doc(asset(`"./a"`, "1", hexA)),
		"empty path":     doc(asset(`""`, "1", hexA)),
		"long path":      doc(asset(`"`+strings.Repeat("a", 256)+`"`, "1", hexA)),
		"duplicate":      doc(asset(`"a"`, "1", hexA) + "," + asset(`"a"`, "2", hexA)),
		"negative size":  doc(asset(`"a"`, "-1", hexA)),
		"enormous size":  doc(asset(`"a"`, "4611686018427387904", hexA)),
		"over max size":  doc(asset(`"a"`, "4294967297", hexA)),
		"upper hex":      doc(asset(`"a"`, "1", strings.ToUpper(hexA))),
		"short hex":      doc(asset(`"a"`, "1", hexA[:63])),
		"non hex":        doc(asset(`"a"`, "1", strings.Repeat("g", 64))),
		"file url":       doc(`{"path":"a","size":1,"sha256":"` + hexA + `","url":"file:///etc/passwd"}`),
		"too many":       doc(strings.Join(many, ",")),
		"wrong id":       []byte(`{"schema":1,"avatarId":"mei","version":"1","assets":[]}`),
		"wrong schema":   []byte(`{"schema":2,"avatarId":"rohan","version":"1","assets":[]}`),
		"no version":     []byte(`{"schema":1,"avatarId":"rohan","assets":[]}`),
		"not json":       []byte(`<html>`),
		"trailing data":  []byte(`{"schema":1,"avatarId":"rohan","version":"1","assets":[]} {}`),
		"2 MiB manifest": append(doc(asset(`"a"`, "1", hexA)), []byte(strings.Repeat(" ", 2<<20))...),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(data, "rohan", 0)
			if !errors.Is(err, &errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Reason: errcode.ReasonInvalidManifest}) {
				t.Fatalf("Parse = %v, want invalidManifest", err)
			}
		})
	}
}

func TestValidateID(t *testing.T) {
	good := []string{"rohan", "a", "A-b_c.9", strings.Repeat("x", 128), "a..b"}
	bad := []string{"", ".hidden", "../x", "a/b", "%2e%2e", strings.Repeat("x", 129), "a b", "é", "a\x00"}
	for _, id := range good {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v", id, err)
		}
	}
	for _, id := range bad {
		err := ValidateID(id)
		if !errors.Is(err, &errcode.Error{Code: errcode.AvatarIDUnrecognized, Reason: errcode.ReasonInvalidID}) {
			t.Errorf("ValidateID(%q) = %v, want avatarIDUnrecognized/invalidId", id, err)
		}
	}
}

func TestCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"b":1,"a":[true,null,"x"]}`, `{"a":[true,null,"x"],"b":1}`},
		{`{ "s" : "<&>\u00e9\n\u001f" }`, `{"s":"<&>é\n\u001f"}`},
		{`[1.0, 1e21, 1e-7, 0.5, -0, 100]`, `[1,1e+21,1e-7,0.5,0,100]`},
		// RFC 8785 §3.2.3: UTF-16 order puts U+1F600 (D83D DE00) before U+FB33.
		{`{"\ufb33":4,"\u20ac":1,"\ud83d\ude00":2,"\r":3}`, `{"\r":3,"€":1,"😀":2,"דּ":4}`},
	}
	for _, tt := range tests {
		got, err := Canonical([]byte(tt.in))
		if err != nil {
			t.Fatalf("Canonical(%s): %v", tt.in, err)
		}
		if string(got) != tt.want {
			t.Errorf("Canonical(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestSignVerify(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	raw := doc(`{"path":"a","size":1,"sha256":"` + hexA + `"}`)
	raw = []byte(strings.Replace(string(raw), `"schema":1`, `"schema":1,"extra":{"z":1,"y":2}`, 1))
	signed, err := Sign(raw, "k1", priv)
	if err != nil {
		t.Fatal(err)
	}
	parse := func(b []byte) *Document {
		m, err := Decode(b, "rohan", 0)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	badSig := &errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Reason: errcode.ReasonBadSignature}

	if err := parse(signed).Verify([]ed25519.PublicKey{otherPub, pub}); err != nil {
		t.Errorf("signed manifest: %v", err)
	}
	// Reformatting does not break the signature: it covers the canonical form.
	var pretty map[string]any
	_ = json.Unmarshal(signed, &pretty)
	reformatted, _ := json.MarshalIndent(pretty, "", "  ")
	if err := parse(reformatted).Verify([]ed25519.PublicKey{pub}); err != nil {
		t.Errorf("reformatted manifest: %v", err)
	}
	tampered := []byte(strings.Replace(string(signed), `"size":1`, `"size":2`, 1))
	if err := parse(tampered).Verify([]ed25519.PublicKey{pub}); !errors.Is(err, badSig) {
		t.Errorf("tampered: %v", err)
	}
	if err := parse(signed).Verify([]ed25519.PublicKey{otherPub}); !errors.Is(err, badSig) {
		t.Errorf("wrong key: %v", err)
	}
	if err := parse(raw).Verify([]ed25519.PublicKey{pub}); !errors.Is(err, badSig) {
		t.Errorf("unsigned: %v", err)
	}
	if err := parse(raw).Verify(nil); err != nil {
		t.Errorf("no trusted keys: %v", err)
	}
}

// TestDecodeRefusesAmbiguousDocuments: a document two JSON readers could
// read differently is refused, at every depth, whatever is signed.
func TestDecodeRefusesAmbiguousDocuments(t *testing.T) {
	asset := `{"path":"a","size":1,"sha256":"` + hexA + `"}`
	tests := map[string]string{
		"assets twice":          `{"assets":[],"schema":1,"avatarId":"rohan","version":"1","assets":[` + asset + `]}`,
		"escaped name twice":    `{"schema":1,"avatarId":"rohan","version":"1","assets":[` + asset + `],"\u0061ssets":[]}`,
		"schema twice":          `{"schema":2,"schema":1,"avatarId":"rohan","version":"1","assets":[]}`,
		"url twice in an asset": `{"schema":1,"avatarId":"rohan","version":"1","assets":[{"url":"http://x/","path":"a","size":1,"sha256":"` + hexA + `","url":null}]}`,
		"signature twice":       `{"schema":1,"avatarId":"rohan","version":"1","assets":[],"signature":{"ed25519":"a"},"signature":{"ed25519":"b"}}`,
		"deep in an extension":  `{"schema":1,"avatarId":"rohan","version":"1","assets":[],"x":[{"y":{"z":1,"z":2}}]}`,
		"size beyond 2^53":      `{"schema":1,"avatarId":"rohan","version":"1","assets":[{"path":"a","size":9007199254740993,"sha256":"` + hexA + `"}]}`,
		"size as a fraction":    `{"schema":1,"avatarId":"rohan","version":"1","assets":[{"path":"a","size":1.0,"sha256":"` + hexA + `"}]}`,
		"nested 40 deep":        `{"schema":1,"avatarId":"rohan","version":"1","assets":[],"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`,
		"number beyond float64": `{"schema":1,"avatarId":"rohan","version":"1","assets":[],"x":1e400}`,
		"asset not an object":   `{"schema":1,"avatarId":"rohan","version":"1","assets":["a"]}`,
		"path not a string":     `{"schema":1,"avatarId":"rohan","version":"1","assets":[{"path":1,"size":1,"sha256":"` + hexA + `"}]}`,
	}
	for name, doc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Decode([]byte(doc), "rohan", 0)
			if !errors.Is(err, &errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Reason: errcode.ReasonInvalidManifest}) {
				t.Fatalf("Decode = %v, want invalidManifest", err)
			}
		})
	}
	// Names differ from the protocol's only by case: not the protocol's
	// members, ignored, and covered by the signature like any other.
	m, err := Parse([]byte(`{"schema":1,"avatarId":"rohan","version":"1","assets":[],"Assets":[`+asset+`],"AvatarID":"mei"}`), "rohan", 0)
	if err != nil || len(m.Assets) != 0 {
		t.Fatalf("Parse = %+v, %v; want no assets", m, err)
	}
	if _, err := Canonical([]byte(`{"a":1,"a":2}`)); err == nil {
		t.Errorf("Canonical accepted a name twice")
	}
}

// TestSignedDuplicateAssets is the attack of issue 12: a copy of the
// signed document with a hostile "assets" member placed before the signed
// one. It must not verify and be used; it must not even decode.
func TestSignedDuplicateAssets(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	signed, err := Sign(doc(`{"path":"a","size":1,"sha256":"`+hexA+`"}`), "k1", priv)
	if err != nil {
		t.Fatal(err)
	}
	evil := []byte(`{"assets":[{"path":"a","size":1,"sha256":"` + hexA + `","url":"http://evil.example/a"}],` + string(signed[1:]))
	d, err := Decode(evil, "rohan", 0)
	if err == nil {
		err = d.Verify([]ed25519.PublicKey{pub})
		t.Fatalf("decoded, verify = %v, assets %+v", err, d.Manifest.Assets)
	}
	var dup *DuplicateNameError
	if !errors.As(err, &dup) || dup.Name != "assets" {
		t.Fatalf("err = %v, want a DuplicateNameError for assets", err)
	}
	if _, err := SignedBytes(evil); err == nil {
		t.Errorf("SignedBytes accepted the document")
	}
	if _, err := Sign(evil, "k1", priv); err == nil {
		t.Errorf("Sign accepted the document")
	}
}

// TestVerifyKeyOrder: the signature's keyId picks the key tried first,
// but a keyId that names another key (it is not signed) or none still
// verifies with any key of the set.
func TestVerifyKeyOrder(t *testing.T) {
	pub1, priv1, _ := ed25519.GenerateKey(rand.Reader)
	pub2, _, _ := ed25519.GenerateKey(rand.Reader)
	raw := doc(`{"path":"a","size":1,"sha256":"` + hexA + `"}`)
	for _, keyID := range []string{KeyID(pub1), KeyID(pub2), "", "zz"} {
		signed, err := Sign(raw, keyID, priv1)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Decode(signed, "rohan", 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Verify([]ed25519.PublicKey{pub2, pub1}); err != nil {
			t.Errorf("keyId %q: %v", keyID, err)
		}
		if err := d.Verify([]ed25519.PublicKey{pub2}); err == nil {
			t.Errorf("keyId %q: verified by a key that did not sign", keyID)
		}
	}
	if len(KeyID(pub1)) != 8 {
		t.Errorf("KeyID %q is not 8 hex digits", KeyID(pub1))
	}
}
