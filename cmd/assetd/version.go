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
			bi := build()
			if g.json {
				return printJSON(cmd, bi)
			}
			fmt.Fprintln(cmd.OutOrStdout(), bi.line())
			return nil
		},
	}
}

func build() buildInfo {
	return buildInfo{Version: version.Version, Commit: version.Commit, Date: version.Date, Go: runtime.Version()}
}

// line is what `assetd version` and `assetd --version` print.
func (bi buildInfo) line() string {
	line := "assetd " + bi.Version
	if bi.Commit != "" {
		line += " (" + bi.Commit
		if bi.Date != "" {
			line += ", " + bi.Date
		}
		line += ")"
	}
	return line + " " + bi.Go
}
