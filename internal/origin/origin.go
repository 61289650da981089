package origin

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/httpserve"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/publish"
)

// Cache-Control values of the two kinds of answer.
const (
	BlobCacheControl     = "public, max-age=31536000, immutable"
	ManifestCacheControl = "no-cache"
)

// ShutdownTimeout bounds how long Serve waits for requests in flight once
// its context ends; connections still open then are closed.
const ShutdownTimeout = 10 * time.Second

// Options configure a Server.
type Options struct {
	Root string // the origin tree
	// AppIDs, when not nil, are the X-App-ID values accepted.
	AppIDs []string
	// Tokens, when not nil, are the bearer session tokens accepted.
	Tokens []string
	// CertFile and KeyFile make Serve speak HTTPS.
	CertFile, KeyFile string
	Logger            *slog.Logger
}

// Server answers the origin protocol from an origin tree.
type Server struct {
	root     *os.Root
	appIDs   map[string]bool
	tokens   map[[sha256.Size]byte]bool
	certFile string
	keyFile  string
	log      *slog.Logger
}

var _ http.Handler = (*Server)(nil)

// New opens the tree at opts.Root. Close the Server when done.
func New(opts Options) (*Server, error) {
	if opts.Root == "" {
		return nil, errors.New("origin: no root")
	}
	if (opts.CertFile == "") != (opts.KeyFile == "") {
		return nil, errors.New("origin: a TLS certificate needs its key and a key its certificate")
	}
	root, err := os.OpenRoot(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	s := &Server{root: root, certFile: opts.CertFile, keyFile: opts.KeyFile, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.AppIDs != nil {
		s.appIDs = make(map[string]bool, len(opts.AppIDs))
		for _, id := range opts.AppIDs {
			s.appIDs[id] = true
		}
	}
	if opts.Tokens != nil {
		s.tokens = make(map[[sha256.Size]byte]bool, len(opts.Tokens))
		for _, t := range opts.Tokens {
			s.tokens[sha256.Sum256([]byte(t))] = true
		}
	}
	if fi, err := root.Stat("v1"); err != nil || !fi.IsDir() {
		s.log.Warn("root has no v1 folder; is it an origin tree written by assetd publish?", "root", opts.Root)
	}
	return s, nil
}

// Close releases the root.
func (s *Server) Close() error { return s.root.Close() }

// TLS reports whether Serve speaks HTTPS.
func (s *Server) TLS() bool { return s.certFile != "" }

// Serve answers requests on ln until ctx ends, then shuts down gracefully:
// it stops accepting, lets requests in flight finish for up to
// ShutdownTimeout, and returns once every connection is done. It returns
// nil after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	serve := func() error {
		if s.TLS() {
			return srv.ServeTLS(ln, s.certFile, s.keyFile)
		}
		return srv.Serve(ln)
	}
	return httpserve.Serve(ctx, srv, ShutdownTimeout, serve, func(err error) {
		s.log.Warn("requests still in flight at shutdown; closing them", "err", err)
	})
}

// ServeHTTP answers one origin-protocol request.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w := &statusWriter{ResponseWriter: rw, status: http.StatusOK}
	defer func() {
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", w.status,
			"bytes", w.n, "remote", r.RemoteAddr, "duration", time.Since(start))
	}()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, errcode.MethodNotAllowed, "only GET and HEAD are served")
		return
	}
	if id, ok := strings.CutPrefix(r.URL.Path, "/v1/avatars/"); ok {
		id, ok = strings.CutSuffix(id, "/manifest")
		if ok && !strings.Contains(id, "/") {
			if s.authorized(w, r) {
				s.serveManifest(w, r, id)
			}
			return
		}
	}
	if digest, ok := strings.CutPrefix(r.URL.Path, "/v1/blobs/sha256/"); ok {
		if s.authorized(w, r) {
			s.serveBlob(w, r, digest)
		}
		return
	}
	writeError(w, http.StatusNotFound, errcode.NotFound, "no such resource; an origin serves /v1/avatars/{id}/manifest and /v1/blobs/sha256/{hex}")
}

