package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/apitype"
)

func init() { register(newStatsCmd) }

func newStatsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Show the cache's figures",
		Long: `stats shows how many avatars are cached (pinned, stale, damaged), the bytes
they take on disk (files shared by several avatars count once) against
store.max_bytes, the files no avatar uses (left by a load that failed
halfway, kept an hour for its retry) and the partial downloads (kept a day
for the next load to resume; neither counts towards the quota's avatars
but both take disk), the loads in flight, and the free space of the
store's filesystem. 'assetd gc' and 'assetd rm --all' remove the unused
files and the partial downloads no load is using. It says when the
periodic refreshes of the preload list are held, and why: outside the
refresh window (until HH:MM, local time) or on a metered link. --json
prints the daemon's answer, sizes in bytes.`,
		Args: usageArgs(noArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := dial(g)
			defer c.CloseIdleConnections()
			st, err := c.Stats(cmd.Context())
			if err != nil {
				return fail(cmd, err)
			}
			if g.json {
				return printJSON(cmd, st)
			}
			printStats(cmd, st)
			return nil
		},
	}
}

func printStats(cmd *cobra.Command, st apitype.Stats) {
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "avatars\t%d (%d pinned, %d stale, %d damaged)\n", st.TotalEntries, st.Pinned, st.Stale, st.Damaged)
	size := humanBytes(st.TotalSize)
	if st.MaxSize > 0 {
		size += fmt.Sprintf(" of %s (%.0f%% of store.max_bytes)", humanBytes(st.MaxSize), 100*float64(st.TotalSize)/float64(st.MaxSize))
	} else {
		size += " (no quota: store.max_bytes is 0)"
	}
	fmt.Fprintf(w, "size\t%s in %s\n", size, plural(st.Blobs, "file"))
	unused, partial := "none", "none"
	if st.UnusedBlobs > 0 {
		unused = fmt.Sprintf("%s in %s no avatar uses (gc removes them)", humanBytes(st.UnusedBytes), plural(st.UnusedBlobs, "file"))
	}
	if st.Partials > 0 {
		partial = fmt.Sprintf("%s in %s kept for resume (gc removes them)", humanBytes(st.PartialBytes), plural(st.Partials, "download"))
	}
	fmt.Fprintf(w, "unused\t%s\n", unused)
	fmt.Fprintf(w, "partial\t%s\n", partial)
	fmt.Fprintf(w, "loading\t%d\n", st.LoadsInFlight)
	fmt.Fprintf(w, "free disk\t%s (%s kept free: store.reserve_bytes)\n", humanBytes(st.FreeBytes), humanBytes(st.ReserveBytes))
	fmt.Fprintf(w, "refreshes\t%s\n", heldText(st.Background))
	w.Flush()
}

// heldText says whether the periodic refreshes are held, and why.
func heldText(b apitype.Background) string {
	if !b.Held {
		return "not held"
	}
	var why []string
	if b.OutsideWindow {
		why = append(why, "outside the refresh window until "+b.WindowOpens.Local().Format("15:04")+" (preload.refresh_window)")
	}
	if b.MeteredLink {
		why = append(why, "metered link (fetch.background_on_metered)")
	}
	return "held: " + strings.Join(why, "; ")
}
