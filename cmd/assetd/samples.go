package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/internal/sample"
)

func init() { register(newSamplesCmd) }

// newSamplesCmd is hidden: it exists for `make demo` and tests, which need
// avatars to publish without committing megabytes of binaries.
func newSamplesCmd(_ *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "samples OUT",
		Short:  "Write the demo's sample avatars (deterministic) as publish input",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
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
