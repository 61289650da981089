package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/assetd/assetd/internal/token"
)

func init() { register(newSessionCmd) }

// maxTokenBytes bounds what is read as a token: a mistaken file or pipe
// is refused rather than sent whole.
const maxTokenBytes = 16 << 10

func newSessionCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "session",
		Short: "Manage the daemon's session token",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("session: unknown command %q\nUsage: assetd session set [--token-file F]", args[0])
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(newSessionSetCmd(g))
	return cmd
}

func newSessionSetCmd(g *globals) *cobra.Command {
	var tokenFile, appID string
	cmd := &cobra.Command{
		Use:   "set [--token-file F]",
		Short: "Give the daemon a new session token",
		Long: `session set gives the running daemon a new session token (the bearer token
it sends to the origin), read from --token-file or else from stdin; on a
terminal it is asked for without echo. It is never taken from the command
line, where other users could read it. Loads that failed on the token are
retried. The token lasts until the daemon restarts or its token file
(origin.session_token_file) changes.`,
		Example: `  get-token | assetd session set
  assetd session set --token-file /run/secrets/assetd-token`,
		Args: usageArgs(func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("the token is read from stdin or --token-file, never from the command line")
			}
			return nil
		}),
		RunE: func(cmd *cobra.Command, _ []string) error {
			token, err := readToken(cmd, tokenFile)
			if err != nil {
				return err
			}
			c := dial(g)
			defer c.CloseIdleConnections()
			if err := c.SetSession(cmd.Context(), token, appID); err != nil {
				return fail(cmd, err)
			}
			if g.json {
				return printJSON(cmd, map[string]bool{"ok": true})
			}
			fmt.Fprintln(cmd.OutOrStdout(), "session token set")
			return nil
		},
	}
	cmd.Flags().StringVar(&tokenFile, "token-file", "", `read the token from this file ("-" is stdin)`)
	cmd.Flags().StringVar(&appID, "app-id", "", "the app ID the token belongs to (default: the configured one)")
	return cmd
}

// readToken reads the token from the file, stdin, or the terminal.
func readToken(cmd *cobra.Command, file string) (string, error) {
	var data []byte
	var err error
	switch in := cmd.InOrStdin(); {
	case file != "" && file != "-":
		var f *os.File
		if f, err = os.Open(file); err != nil {
			return "", usagef("--token-file: %v", err)
		}
		defer f.Close()
		data, err = io.ReadAll(io.LimitReader(f, maxTokenBytes+1))
	case isTerminalReader(in):
		fmt.Fprint(cmd.ErrOrStderr(), "session token: ")
		data, err = term.ReadPassword(int(in.(*os.File).Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
	default:
		data, err = io.ReadAll(io.LimitReader(in, maxTokenBytes+1))
	}
	if err != nil {
		return "", fmt.Errorf("reading the token: %w", err)
	}
	if len(data) > maxTokenBytes {
		return "", usagef("the token is longer than %d bytes", maxTokenBytes)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", usagef("no token given (pipe it to stdin or use --token-file)")
	}
	if strings.ContainsAny(tok, "\r\n") {
		return "", usagef("the token must be one line")
	}
	if err := token.Check(tok); err != nil {
		return "", usagef("%v", err)
	}
	return tok, nil
}

func isTerminalReader(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
