package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/internal/daemon"
)

func init() { register(newServeCmd) }

func newServeCmd(g *globals) *cobra.Command {
	var configPath, stateDir string
	var printConfig bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: download, verify and cache avatars, answer the socket",
		Long: `serve runs assetd's daemon in the foreground (systemd runs it as assetd.service).

The configuration is --config FILE, else $ASSETD_CONFIG, else the embedded
defaults; ASSETD_SOCKET and ASSETD_STATE_DIR override api.socket and store.dir,
and --socket and --state-dir override those (missing parent directories are
made). A bad configuration exits 2 with its file, line and key, and so does
anything else serve refuses at start (a socket or state dir it cannot
create: as a user other than root, pick them with --socket and --state-dir).
Without origin.url it warns at start and serves only cached and imported
avatars. SIGHUP reloads the configuration (a bad one is logged
and the old one stays); SIGTERM and SIGINT stop the daemon, keeping partial
downloads for the next start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := daemon.Options{ConfigPath: configPath, StateDir: stateDir}
			if o.ConfigPath == "" {
				o.ConfigPath = os.Getenv("ASSETD_CONFIG")
			}
			if f := cmd.Flags().Lookup("socket"); f != nil && f.Changed {
				o.Socket = g.socket
			}
			cfg, err := daemon.LoadConfig(o)
			if err != nil {
				return usagef("%v", err)
			}
			if printConfig {
				_, err := fmt.Fprint(cmd.OutOrStdout(), cfg.String())
				return err
			}
			// Run fails only when the daemon cannot start: the
			// configuration, the socket or the state dir (exit 2).
			if err := daemon.Run(cmd.Context(), cfg, o); err != nil {
				return usagef("%v", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the configuration file (env ASSETD_CONFIG; default: built-in defaults)")
	cmd.Flags().BoolVar(&printConfig, "print-config", false, "print the effective configuration (file, environment and flags) as TOML and exit")
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "the cache directory, overriding store.dir (env ASSETD_STATE_DIR)")
	return cmd
}
