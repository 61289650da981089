package manifest

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"testing"
)

// FuzzVerifiedIsUsed: for every document Decode accepts, the manifest it
// returns is exactly what the bytes its signature covers say, and what a
// last-name-wins reader of the document (encoding/json into a map) says.
// Signing the document and decoding the result gives the same manifest,
// which verifies. A difference is a signature bypass: the load would use
// fields the signer never wrote.
func FuzzVerifiedIsUsed(f *testing.F) {
	f.Add([]byte(`{"schema":1,"avatarId":"rohan","version":"1","assets":[{"path":"a","size":1,"sha256":"` + hexA + `","url":"https://cdn.example/a"}],"signature":{"keyId":"k","ed25519":"AA=="}}`))
	f.Add([]byte(`{"assets":[{"path":"a","size":1,"sha256":"` + hexA + `","url":"http://evil/"}],"schema":1,"avatarId":"rohan","version":"1","assets":[{"path":"a","size":1,"sha256":"` + hexA + `"}]}`))
	pub, priv, _ := ed25519.GenerateKey(nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Decode(data, "rohan", 1<<62)
		if err != nil {
			return
		}
		m := d.Manifest
		signed, err := SignedBytes(data)
		if err != nil {
			t.Fatalf("decoded, but SignedBytes fails: %v", err)
		}
		if d.signed != nil && string(d.signed) != string(signed) {
			t.Fatalf("two readings of the signed bytes:\n%s\n%s", d.signed, signed)
		}
		if err := sameAsJSON(m, signed, false); err != nil {
			t.Fatalf("used vs verified: %v\nused %+v\nverified %s", err, m, signed)
		}
		if err := sameAsJSON(m, data, true); err != nil {
			t.Fatalf("used vs a last-name-wins reading: %v\nused %+v", err, m)
		}
		re, err := Sign(data, "k", priv)
		if err != nil {
			t.Fatalf("decoded, but Sign fails: %v", err)
		}
		d2, err := Decode(re, "rohan", 1<<62)
		if err != nil {
			t.Fatalf("signed copy does not decode: %v\n%s", err, re)
		}
		if err := d2.Verify([]ed25519.PublicKey{pub}); err != nil {
			t.Fatalf("signed copy does not verify: %v", err)
		}
		if err := sameAsJSON(d2.Manifest, re, true); err != nil || fmt.Sprint(d2.Manifest.Assets) != fmt.Sprint(m.Assets) ||
			d2.Manifest.Version != m.Version || d2.Manifest.Schema != m.Schema {
			t.Fatalf("signed copy says something else: %v\n%+v\n%+v", err, d2.Manifest, m)
		}
	})
}

// sameAsJSON compares m with what a plain encoding/json reading of doc
// holds under the protocol's member names. withSig: doc's signature
// member is m's; otherwise doc must have none.
func sameAsJSON(m *Manifest, doc []byte, withSig bool) error {
	var obj map[string]any
	if err := json.Unmarshal(doc, &obj); err != nil {
		return err
	}
	str := func(o map[string]any, k string) string { s, _ := o[k].(string); return s }
	num := func(o map[string]any, k string) float64 { n, _ := o[k].(float64); return n }
	if num(obj, "schema") != float64(m.Schema) || str(obj, "avatarId") != m.AvatarID || str(obj, "version") != m.Version {
		return fmt.Errorf("schema/avatarId/version differ: %v %v %v", obj["schema"], obj["avatarId"], obj["version"])
	}
	list, _ := obj["assets"].([]any)
	if len(list) != len(m.Assets) {
		return fmt.Errorf("%d assets, used %d", len(list), len(m.Assets))
	}
	for i, v := range list {
		o, _ := v.(map[string]any)
		a := m.Assets[i]
		if str(o, "path") != a.Path || num(o, "size") != float64(a.Size) || str(o, "sha256") != a.SHA256 || str(o, "url") != a.URL {
			return fmt.Errorf("asset %d: %v, used %+v", i, o, a)
		}
	}
	sig, has := obj["signature"].(map[string]any)
	switch {
	case !withSig && obj["signature"] != nil:
		return fmt.Errorf("the signed bytes hold a signature")
	case withSig && has != (m.Signature != nil):
		return fmt.Errorf("signature %v, used %+v", obj["signature"], m.Signature)
	case withSig && has && (str(sig, "keyId") != m.Signature.KeyID || str(sig, "ed25519") != m.Signature.Ed25519):
		return fmt.Errorf("signature %v, used %+v", sig, m.Signature)
	}
	return nil
}
