package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/internal/publish"
)

func init() { register(newKeygenCmd) }

func newKeygenCmd(g *globals) *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Make an ed25519 key pair for signing manifests",
		Long: `keygen writes a new ed25519 key pair:

  PREFIX.key  the private key (mode 0600): base64 of the 64-byte ed25519 key
  PREFIX.pub  the public key: base64 of the 32-byte key, the form that
              origin.trusted_keys in the daemon's config takes

It never overwrites a file. Sign with 'assetd publish SRC OUT --sign PREFIX.key';
the manifests' keyId is the first 8 hex digits of the public key's sha256.
publish --sign also reads PEM PKCS#8 keys (openssl genpkey -algorithm ed25519).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if prefix == "" {
				return usagef("--out must not be empty")
			}
			kp, err := publish.WriteKeyPair(prefix)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.json {
				return json.NewEncoder(out).Encode(kp)
			}
			fmt.Fprintf(out, "private key: %s (keep it secret; sign with: assetd publish SRC OUT --sign %s)\n", kp.PrivatePath, kp.PrivatePath)
			fmt.Fprintf(out, "public key:  %s (keyId %s)\n\n", kp.PublicPath, kp.KeyID)
			fmt.Fprintf(out, "To make the daemon accept only manifests signed with it:\n  [origin]\n  trusted_keys = [%q]\n", kp.PublicKey)
			return nil
		},
	}
	cmd.Flags().StringVar(&prefix, "out", "assetd-signing", "write PREFIX.key and PREFIX.pub")
	return cmd
}
