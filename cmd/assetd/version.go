package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/internal/version"
)

func init() { register(newVersionCmd) }

// buildInfo is what version prints.
type buildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Date    string `json:"date,omitempty"`
	Go      string `json:"go"`
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print assetd's version",
		Args:  usageArgs(noArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			bi := buildInfo{Version: version.Version, Commit: version.Commit, Date: version.Date, Go: runtime.Version()}
			if g.json {
				return printJSON(cmd, bi)
			}
			line := "assetd " + bi.Version
			if bi.Commit != "" {
				line += " (" + bi.Commit
				if bi.Date != "" {
					line += ", " + bi.Date
				}
				line += ")"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", line, bi.Go)
			return nil
		},
	}
}
