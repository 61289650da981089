package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/client"
)

func init() { register(newImportCmd) }

func newImportCmd(g *globals) *cobra.Command {
	var version string
	var force bool
	cmd := &cobra.Command{
		Use:   "import ID DIR",
		Short: "Cache an avatar from files on this machine",
		Long: `import caches the files under DIR as the avatar ID, as the SDKs' derive()
builds an avatar from local files: every regular file is an asset, named by
its path under DIR. This command reads the files, with your rights, and
streams them to the daemon, which never opens DIR itself; a file you cannot
read fails the import before anything is sent. The copies in the cache are
readable by root, the daemon's user and its group only.

A VERSION file at the top of DIR holds the version, as for assetd publish,
and is not an asset (a --version given too must agree with it); else
--version names it (default: one derived from the files' content). An
avatar cached from the origin is replaced only with --force.`,
		Example: `  assetd import rohan ./avatars/rohan --version 2026-11-01.3`,
		Args:    idArgs(usageArgs(cobra.ExactArgs(2)), true),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := filepath.Abs(args[1])
			if err != nil {
				return usagef("import: %v", err)
			}
			c := dial(g)
			defer c.CloseIdleConnections()
			av, err := c.Import(cmd.Context(), args[0], dir, client.ImportOptions{Version: version, Force: force})
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
	cmd.Flags().StringVar(&version, "version", "", "the avatar's version when DIR has no VERSION file (default: derived from the files)")
	cmd.Flags().BoolVar(&force, "force", false, "replace an avatar cached from the origin")
	return cmd
}
