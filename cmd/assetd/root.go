package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/internal/errs"
)

// DefaultSocket is where the daemon listens unless --socket or
// ASSETD_SOCKET say otherwise.
const DefaultSocket = "/run/assetd/assetd.sock"

// globals are the flags every command shares.
type globals struct {
	socket string
	json   bool
}

var commands []func(*globals) *cobra.Command

// register adds a subcommand; each command's file calls it from init.
func register(f func(*globals) *cobra.Command) { commands = append(commands, f) }

// usageError is a command-line mistake: exit code 2.
type usageError struct{ err error }

func (u *usageError) Error() string { return u.err.Error() }
func (u *usageError) Unwrap() error { return u.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// errSilent marks an error that the command has already reported; main
// exits with its code and prints nothing more.
var errSilent = errors.New("already reported")

type silentError struct{ err error }

func (s *silentError) Error() string   { return s.err.Error() }
func (s *silentError) Unwrap() []error { return []error{s.err, errSilent} }

// reported wraps err so that main prints nothing but still exits with the
// code err maps to.
func reported(err error) error {
	if err == nil {
		return nil
	}
	return &silentError{err}
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "assetd",
		Short: "Download, verify and cache avatars for every app on this device",
		Long: `assetd fetches avatars (manifest and asset files) from an origin, verifies
every file by size and sha256 while it streams, caches them content-addressed
on disk, keeps them fresh, and answers local apps over a Unix socket.

` + errs.ExitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := os.Getenv("ASSETD_SOCKET")
	if def == "" {
		def = DefaultSocket
	}
	root.PersistentFlags().StringVar(&g.socket, "socket", def, "the daemon's Unix socket (env ASSETD_SOCKET)")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print JSON instead of text")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	bi := build()
	root.Version = bi.Version
	root.SetVersionTemplate(strings.ReplaceAll(bi.line(), "{{", "") + "\n")
	for _, f := range commands {
		root.AddCommand(f(g))
	}
	addCompletions(root, g)
	for _, c := range root.Commands() {
		if offline[c.Name()] {
			hideSocket(c)
		}
	}
	return root
}

// offline are the commands that never talk to the daemon: their help does
// not list --socket.
var offline = map[string]bool{"publish": true, "keygen": true, "origin": true, "samples": true, "version": true}

// hideSocket hides the root's --socket from c's help and usage. The flag
// stays accepted (a script may pass it to every command).
func hideSocket(c *cobra.Command) {
	help, usage := c.HelpFunc(), c.UsageFunc()
	hidden := func(f func()) {
		fl := c.Root().PersistentFlags().Lookup("socket")
		fl.Hidden = true
		defer func() { fl.Hidden = false }()
		f()
	}
	c.SetHelpFunc(func(c *cobra.Command, args []string) { hidden(func() { help(c, args) }) })
	c.SetUsageFunc(func(c *cobra.Command) (err error) {
		hidden(func() { err = usage(c) })
		return err
	})
}
