package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/internal/printable"
	"github.com/assetd/assetd/internal/publish"
)

func init() { register(newPublishCmd) }

func newPublishCmd(g *globals) *cobra.Command {
	var signKey, version string
	cmd := &cobra.Command{
		Use:   "publish SRC OUT",
		Short: "Write avatar folders as an origin tree any static server can serve",
		Long: `publish turns SRC, one folder per avatar named by its avatar ID, into the
origin tree OUT:

  OUT/v1/avatars/{id}/manifest   canonical JSON manifest (signed with --sign)
  OUT/v1/blobs/sha256/{hex}      every distinct file once, named by its sha256

Every regular file under an avatar's folder is an asset; a VERSION file at the
folder's top names its version (--version is the version of folders without
one). Symlinks may point to files inside SRC only. Top-level files and hidden
entries of SRC are skipped.

Publishing again is cheap and safe: blobs already in OUT are not rewritten,
unchanged manifests are left alone, nothing is deleted, and every file is
written to a temporary name and renamed, blobs before manifests.

Nothing is written unless every avatar in SRC is valid; a bad SRC (a folder
that is not an avatar ID, an invalid asset path, a symlink leading out of SRC,
a missing version) exits 2.`,
		Example: `  assetd keygen --out signing
  assetd publish avatars/ site/ --sign signing.key
  assetd origin --root site/`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := publish.Options{Version: version}
			if signKey != "" {
				key, err := publish.ReadPrivateKey(signKey)
				if err != nil {
					return usagef("--sign: %v", err)
				}
				opts.Key = key
			}
			if !g.json {
				opts.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			}
			res, err := publish.Publish(cmd.Context(), args[0], args[1], opts)
			if err != nil {
				return err
			}
			if g.json {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			printPublishResult(cmd, args[1], res)
			return nil
		},
	}
	cmd.Flags().StringVar(&signKey, "sign", "", "sign manifests with this ed25519 private key file (from assetd keygen)")
	cmd.Flags().StringVar(&version, "version", "", "version of avatar folders that have no VERSION file")
	return cmd
}

func printPublishResult(cmd *cobra.Command, out string, res *publish.Result) {
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
	for _, a := range res.Avatars {
		signed := "unsigned"
		if a.KeyID != "" {
			signed = "signed " + a.KeyID
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\tmanifest %s (%s)\t%s\n",
			printable.Quote(a.ID), printable.Quote(a.Version), publishCount(a.Assets, "asset"), humanBytes(a.Size), a.Manifest, signed, publishCount(a.BlobsAdded, "new blob"))
	}
	w.Flush()
	fmt.Fprintf(cmd.OutOrStdout(), "published %s to %s: %s added (%s), %d already there\n",
		publishCount(len(res.Avatars), "avatar"), printable.Quote(out), publishCount(res.BlobsAdded, "blob"), humanBytes(res.BytesAdded), res.BlobsPresent)
	if len(res.Skipped) > 0 {
		names := make([]string, len(res.Skipped))
		for i, n := range res.Skipped {
			names[i] = printable.Quote(n)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "skipped (not avatar folders): %s\n", strings.Join(names, ", "))
	}
}

func publishCount(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
