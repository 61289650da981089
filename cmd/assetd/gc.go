package main

import (
	"github.com/spf13/cobra"

	"github.com/assetd/assetd/apitype"
)

func init() { register(newGcCmd) }

func newGcCmd(g *globals) *cobra.Command {
	var keep int
	cmd := &cobra.Command{
		Use:   "gc --keep N",
		Short: "Keep the N most recently used avatars, remove the rest",
		Long: `gc keeps the N avatars apps used most recently and removes the others from
the cache (the SDKs' clearLRU). Pinned avatars always stay and do not count
towards N. It also removes, whatever their age, the partial downloads no
load is using and the files no avatar uses (see 'assetd stats'). The daemon
also evicts by itself when store.max_bytes is reached.`,
		Example: `  assetd gc --keep 10
  assetd gc --keep 0    # everything not pinned`,
		Args: usageArgs(noArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("keep") {
				return usagef("gc: --keep N is required\nUsage: %s", cmd.UseLine())
			}
			if keep < 0 {
				return usagef("gc: --keep must be 0 or more, not %d", keep)
			}
			c := dial(g)
			defer c.CloseIdleConnections()
			removed, err := c.ClearLRU(cmd.Context(), keep)
			if err != nil {
				return fail(cmd, err)
			}
			if g.json {
				return printJSON(cmd, apitype.Removed{Removed: nonNilStrings(removed)})
			}
			printRemoved(cmd, removed)
			return nil
		},
	}
	cmd.Flags().IntVar(&keep, "keep", 0, "how many avatars to keep, besides the pinned ones")
	return cmd
}
