package publish

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/assetd/assetd/internal/manifest"
)

// KeyID names a public key in a manifest's signature (manifest.KeyID).
func KeyID(pub ed25519.PublicKey) string { return manifest.KeyID(pub) }

// EncodePublicKey is the base64 form of pub that origin.trusted_keys takes
// and manifest.ParsePublicKey reads.
func EncodePublicKey(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}

// KeyPair is where WriteKeyPair put a new key pair.
type KeyPair struct {
	PrivatePath string `json:"privateKeyFile"`
	PublicPath  string `json:"publicKeyFile"`
	PublicKey   string `json:"publicKey"` // base64
	KeyID       string `json:"keyId"`
}

// WriteKeyPair makes a new ed25519 key pair and writes prefix.key (mode
// 0600) and prefix.pub (0644). It never overwrites an existing file.
func WriteKeyPair(prefix string) (*KeyPair, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	kp := &KeyPair{PrivatePath: prefix + ".key", PublicPath: prefix + ".pub",
		PublicKey: EncodePublicKey(pub), KeyID: KeyID(pub)}
	if err := writeNew(kp.PrivatePath, base64.StdEncoding.EncodeToString(priv)+"\n", 0o600); err != nil {
		return nil, err
	}
	if err := writeNew(kp.PublicPath, kp.PublicKey+"\n", 0o644); err != nil {
		os.Remove(kp.PrivatePath)
		return nil, err
	}
	return kp, nil
}

func writeNew(path, data string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists; not overwriting a key", path)
		}
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// ReadPrivateKey reads a private key file written by WriteKeyPair, or a PEM
// PKCS#8 ed25519 key. Errors never quote the file's content.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := parsePrivateKey(bytes.TrimSpace(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

func parsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	if bytes.HasPrefix(data, []byte("-----BEGIN")) {
		block, _ := pem.Decode(data)
		if block == nil || block.Type != "PRIVATE KEY" {
			return nil, errors.New("not a PEM PKCS#8 private key")
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("not a PKCS#8 private key")
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("a %T, not an ed25519 private key", k)
		}
		return priv, nil
	}
	b, err := base64.StdEncoding.DecodeString(string(data))
	if err != nil || len(b) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("not a base64 ed25519 private key (%d bytes wanted)", ed25519.PrivateKeySize)
	}
	priv := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
	if !bytes.Equal(priv, b) {
		return nil, errors.New("damaged ed25519 private key: its public half does not match its seed")
	}
	return priv, nil
}
