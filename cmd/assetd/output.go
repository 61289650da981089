package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/client"
	"github.com/assetd/assetd/internal/errs"
)

// dial returns a client of the daemon the command line names.
func dial(g *globals) *client.Client { return client.New(g.socket) }

// usageArgs makes cobra's argument checks usage errors (exit 2) that show
// how the command is called.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usagef("%s: %v\nUsage: %s", cmd.Name(), err, cmd.UseLine())
		}
		return nil
	}
}

// idArgs is check followed by the one local check of the avatar IDs
// among the arguments (all of them, or the first only), before any
// request: a bad ID is avatarIDUnrecognized, reason invalidId, exit 2,
// with the same message whatever is wrong with it.
func idArgs(check cobra.PositionalArgs, firstOnly bool) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return err
		}
		ids := args
		if firstOnly && len(ids) > 1 {
			ids = ids[:1]
		}
		for _, id := range ids {
			if err := client.ValidateID(id); err != nil {
				return fail(cmd, err)
			}
		}
		return nil
	}
}

// noArgs is cobra.NoArgs with a message that fits a command without
// subcommands.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("takes no arguments, but got %q", args[0])
	}
	return nil
}

// fail prints err the way a user wants to read it and returns it marked
// as reported, so that main only picks the exit code. Errors without an
// assetd code (usage mistakes, local files) are left for main to print.
func fail(cmd *cobra.Command, err error) error {
	var e *errcode.Error
	var ue *usageError
	if err == nil || errors.As(err, &ue) || !errors.As(err, &e) {
		return err
	}
	printErr(cmd, e)
	return reported(err)
}

// printErr prints one error: a line for people on stderr or, with
// --json, the API's error shape {"error":{...}} on stdout, so that stdout
// holds nothing but JSON.
func printErr(cmd *cobra.Command, e *errcode.Error) {
	if jsonMode(cmd) {
		writeErrorJSON(cmd.OutOrStdout(), e)
		return
	}
	fmt.Fprintln(cmd.ErrOrStderr(), describe(e))
}

// writeErrorJSON writes e as one line of {"error":{...}}, with the hint
// the daemon sent or one chosen here.
func writeErrorJSON(w io.Writer, e *errcode.Error) {
	b := e.Body()
	b.Hint = (errs.Facts{}).Hint(e)
	if interrupted(e) {
		b.Message = "interrupted"
	}
	json.NewEncoder(w).Encode(errcode.Envelope{Error: b})
}

// jsonMode reports whether the command line asked for --json.
func jsonMode(cmd *cobra.Command) bool {
	f := cmd.Flags().Lookup("json")
	if f == nil {
		f = cmd.Root().PersistentFlags().Lookup("json")
	}
	return f != nil && f.Value.String() == "true"
}

// describe is one line for people: who, the code, what happened, what to
// do, and the details an operator needs to look further:
//
//	nobody: avatarAssetMissing: avatar nobody is not cached (run: assetd preload nobody) [reason notCached]
func describe(e *errcode.Error) string {
	switch {
	case e.Code == errcode.DaemonNotRunning && strings.HasPrefix(e.Message, "assetd is not running"):
		return e.Message
	case interrupted(e):
		return "interrupted"
	}
	var b strings.Builder
	if e.AvatarID != "" {
		b.WriteString(e.AvatarID + ": ")
	}
	b.WriteString(string(e.Code) + ": ")
	msg := e.Message
	if msg == "" {
		msg = e.Code.Description()
	}
	b.WriteString(msg)
	if e.Err != nil && !strings.Contains(msg, e.Err.Error()) && e.Code == errcode.DaemonNotRunning {
		b.WriteString(": " + e.Err.Error())
	}
	if h := hint(e); h != "" {
		b.WriteString(" (" + h + ")")
	}
	var details []string
	if e.Reason != "" {
		details = append(details, "reason "+e.Reason)
	}
	if e.Asset != "" {
		details = append(details, "asset "+e.Asset)
	}
	if e.HTTPStatus != 0 {
		details = append(details, fmt.Sprintf("HTTP %d", e.HTTPStatus))
	}
	if e.ServerCode != "" {
		details = append(details, "server code "+e.ServerCode)
	}
	if len(details) > 0 {
		b.WriteString(" [" + strings.Join(details, ", ") + "]")
	}
	return b.String()
}

// hint is what to do next in assetd's terms: the daemon's hint, else one
// chosen here from the reason and code, else the code's recovery text.
func hint(e *errcode.Error) string {
	if h := (errs.Facts{}).Hint(e); h != "" {
		return h
	}
	return e.Recovery()
}

// interrupted reports whether err is this command being interrupted
// (Ctrl-C), rather than a load cancelled by someone else.
func interrupted(err error) bool {
	return errors.Is(err, errcode.Cancelled) && errors.Is(err, context.Canceled)
}

// perAvatar reports whether err concerns one avatar, so that a command
// working through several goes on with the next; an unreachable daemon,
// an interruption or a refused caller ends it.
func perAvatar(err error) bool {
	c := errs.ExitCode(err)
	return c == errs.ExitAvatar || c == errs.ExitAccount
}

// worst picks the error whose exit code matters most when several
// avatars fail: an interruption, then an unreachable daemon, then an
// account problem (a new token fixes every avatar), then the rest.
func worst(errList []error) error {
	rank := map[int]int{
		errs.ExitInterrupted: 5,
		errs.ExitUnreachable: 4,
		errs.ExitAccount:     3,
		errs.ExitUsage:       2,
		errs.ExitAvatar:      1,
	}
	var w error
	for _, err := range errList {
		if err != nil && (w == nil || rank[errs.ExitCode(err)] > rank[errs.ExitCode(w)]) {
			w = err
		}
	}
	return w
}

// printJSON writes v as indented JSON.
func printJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// isTerminal reports whether w is a terminal that bars can be drawn on:
// one with a size (a pty that never got one would show nothing).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false
	}
	cols, rows, err := term.GetSize(int(f.Fd()))
	return err == nil && cols > 0 && rows > 0
}

// humanBytes prints a byte count in binary units: 7.3 MiB.
func humanBytes(n int64) string { return errs.HumanBytes(n) }

// ago prints how long ago t was, coarsely: "3m ago", "never".
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

// plural prints "1 file", "3 files".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// dedupe drops repeated IDs, keeping the first of each.
func dedupe(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
