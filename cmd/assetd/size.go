package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/apitype"
)

func init() { register(newSizeCmd) }

func newSizeCmd(g *globals) *cobra.Command {
	var raw bool
	cmd := &cobra.Command{
		Use:   "size [ID]",
		Short: "Show the bytes one avatar, or the whole cache, takes",
		Long: `size prints the bytes a cached avatar takes (the sum of its files), or with
no ID the bytes of the whole cache (files shared by several avatars count
once): the SDKs' getCacheSize and getAllCacheSize. --bytes prints the exact
number alone; --json prints {"bytes":N}.`,
		Example: `  assetd size rohan
  assetd size --bytes`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := dial(g)
			defer c.CloseIdleConnections()
			var n int64
			var err error
			if len(args) == 1 {
				n, err = c.Size(cmd.Context(), args[0])
			} else {
				var st apitype.Stats
				st, err = c.Stats(cmd.Context())
				n = st.TotalSize
			}
			if err != nil {
				return fail(cmd, err)
			}
			switch {
			case g.json:
				return printJSON(cmd, apitype.Size{Bytes: n})
			case raw:
				fmt.Fprintln(cmd.OutOrStdout(), n)
			default:
				fmt.Fprintln(cmd.OutOrStdout(), humanBytes(n))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&raw, "bytes", "b", false, "print the exact number of bytes")
	return cmd
}
