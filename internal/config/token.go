package config

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/assetd/assetd/internal/token"
)

// EnvCredentials is where systemd puts a unit's credentials (LoadCredential=).
const EnvCredentials = "CREDENTIALS_DIRECTORY"

// CredentialName is the systemd credential that holds the session token.
const CredentialName = "session-token"

// maxTokenBytes bounds a token file: a bearer token is well under this.
const maxTokenBytes = token.MaxBytes

// Token is a session token and where it came from. Its LogValue and String
// never show the value.
type Token struct {
	Value   string // the bearer token; "" for none. Never log it.
	Path    string // the file it was read from; "" when there is none
	Warning string // a problem the caller should log, e.g. a world-readable file
}

// String names the token's file, never the token.
func (t Token) String() string {
	if t.Value == "" {
		return "no session token"
	}
	return "session token from " + t.Path
}

// LogValue keeps the token out of logs.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("path", t.Path), slog.Bool("set", t.Value != ""))
}

// TokenFile is the file the session token is read from:
// origin.session_token_file when set, else $CREDENTIALS_DIRECTORY/session-token
// when that file exists, else "". The daemon watches this file.
func (c *Config) TokenFile(getenv func(string) string) string {
	if c.Origin.SessionTokenFile != "" {
		return c.Origin.SessionTokenFile
	}
	if getenv == nil {
		return ""
	}
	if dir := getenv(EnvCredentials); dir != "" {
		p := filepath.Join(dir, CredentialName)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// SessionToken returns the current session token, "" when none is
// configured. A configured origin.session_token_file that cannot be read
// is an error; a missing credential is not. See ReadSessionToken for the
// warnings.
func (c *Config) SessionToken(getenv func(string) string) (string, error) {
	t, err := c.ReadSessionToken(getenv)
	return t.Value, err
}

// ReadSessionToken reads the token from TokenFile: surrounding whitespace
// is trimmed; an empty file is no token; a token with a control character
// or space inside is an error (it would corrupt the Authorization header).
// A file that other users can read is returned with a Warning.
func (c *Config) ReadSessionToken(getenv func(string) string) (Token, error) {
	path := c.TokenFile(getenv)
	if path == "" {
		return Token{}, nil
	}
	return ReadTokenFile(path)
}

// ReadTokenFile reads a session token file; see ReadSessionToken.
func ReadTokenFile(path string) (Token, error) {
	t := Token{Path: path}
	f, err := os.Open(path)
	if err != nil {
		return t, fmt.Errorf("session token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return t, fmt.Errorf("session token file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return t, fmt.Errorf("session token file %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o004 != 0 {
		t.Warning = fmt.Sprintf("session token file %s is readable by every user (mode %04o); chmod o-r it", path, fi.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxTokenBytes+1))
	if err != nil {
		return t, fmt.Errorf("session token file %s: %w", path, unwrapPath(err))
	}
	if len(data) > maxTokenBytes {
		return t, fmt.Errorf("session token file %s is larger than %d bytes", path, maxTokenBytes)
	}
	tok := string(bytes.TrimSpace(data))
	if err := token.Check(tok); err != nil {
		return t, fmt.Errorf("session token file %s: %w", path, err)
	}
	t.Value = tok
	return t, nil
}
