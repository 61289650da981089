package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/apitype/errcode"
)

func init() { register(newReloadCmd) }

func newReloadCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Make the daemon re-read its configuration file, and say whether it took it",
		Long: `reload asks the running daemon to re-read its configuration file (POST
/v1/reload) and waits for the answer: exit 0 when the new configuration is in
force, 2 when the daemon refused it (its errors are printed, as serve prints
them, and the old configuration stays in force), 3 when no daemon answers.
Only root and the daemon's own user may reload. assetd.service runs it as
ExecReload, so that systemctl reload fails on a refused configuration.
SIGHUP reloads too, but says nothing back.`,
		Example: `  sudo assetd reload
  sudo systemctl reload assetd`,
		Args: usageArgs(noArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := dial(g)
			defer c.CloseIdleConnections()
			err := c.Reload(cmd.Context())
			var e *errcode.Error
			if errors.As(err, &e) && e.Reason == errcode.ReasonConfigRefused && !g.json {
				fmt.Fprintf(cmd.ErrOrStderr(), "assetd: %s\n", e.Message)
				return reported(err)
			}
			if err != nil {
				return fail(cmd, err)
			}
			if g.json {
				return printJSON(cmd, struct {
					Reloaded bool `json:"reloaded"`
				}{true})
			}
			fmt.Fprintln(cmd.OutOrStdout(), "configuration reloaded")
			return nil
		},
	}
}