// authorized checks the app ID and the session token, answering the
// request itself when they fail.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.appIDs != nil {
		id := r.Header.Get("X-App-ID")
		if id == "" || !s.appIDs[id] {
			writeError(w, http.StatusForbidden, errcode.AppIDUnrecognized, "the X-App-ID header names no app this origin knows")
			return false
		}
	}
	if s.tokens != nil {
		auth := r.Header.Get("Authorization")
		scheme, token, _ := strings.Cut(auth, " ")
		token = strings.TrimSpace(token)
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="assetd"`)
			writeError(w, http.StatusUnauthorized, errcode.SessionTokenExpired, "a bearer session token is required")
			return false
		}
		if !s.tokens[sha256.Sum256([]byte(token))] {
			writeError(w, http.StatusForbidden, errcode.SessionTokenInvalid, "the session token is not valid")
			return false
		}
	}
	return true
}

// openOr404 opens a file of the tree; a missing one is answered by
// unknown, any other failure as an internal error.
func (s *Server) openOr404(w http.ResponseWriter, rel string, unknown func()) (*os.File, os.FileInfo, bool) {
	f, fi, err := s.open(rel)
	switch {
	case errors.Is(err, os.ErrNotExist):
		unknown()
		return nil, nil, false
	case err != nil:
		s.internal(w, err)
		return nil, nil, false
	}
	return f, fi, true
}

func (s *Server) serveManifest(w http.ResponseWriter, r *http.Request, id string) {
	unknown := func() {
		writeError(w, http.StatusNotFound, errcode.AvatarIDUnrecognized, fmt.Sprintf("no avatar %q on this origin", truncate(id)))
	}
	if manifest.ValidateID(id) != nil {
		unknown()
		return
	}
	f, fi, ok := s.openOr404(w, publish.ManifestPath(id), unknown)
	if !ok {
		return
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, manifest.MaxManifestBytes+1))
	if err != nil {
		s.internal(w, err)
		return
	}
	if len(data) > manifest.MaxManifestBytes {
		s.internal(w, fmt.Errorf("manifest of %s is larger than %d bytes", id, manifest.MaxManifestBytes))
		return
	}
	sum := sha256.Sum256(data)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	h.Set("Cache-Control", ManifestCacheControl)
	serveContent(w, r, fi.ModTime(), bytes.NewReader(data))
}

func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, digest string) {
	unknown := func() {
		writeError(w, http.StatusNotFound, errcode.FailedToDownloadAvatarAssets, "no blob with this sha256 on this origin")
	}
	if !manifest.ValidDigest(digest) {
		unknown()
		return
	}
	f, fi, ok := s.openOr404(w, publish.BlobPath(digest), unknown)
	if !ok {
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", `"`+digest+`"`)
	h.Set("Cache-Control", BlobCacheControl)
	serveContent(w, r, fi.ModTime(), f)
}

// open opens a regular file of the tree. Anything else (a folder, a
// symlink out of the root, a special file) is os.ErrNotExist to callers.
func (s *Server) open(name string) (*os.File, os.FileInfo, error) {
	// Stat first: opening a named pipe would block.
	if fi, err := s.root.Stat(name); err != nil || !fi.Mode().IsRegular() {
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("not served", "name", name, "err", err)
		}
		return nil, nil, os.ErrNotExist
	}
	f, err := s.root.Open(name)
	if err != nil {
		return nil, nil, os.ErrNotExist
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, os.ErrNotExist
	}
	return f, fi, nil
}

func (s *Server) internal(w http.ResponseWriter, err error) {
	s.log.Error("serving", "err", err)
	writeError(w, http.StatusInternalServerError, errcode.Internal, "the origin could not read its tree")
}

func writeError(w http.ResponseWriter, status int, code errcode.Code, msg string) {
	body, _ := json.Marshal(struct {
		Code    errcode.Code `json:"code"`
		Message string       `json:"message"`
	}{code, msg})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// statusWriter records the status and size of an answer for the log.
type statusWriter struct {
	http.ResponseWriter
	status      int
	n           int64
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.wroteHeader = true
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// ReadFrom keeps the server's sendfile path for blobs.
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	w.wroteHeader = true
	n, err := io.Copy(w.ResponseWriter, r)
	w.n += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ReadList reads a file of app IDs or tokens: one a line, surrounding
// space trimmed, blank lines and lines starting with '#' skipped. A file
// that lists nothing is an error: it would lock every client out.
func ReadList(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists nothing", path)
	}
	return out, nil
}

// MaxRanges is the most ranges one request may ask for. A request with
// more (15,000 "0-0" ranges would make a 2 MB multipart answer of one
// small blob) is answered 200 with the whole body: RFC 9110 lets a server
// ignore Range, and a client that asked for many pieces still gets them.
const MaxRanges = 16

// serveContent is http.ServeContent with Range bounded by MaxRanges.
func serveContent(w http.ResponseWriter, r *http.Request, mod time.Time, content io.ReadSeeker) {
	if v := r.Header.Get("Range"); v != "" && strings.Count(v, ",") >= MaxRanges {
		r2 := *r
		r2.Header = r.Header.Clone()
		r2.Header.Del("Range")
		r = &r2
	}
	http.ServeContent(w, r, "", mod, content)
}
