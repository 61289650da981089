package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/apitype"
)

func init() { register(newCancelCmd) }

func newCancelCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "cancel ID...|--all",
		Short: "Cancel loads in flight",
		Long: `cancel stops the loads of the avatars named, or every load with --all. Whoever
waits for them gets a failed event with the code cancelled. What was already
downloaded stays on disk, so loading again resumes. An avatar with no load
in flight is not an error.`,
		Args: usageArgs(func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return fmt.Errorf("name avatar IDs or --all, not both and not neither")
			}
			return nil
		}),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := dial(g)
			defer c.CloseIdleConnections()
			var cancelled []string
			var failures []error
			if all {
				got, err := c.CancelAll(cmd.Context())
				if err != nil {
					return fail(cmd, err)
				}
				cancelled = got
			}
			for _, id := range dedupe(args) {
				got, err := c.CancelLoad(cmd.Context(), id)
				if err != nil {
					if !perAvatar(err) {
						return fail(cmd, err)
					}
					fmt.Fprintln(cmd.ErrOrStderr(), describe(avatarError(id, err)))
					failures = append(failures, err)
					continue
				}
				if len(got) == 0 && !g.json {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: no load in flight\n", id)
				}
				cancelled = append(cancelled, got...)
			}
			switch {
			case g.json:
				if err := printJSON(cmd, apitype.Cancelled{Cancelled: nonNilStrings(cancelled)}); err != nil {
					return err
				}
			case len(cancelled) > 0:
				fmt.Fprintf(cmd.OutOrStdout(), "cancelled %s\n", strings.Join(cancelled, ", "))
			case all:
				fmt.Fprintln(cmd.OutOrStdout(), "no loads in flight")
			}
			return reported(worst(failures))
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "cancel every load in flight")
	return cmd
}
