package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/apitype"
)

func init() { register(newLsCmd) }

func newLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List cached avatars and loads in flight",
		Long: `ls lists every cached avatar and every load in flight: ID, version, state
(ready, stale, damaged, or downloading with how far it is), size, when an app
last used it, and whether it is pinned. --json prints the daemon's answer.`,
		Args: usageArgs(noArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := dial(g)
			defer c.CloseIdleConnections()
			l, err := c.List(cmd.Context())
			if err != nil {
				return fail(cmd, err)
			}
			if g.json {
				return printJSON(cmd, l)
			}
			printList(cmd, l, time.Now())
			return nil
		},
	}
}

func printList(cmd *cobra.Command, l apitype.List, now time.Time) {
	if len(l.Avatars) == 0 && len(l.Loads) == 0 {
		fmt.Fprintln(cmd.OutOrStdout(), "no avatars cached, no loads in flight")
		return
	}
	loads := make(map[string]apitype.Load, len(l.Loads))
	for _, ld := range l.Loads {
		loads[ld.AvatarID] = ld
	}
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tVERSION\tSTATE\tSIZE\tLAST USED\tPINNED")
	for _, av := range l.Avatars {
		state := string(av.State)
		if ld, ok := loads[av.AvatarID]; ok {
			state += ", updating " + loadProgress(ld)
			delete(loads, av.AvatarID)
		}
		pinned := "no"
		if av.Pinned {
			pinned = "yes"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", av.AvatarID, av.Version, state,
			humanBytes(av.SizeBytes), ago(av.LastUsed, now), pinned)
	}
	for _, ld := range l.Loads {
		if _, ok := loads[ld.AvatarID]; !ok {
			continue // shown with its cached version
		}
		size := "-"
		if ld.BytesTotal > 0 {
			size = humanBytes(ld.BytesTotal)
		}
		fmt.Fprintf(w, "%s\t-\t%s %s\t%s\t-\t-\n", ld.AvatarID, ld.State, loadProgress(ld), size)
	}
	w.Flush()
}

func loadProgress(ld apitype.Load) string {
	return fmt.Sprintf("%d%%", int(fraction(apitype.Event{Progress: ld.Progress, BytesDone: ld.BytesDone, BytesTotal: ld.BytesTotal})*100))
}
