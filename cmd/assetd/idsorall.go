package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// idsOrAll checks the arguments of a command that takes `ID...|--all`.
func idsOrAll(all *bool) cobra.PositionalArgs {
	return idArgs(usageArgs(func(_ *cobra.Command, args []string) error {
		if *all == (len(args) > 0) {
			return fmt.Errorf("name avatar IDs or --all, not both and not neither")
		}
		return nil
	}), false)
}

// eachOrAll runs every (when all) or each ID's call and gathers the IDs
// they answer with. A failure of one avatar is printed and collected, so
// the others still run; any other failure (the daemon is gone) ends it.
func eachOrAll(cmd *cobra.Command, all bool, ids []string,
	every func(context.Context) ([]string, error),
	each func(context.Context, string) ([]string, error),
) (done []string, failures []error, err error) {
	if all {
		got, err := every(cmd.Context())
		if err != nil {
			return nil, nil, fail(cmd, err)
		}
		done = got
	}
	for _, id := range dedupe(ids) {
		got, err := each(cmd.Context(), id)
		if err != nil {
			if !perAvatar(err) {
				return nil, nil, fail(cmd, err)
			}
			printErr(cmd, avatarError(id, err))
			failures = append(failures, err)
			continue
		}
		done = append(done, got...)
	}
	return done, failures, nil
}
