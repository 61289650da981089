package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"
)

func init() { register(newImportCmd) }

func newImportCmd(g *globals) *cobra.Command {
	var version string
	cmd := &cobra.Command{
		Use:   "import ID DIR",
		Short: "Cache an avatar from files on this machine",
		Long: `import caches the files under DIR as the avatar ID, as the SDKs' derive()
builds an avatar from local files: every regular file is an asset, named by
its path under DIR. The daemon reads DIR itself, so it must be able to; the
files are copied into the cache. --version names the version (default: one
derived from the files' content).`,
		Example: `  assetd import rohan ./avatars/rohan --version 2026-11-01.3`,
		Args:    usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := filepath.Abs(args[1])
			if err != nil {
				return usagef("import: %v", err)
			}
			c := dial(g)
			defer c.CloseIdleConnections()
			av, err := c.Import(cmd.Context(), args[0], dir, version)
			if err != nil {
				return fail(cmd, err)
			}
			if g.json {
				return printJSON(cmd, av)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %s, version %s, %s, %s\n",
				av.AvatarID, av.Version, plural(len(av.Assets), "file"), humanBytes(av.SizeBytes))
			return nil
		},
	}
	cmd.Flags().StringVar(&version, "version", "", "the avatar's version (default: derived from the files)")
	return cmd
}
