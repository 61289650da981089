package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() {
	register(newPinCmd)
	register(newUnpinCmd)
}

func newPinCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pin ID...",
		Short: "Pin cached avatars: never evicted to make room",
		Long: `pin keeps cached avatars whatever the quota (store.max_bytes) and gc --keep
say; rm still removes them. 'assetd preload --pin' loads and pins at once.`,
		Args: idArgs(usageArgs(cobra.MinimumNArgs(1)), false),
		RunE: func(cmd *cobra.Command, args []string) error { return setPinned(cmd, g, args, true) },
	}
}

func newUnpinCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "unpin ID...",
		Short: "Unpin avatars: evicted again when least recently used",
		Args:  idArgs(usageArgs(cobra.MinimumNArgs(1)), false),
		RunE:  func(cmd *cobra.Command, args []string) error { return setPinned(cmd, g, args, false) },
	}
}

func setPinned(cmd *cobra.Command, g *globals, ids []string, pinned bool) error {
	c := dial(g)
	defer c.CloseIdleConnections()
	verb := "pinned"
	if !pinned {
		verb = "unpinned"
	}
	var failures []error
	done := []string{}
	for _, id := range dedupe(ids) {
		if err := c.SetPinned(cmd.Context(), id, pinned); err != nil {
			if !perAvatar(err) {
				return fail(cmd, err)
			}
			printErr(cmd, avatarError(id, err))
			failures = append(failures, err)
			continue
		}
		done = append(done, id)
		if !g.json {
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", verb, id)
		}
	}
	if g.json {
		if err := printJSON(cmd, map[string][]string{verb: done}); err != nil {
			return err
		}
	}
	return reported(worst(failures))
}
