// Command assetd downloads, verifies and caches avatars for every app on a
// device. `assetd serve` is the daemon; every other command but publish,
// origin and keygen is a client of its Unix socket (docs/api.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/apitype/errcode"
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
	return finish(root, args, err, os.Stdout, os.Stderr)
}

// finish prints what the command left unreported and returns the exit
// code: a line on stderr, or with --json one {"error":{...}} on stdout.
func finish(root *cobra.Command, args []string, err error, stdout, stderr io.Writer) int {
	if err == nil {
		return errs.ExitOK
	}
	code := exitCodeOf(err)
	var ue *usageError
	if errors.As(err, &ue) {
		code = errs.ExitUsage
	}
	switch {
	case errors.Is(err, errSilent):
	case wantJSON(root, args):
		e := &errcode.Error{Code: errcode.BadRequest, Phase: errcode.PhaseLocal, Message: err.Error(), Err: err}
		var own *errcode.Error
		switch {
		case ue == nil && errors.As(err, &own):
			e = own
		case ue == nil && errors.Is(err, context.Canceled):
			e = &errcode.Error{Code: errcode.Cancelled, Phase: errcode.PhaseLocal, Message: "interrupted", Err: err}
		}
		writeErrorJSON(stdout, e)
	default:
		fmt.Fprintf(stderr, "assetd: %v\n", err)
	}
	return code
}

// wantJSON reports whether the command line asked for --json, also when
// it could not be parsed.
func wantJSON(root *cobra.Command, args []string) bool {
	if f := root.PersistentFlags().Lookup("json"); f != nil && f.Value.String() == "true" {
		return true
	}
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--json", "--json=true":
			return true
		}
	}
	return false
}

// exitCodeOf maps err to the documented exit codes; an error with no code
// of its own that came from the command line is a usage error.
func exitCodeOf(err error) int {
	var e *errcode.Error
	if !errors.As(err, &e) {
		if errors.Is(err, context.Canceled) {
			return errs.ExitInterrupted
		}
		return errs.ExitUsage
	}
	return errs.ExitCode(err)
}
