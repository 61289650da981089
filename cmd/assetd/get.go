package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/apitype"
)

func init() { register(newGetCmd) }

func newGetCmd(g *globals) *cobra.Command {
	var paths, files bool
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show a cached avatar and where its files are",
		Long: `get shows an avatar from the cache; it never downloads (see preload). An
avatar not cached, or cached with a file missing or damaged, is the error
avatarAssetMissing (exit 1).

--paths prints the local path of each file, one a line, for scripts (xargs):
the files may be opened read-only and do not change while this version of
the avatar is cached. --files prints each file's path in the avatar and its
local path, separated by a tab, one file a line.`,
		Example: `  assetd get rohan
  assetd get rohan --paths | xargs ls -l
  assetd get rohan --files | while IFS=$'\t' read -r asset file; do echo "$asset is $file"; done
  assetd get rohan --json`,
		Args: idArgs(usageArgs(cobra.ExactArgs(1)), false),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := dial(g)
			defer c.CloseIdleConnections()
			av, err := c.Get(cmd.Context(), args[0])
			if err != nil {
				return fail(cmd, err)
			}
			switch {
			case g.json:
				return printJSON(cmd, av)
			case paths:
				for _, a := range av.Assets {
					fmt.Fprintln(cmd.OutOrStdout(), a.LocalPath)
				}
				return nil
			case files:
				for _, a := range av.Assets {
					fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", a.Path, a.LocalPath)
				}
				return nil
			}
			printAvatar(cmd, av)
			return nil
		},
	}
	cmd.Flags().BoolVar(&paths, "paths", false, "print the local file paths only, one a line")
	cmd.Flags().BoolVar(&files, "files", false, "print each file's asset path and local path, tab-separated, one a line")
	cmd.MarkFlagsMutuallyExclusive("paths", "files")
	return cmd
}

func printAvatar(cmd *cobra.Command, av *apitype.Avatar) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "%s  version %s  %s  %s, %s\n", av.AvatarID, av.Version, av.State,
		humanBytes(av.SizeBytes), plural(len(av.Assets), "file"))
	pinned := "no"
	if av.Pinned {
		pinned = "yes"
	}
	fmt.Fprintf(out, "pinned %s, last used %s", pinned, ago(av.LastUsed, time.Now()))
	if av.Source != "" {
		fmt.Fprintf(out, ", from %s", av.Source)
	}
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, a := range av.Assets {
		fmt.Fprintf(w, "  %s\t%s\t%s\n", a.Path, humanBytes(a.Size), a.LocalPath)
	}
	w.Flush()
	if len(av.Damaged) > 0 {
		fmt.Fprintf(out, "damaged: %v\n", av.Damaged)
	}
}
