package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/internal/sample"
)

func init() { register(newSamplesCmd) }

// newSamplesCmd writes avatars to publish without committing megabytes of
// binaries: the demo (scripts/demo.sh) runs it in front of the user, so
// help lists it.
func newSamplesCmd(_ *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "samples OUT",
		Short: "Write the demo's sample avatars (deterministic) as publish input",
		Long: `samples writes a few sample avatars, one folder each, under OUT: the same
bytes every time, for demos and tests. 'assetd publish OUT SITE' turns them
into an origin tree.`,
		Example: `  assetd samples src && assetd publish src site && assetd origin --root site`,
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			avatars, err := sample.Write(args[0])
			if err != nil {
				return err
			}
			for _, a := range avatars {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d files, %s\n", a.ID, len(a.Files), humanBytes(a.Size()))
			}
			return nil
		},
	}
}
