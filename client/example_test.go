package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os/signal"
	"syscall"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/client"
)

// Load an avatar, printing its progress, and tell a missing daemon, a
// cancelled load and an avatar error apart.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	c := client.New(client.DefaultSocket)
	av, err := c.Load(ctx, "rohan", client.LoadOptions{}, func(ev apitype.Event) {
		if ev.Type == apitype.EventProgress {
			fmt.Printf("rohan: %3.0f%%\n", ev.Progress*100)
		}
	})
	var e *client.Error
	switch {
	case errors.Is(err, client.DaemonNotRunning):
		log.Fatal("start assetd first: ", err)
	case errors.Is(err, client.Cancelled):
		log.Fatal("interrupted")
	case errors.As(err, &e):
		log.Fatalf("%s (%s): %s", e.Code, e.Message, e.Recovery())
	case err != nil:
		log.Fatal(err)
	}
	for _, a := range av.Assets {
		fmt.Println(a.Path, a.LocalPath) // open these read-only
	}
}

// Read a cached avatar without downloading anything.
func ExampleClient_Get() {
	c := client.New(client.DefaultSocket)
	av, err := c.Get(context.Background(), "rohan")
	if errors.Is(err, client.AvatarAssetMissing) {
		fmt.Println("not cached; load it first")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(av.Version, av.SizeBytes)
}
