package main

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// idCommands are the commands whose arguments are avatar IDs, and how many
// they take (0: any number). Their shell completion offers the IDs the
// daemon has cached (assetd ls), not file names.
var idCommands = map[string]int{
	"get": 1, "size": 1, "rm": 0, "cancel": 0, "pin": 0, "unpin": 0,
	"preload": 0, "verify": 0, "import": 1,
}

// completeTimeout bounds the question to the daemon while a shell waits.
const completeTimeout = 2 * time.Second

// addCompletions gives the ID commands their completion; import's DIR
// completes as a directory.
func addCompletions(root *cobra.Command, g *globals) {
	for _, cmd := range root.Commands() {
		most, ok := idCommands[cmd.Name()]
		if !ok || cmd.ValidArgsFunction != nil {
			continue
		}
		cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if most > 0 && len(args) >= most {
				if cmd.Name() == "import" && len(args) == 1 {
					return nil, cobra.ShellCompDirectiveFilterDirs
				}
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return cachedIDs(cmd, g, args, toComplete), cobra.ShellCompDirectiveNoFileComp
		}
	}
}

// cachedIDs are the cached avatars' IDs that start with prefix and are not
// in args yet; none when the daemon does not answer.
func cachedIDs(cmd *cobra.Command, g *globals, args []string, prefix string) []cobra.Completion {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, completeTimeout)
	defer cancel()
	c := dial(g)
	defer c.CloseIdleConnections()
	l, err := c.List(ctx)
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, av := range l.Avatars {
		if strings.HasPrefix(av.AvatarID, prefix) && !slices.Contains(args, av.AvatarID) {
			out = append(out, av.AvatarID)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
