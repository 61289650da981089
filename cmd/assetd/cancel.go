package main

import (
	"context"
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
		Args: idsOrAll(&all),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := dial(g)
			defer c.CloseIdleConnections()
			cancelled, failures, err := eachOrAll(cmd, all, args, c.CancelAll,
				func(ctx context.Context, id string) ([]string, error) {
					got, err := c.CancelLoad(ctx, id)
					if err == nil && len(got) == 0 && !g.json {
						fmt.Fprintf(cmd.ErrOrStderr(), "%s: no load in flight\n", id)
					}
					return got, err
				})
			if err != nil {
				return err
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
