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
no ID the bytes the whole cache takes on disk: every file once (files
shared by several avatars count once), and the partial downloads kept for
resume, shown apart. --bytes prints the exact number alone; --json prints
{"bytes":N}. ('assetd stats' has the details.)`,
		Example: `  assetd size rohan
  assetd size --bytes`,
		Args: idArgs(usageArgs(cobra.MaximumNArgs(1)), false),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := dial(g)
			defer c.CloseIdleConnections()
			var n int64
			var err error
			var st apitype.Stats
			if len(args) == 1 {
				n, err = c.Size(cmd.Context(), args[0])
			} else {
				st, err = c.Stats(cmd.Context())
				n = st.TotalSize + st.PartialBytes
			}
			if err != nil {
				return fail(cmd, err)
			}
			switch {
			case g.json:
				return printJSON(cmd, apitype.Size{Bytes: n})
			case raw:
				fmt.Fprintln(cmd.OutOrStdout(), n)
			case st.PartialBytes > 0:
				fmt.Fprintf(cmd.OutOrStdout(), "%s (%s of files, %s of partial downloads)\n",
					humanBytes(n), humanBytes(st.TotalSize), humanBytes(st.PartialBytes))
			default:
				fmt.Fprintln(cmd.OutOrStdout(), humanBytes(n))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&raw, "bytes", "b", false, "print the exact number of bytes")
	return cmd
}
