package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
)

func init() { register(newVerifyCmd) }

func newVerifyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify [ID...]",
		Short: "Re-hash cached avatars' files and report damage",
		Long: `verify makes the daemon re-read every file of the avatars named (every
cached avatar when none is named) and check its size and sha256. Damaged or
missing files are reported, and re-fetched when store.self_heal is on.

It exits 1 when any avatar is damaged or cannot be verified.`,
		Args: idArgs(usageArgs(cobra.ArbitraryArgs), false),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := dial(g)
			defer c.CloseIdleConnections()
			ids := dedupe(args)
			if len(ids) == 0 {
				l, err := c.List(cmd.Context())
				if err != nil {
					return fail(cmd, err)
				}
				for _, av := range l.Avatars {
					ids = append(ids, av.AvatarID)
				}
			}
			var results []apitype.VerifyResult
			var failures []error
			for _, id := range ids {
				res, err := c.Verify(cmd.Context(), id)
				if err != nil {
					if !perAvatar(err) {
						return fail(cmd, err)
					}
					printErr(cmd, avatarError(id, err))
					failures = append(failures, err)
					continue
				}
				results = append(results, res)
				if len(res.Damaged) > 0 {
					failures = append(failures, &errcode.Error{Code: errcode.AvatarAssetMissing, Reason: errcode.ReasonDamaged, AvatarID: id})
				}
				if !g.json {
					printVerify(cmd, res)
				}
			}
			if g.json {
				if results == nil {
					results = []apitype.VerifyResult{}
				}
				if err := printJSON(cmd, results); err != nil {
					return err
				}
			} else if len(ids) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no avatars cached")
			}
			return reported(worst(failures))
		},
	}
}

func printVerify(cmd *cobra.Command, res apitype.VerifyResult) {
	out := cmd.OutOrStdout()
	if len(res.Damaged) == 0 {
		fmt.Fprintf(out, "%s: ok, %s checked\n", res.AvatarID, plural(res.Checked, "file"))
		return
	}
	line := fmt.Sprintf("%s: %s, %d of %s damaged: %s", res.AvatarID, res.State, len(res.Damaged),
		plural(res.Checked, "file"), strings.Join(res.Damaged, ", "))
	if res.Healing {
		line += " (re-fetching)"
	}
	fmt.Fprintln(out, line)
}
