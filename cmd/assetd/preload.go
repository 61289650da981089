package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/client"
)

func init() { register(newPreloadCmd) }

func newPreloadCmd(g *globals) *cobra.Command {
	var opts client.LoadOptions
	var cancelOnInterrupt bool
	cmd := &cobra.Command{
		Use:   "preload ID...",
		Short: "Load avatars into the cache and wait until they are ready",
		Long: `preload asks the daemon to load every avatar named, all at once, and waits
until each is cached and verified. An avatar already cached and fresh is
ready at once; a load already in flight is joined, not repeated.

On a terminal it draws a progress bar per avatar (bytes, the speed of the
last 5 seconds, time left) and a total bar for several; otherwise it prints
a line per avatar every tenth of the way and a total line. While a load
waits it says for what: "queued" (for a download slot) or "retrying (2/6):
connection refused". An avatar cached and current says "already cached".
With --json it prints every event of the loads as one JSON object a line
(NDJSON), each avatar ending with a "completed" or "failed" event.

Ctrl-C stops waiting; the daemon keeps loading (see 'assetd ls') unless
--cancel-on-interrupt is given. The exit code is that of the worst failure:
4 for an account error over 1 for an avatar error; 130 when interrupted.`,
		Example: `  assetd preload rohan maya
  assetd preload --pin --background rohan
  assetd preload --json rohan | jq -c 'select(.type != "progress")'`,
		Args: idArgs(usageArgs(cobra.MinimumNArgs(1)), false),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPreload(cmd, g, dedupe(args), opts, cancelOnInterrupt)
		},
	}
	cmd.Flags().BoolVar(&opts.Pin, "pin", false, "pin the avatars: never evicted to make room")
	cmd.Flags().BoolVar(&opts.Background, "background", false, "download behind the loads apps are waiting for")
	cmd.Flags().BoolVar(&cancelOnInterrupt, "cancel-on-interrupt", false, "on Ctrl-C, cancel the loads too")
	return cmd
}

func runPreload(cmd *cobra.Command, g *globals, ids []string, opts client.LoadOptions, cancelOnInterrupt bool) error {
	ctx := cmd.Context()
	c := dial(g)
	defer c.CloseIdleConnections()
	// One clear answer when the daemon is down, not one per avatar.
	if _, err := c.Health(ctx); err != nil {
		return fail(cmd, err)
	}
	view := preloadView(cmd, g, ids)
	results := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			av, err := c.Load(ctx, id, opts, func(ev apitype.Event) {
				if ev.AvatarID == "" {
					ev.AvatarID = id
				}
				view.event(ev)
			})
			view.done(id, av, err)
			results[i] = err
		})
	}
	wg.Wait()
	view.finish()
	if ctx.Err() != nil {
		afterInterrupt(cmd, g, c, ids, results, cancelOnInterrupt)
	}
	return reported(worst(results))
}

func preloadView(cmd *cobra.Command, g *globals, ids []string) progressView {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	switch {
	case g.json:
		return newJSONView(out)
	case isTerminal(out):
		return newBarView(out, errOut, ids)
	}
	v := newPlainView(out, errOut)
	v.several = len(ids) > 1
	return v
}

// afterInterrupt cancels the loads that were still running when asked
// to, and otherwise says that they go on.
func afterInterrupt(cmd *cobra.Command, g *globals, c *client.Client, ids []string, results []error, cancelLoads bool) {
	var running []string
	for i, err := range results {
		if interrupted(err) {
			running = append(running, ids[i])
		}
	}
	if len(running) == 0 {
		return
	}
	if !cancelLoads {
		if !g.json {
			fmt.Fprintf(cmd.ErrOrStderr(), "the daemon keeps loading %s ('assetd cancel %s' stops it)\n",
				strings.Join(running, ", "), strings.Join(running, " "))
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 5*time.Second)
	defer cancel()
	var cancelled []string
	for _, id := range running {
		got, err := c.CancelLoad(ctx, id)
		if err != nil {
			printErr(cmd, avatarError(id, err))
			continue
		}
		cancelled = append(cancelled, got...)
	}
	if len(cancelled) > 0 && !g.json {
		fmt.Fprintf(cmd.ErrOrStderr(), "cancelled the loads of %s\n", strings.Join(cancelled, ", "))
	}
}
