// Package client is the Go client of assetd's local API (docs/api.md): HTTP
// over the daemon's Unix socket, one method per route, answers decoded into
// the shapes of package apitype.
//
// Every error answer of the daemon comes back as an *Error whose Code says
// what happened (errors.Is(err, client.AvatarAssetMissing) and the like)
// and whose Reason refines it (errcode.ReasonDamaged and the like: package
// apitype/errcode names every code, phase and reason); a socket nobody
// listens on is DaemonNotRunning. A load that fails ends with the failed
// event's error, also an *Error.
//
//	c := client.New(client.DefaultSocket)
//	av, err := c.Load(ctx, "rohan", client.LoadOptions{}, func(ev apitype.Event) {
//		fmt.Printf("%s %.0f%%\n", ev.AvatarID, ev.Progress*100)
//	})
//
// The client imports apitype, apitype/errcode and the manifest's ID rule
// only, never the daemon's packages.
package client
