package main

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/spf13/cobra"

	"github.com/assetd/assetd/internal/origin"
)

func init() { register(newOriginCmd) }

func newOriginCmd(_ *globals) *cobra.Command {
	var (
		opts      origin.Options
		listen    string
		appIDFile string
		tokenFile string
		logLevel  string
	)
	cmd := &cobra.Command{
		Use:   "origin --root DIR [--listen ADDR]",
		Short: "Serve an origin tree written by assetd publish over HTTP",
		Long: `origin serves an origin tree (assetd publish's OUT) as the origin protocol
describes: /v1/avatars/{id}/manifest and /v1/blobs/sha256/{hex}, with Range,
ETag and If-None-Match. It is meant for demos, tests and small on-premises
installs; any static file server or CDN can serve the same tree.

With --app-ids, requests must carry a listed X-App-ID (else 403
appIDUnrecognized); with --tokens, a listed "Authorization: Bearer" token
(missing: 401 sessionTokenExpired; unknown: 403 sessionTokenInvalid). Both
files hold one entry a line; blank lines and '#' comments are skipped.

It prints "listening on URL" on stdout once it accepts connections (use
--listen 127.0.0.1:0 for a free port) and stops gracefully on SIGINT or
SIGTERM. Plain http is accepted by assetd only on loopback addresses unless
origin.allow_insecure is set; --tls-cert and --tls-key serve HTTPS.`,
		Example: `  assetd origin --root site/ --listen 127.0.0.1:8787
  assetd origin --root site/ --listen :8443 --tls-cert cert.pem --tls-key key.pem --tokens tokens.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Root == "" {
				return usagef("--root is required")
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usagef("--log-level: %v", err)
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			opts.Logger = log
			var err error
			if appIDFile != "" {
				if opts.AppIDs, err = origin.ReadList(appIDFile); err != nil {
					return usagef("--app-ids: %v", err)
				}
			}
			if tokenFile != "" {
				if opts.Tokens, err = origin.ReadList(tokenFile); err != nil {
					return usagef("--tokens: %v", err)
				}
			}
			srv, err := origin.New(opts)
			if err != nil {
				return err
			}
			defer srv.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			scheme := "http"
			if srv.TLS() {
				scheme = "https"
			}
			addr := ln.Addr().(*net.TCPAddr)
			if !srv.TLS() && !addr.IP.IsLoopback() {
				log.Warn("serving plain http beyond loopback: clients need origin.allow_insecure = true, and tokens cross the network in clear; use --tls-cert/--tls-key")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "listening on %s://%s\n", scheme, ln.Addr())
			log.Info("origin started", "root", opts.Root, "addr", ln.Addr().String(),
				"appIds", len(opts.AppIDs), "tokens", len(opts.Tokens))
			if err := srv.Serve(cmd.Context(), ln); err != nil {
				return err
			}
			log.Info("origin stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Root, "root", "", "the origin tree to serve (assetd publish's OUT)")
	f.StringVar(&listen, "listen", "127.0.0.1:8787", "address to listen on (port 0 = any free port)")
	f.StringVar(&appIDFile, "app-ids", "", "file of accepted X-App-ID values, one a line")
	f.StringVar(&tokenFile, "tokens", "", "file of accepted bearer session tokens, one a line")
	f.StringVar(&opts.CertFile, "tls-cert", "", "serve HTTPS with this PEM certificate (needs --tls-key)")
	f.StringVar(&opts.KeyFile, "tls-key", "", "the PEM private key of --tls-cert")
	f.StringVar(&logLevel, "log-level", "info", "debug (logs every request), info, warn or error")
	return cmd
}
