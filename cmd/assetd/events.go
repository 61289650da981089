package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/apitype"
)

func init() { register(newEventsCmd) }

func newEventsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "events",
		Short: "Follow the daemon's events: loads and state changes of every avatar",
		Long: `events prints what the daemon does as it happens, for every avatar and every
app: the progress of each load (a line every tenth of the way), its end, and
each change of an avatar's state (ready, stale, damaged, failed). With --json
it prints every event as one JSON object a line (NDJSON). It runs until
interrupted or until the daemon stops.`,
		Args: usageArgs(noArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := dial(g)
			defer c.CloseIdleConnections()
			show := eventPrinter(cmd, g)
			if err := c.Events(cmd.Context(), show); err != nil {
				if interrupted(err) {
					return reported(err)
				}
				return fail(cmd, err)
			}
			return nil
		},
	}
}

// eventPrinter prints the events of every avatar: NDJSON, or the lines
// preload prints when its output is not a terminal.
func eventPrinter(cmd *cobra.Command, g *globals) func(apitype.Event) {
	out := cmd.OutOrStdout()
	if g.json {
		enc := json.NewEncoder(out)
		return func(ev apitype.Event) { enc.Encode(ev) }
	}
	v := newPlainView(out, out)
	return func(ev apitype.Event) {
		switch ev.Type {
		case apitype.EventCompleted:
			v.event(ev) // whether it was cached
			av := ev.Avatar
			if av == nil {
				av = &apitype.Avatar{AvatarID: ev.AvatarID}
			}
			v.done(ev.AvatarID, av, nil)
		case apitype.EventFailed:
			body := apitype.Error{Code: "failed"}
			if ev.Error != nil {
				body = *ev.Error
			}
			v.done(ev.AvatarID, nil, body.Err())
		default:
			v.event(ev)
		}
	}
}
