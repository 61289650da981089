package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/assetd/assetd/internal/config"
)

// A reload re-reads the token file but must not undo a token set by PUT
// /v1/session while the file stays as it was (the shipped unit's empty
// SetCredential= file exists always); a new content or path is installed.
func TestReadTokenKeepsSessionToken(t *testing.T) {
	creds := t.TempDir()
	file := filepath.Join(creds, config.CredentialName)
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{config.EnvCredentials: creds}
	d := &daemon{
		opts: Options{Getenv: func(k string) string { return env[k] }},
		log:  slog.New(slog.DiscardHandler),
		sess: &session{},
	}
	cfg := config.Default()
	d.readToken(cfg)
	if err := d.setSession("api-token-0123456789", ""); err != nil {
		t.Fatal(err)
	}
	if d.readToken(cfg) || d.sess.Token() != "api-token-0123456789" {
		t.Fatalf("a reload with the file unchanged: token %q, want the API's", d.sess.Token())
	}
	writeFile(t, file, "file-token-0123456789\n")
	if !d.readToken(cfg) || d.sess.Token() != "file-token-0123456789" {
		t.Fatalf("after a file edit: token %q, want the file's", d.sess.Token())
	}
	d.sess.setToken("api-token-0123456789")
	other := filepath.Join(t.TempDir(), "token")
	writeFile(t, other, "file-token-0123456789\n")
	cfg2 := config.Default()
	cfg2.Origin.SessionTokenFile = other
	if !d.readToken(cfg2) || d.sess.Token() != "file-token-0123456789" {
		t.Fatalf("after a new token file: token %q, want the file's", d.sess.Token())
	}
}
