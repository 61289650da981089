// Command assetd downloads, verifies and caches avatars for every app on a
// device. `assetd serve` is the daemon; every other command but publish,
// origin and keygen is a client of its Unix socket (docs/api.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/assetd/assetd/internal/errs"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, restore the default: a second Ctrl-C kills.
	context.AfterFunc(ctx, stop)
	root := newRootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return errs.ExitOK
	}
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "assetd: %v\n", err)
		return errs.ExitUsage
	case errors.Is(err, errSilent):
		return exitCodeOf(err)
	}
	fmt.Fprintf(os.Stderr, "assetd: %v\n", err)
	return exitCodeOf(err)
}

// exitCodeOf maps err to the documented exit codes; an error with no code
// of its own that came from the command line is a usage error.
func exitCodeOf(err error) int {
	var e *errs.Error
	if !errors.As(err, &e) {
		if errors.Is(err, context.Canceled) {
			return errs.ExitInterrupted
		}
		return errs.ExitUsage
	}
	return errs.ExitCode(err)
}
