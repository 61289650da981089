package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestReadTokenRefusesBadTokens: a token with a space or control character
// inside is refused as a token file's is, without quoting it.
func TestReadTokenRefusesBadTokens(t *testing.T) {
	for _, tok := range []string{"sec ret", "sec\x01ret", "sec\tret", "two\nlines"} {
		cmd := &cobra.Command{}
		cmd.SetIn(strings.NewReader(tok + "\n"))
		_, err := readToken(cmd, "")
		if err == nil {
			t.Errorf("%q accepted", tok)
			continue
		}
		if strings.Contains(err.Error(), "sec") || strings.Contains(err.Error(), "ret") {
			t.Errorf("the error quotes the token: %v", err)
		}
	}
	cmd := &cobra.Command{}
	cmd.SetIn(strings.NewReader("  good-token\n"))
	if tok, err := readToken(cmd, ""); err != nil || tok != "good-token" {
		t.Errorf("readToken = %q, %v", tok, err)
	}
}
