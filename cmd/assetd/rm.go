package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/apitype"
)

func init() { register(newRmCmd) }

func newRmCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "rm ID...|--all",
		Aliases: []string{"clear"},
		Short:   "Remove avatars from the cache",
		Long: `rm removes avatars from the cache, or every avatar with --all. Files that
another cached avatar still uses stay on disk. A load of the avatar in
flight is cancelled first. Pinned avatars are removed too: rm is an
explicit request.`,
		Args: idsOrAll(&all),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := dial(g)
			defer c.CloseIdleConnections()
			removed, failures, err := eachOrAll(cmd, all, args, c.ClearAll, c.Clear)
			if err != nil {
				return err
			}
			if g.json {
				if err := printJSON(cmd, apitype.Removed{Removed: nonNilStrings(removed)}); err != nil {
					return err
				}
			} else {
				printRemoved(cmd, removed)
			}
			return reported(worst(failures))
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "remove every cached avatar")
	return cmd
}

func printRemoved(cmd *cobra.Command, removed []string) {
	if len(removed) == 0 {
		fmt.Fprintln(cmd.OutOrStdout(), "nothing removed")
		return
	}
	fmt.Fprintf(cmd.OutOrStdout(), "removed %s: %s\n", plural(len(removed), "avatar"), strings.Join(removed, ", "))
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
