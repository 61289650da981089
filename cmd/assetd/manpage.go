//go:build docgen

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/assetd/assetd/configs"
	"github.com/assetd/assetd/internal/version"
)

// manEnvironment and manFiles are the ENVIRONMENT and FILES sections every
// page gets (cobra/doc writes none).
const manEnvironment = `.SH ENVIRONMENT
.TP
\fBASSETD_SOCKET\fP
The daemon's socket, when \fB--socket\fP is not given (default /run/assetd/assetd.sock); for serve, api.socket.
.TP
\fBASSETD_CONFIG\fP
serve: the configuration file, when \fB--config\fP is not given.
.TP
\fBASSETD_STATE_DIR\fP
serve: the cache directory, overriding store.dir.
.TP
\fBNOTIFY_SOCKET\fP, \fBWATCHDOG_USEC\fP, \fBLISTEN_FDS\fP, \fBCREDENTIALS_DIRECTORY\fP
serve: set by systemd (assetd.service): readiness and the watchdog, the socket of assetd.socket, and the session-token credential.
`

const manFiles = `.SH FILES
.TP
\fI/etc/assetd/assetd.toml\fP
The configuration assetd.service runs serve with; see \fBassetd.toml\fP(5).
.TP
\fI/etc/assetd/session-token\fP
The session token (root only, 0600), handed to the daemon as a systemd credential.
.TP
\fI/run/assetd/assetd.sock\fP
The API socket (0660, group assetd), made by assetd.socket.
.TP
\fI/var/lib/assetd\fP
The cache: blobs, the index and partial downloads (store.dir).
.TP
\fI/usr/lib/systemd/system/assetd.service\fP, \fIassetd.socket\fP
The units; the sysusers.d and tmpfiles.d snippets make the assetd user and /etc/assetd.
`

// addManSections puts ENVIRONMENT and FILES before SEE ALSO in every page
// of dir, and assetd.toml(5) into SEE ALSO.
func addManSections(dir string) error {
	pages, err := filepath.Glob(filepath.Join(dir, "*.1"))
	if err != nil {
		return err
	}
	for _, p := range pages {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		page := string(data)
		i := strings.LastIndex(page, ".SH SEE ALSO")
		if i < 0 {
			return fmt.Errorf("%s has no SEE ALSO", p)
		}
		page = page[:i] + manEnvironment + "\n" + manFiles + "\n" +
			strings.TrimRight(page[i:], "\n") + ", \\fBassetd.toml(5)\\fP\n"
		if err := os.WriteFile(p, []byte(page), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeConfigPage writes assetd.toml(5) from configs/assetd.toml: its
// opening comment is the description, and each key is listed under its
// table with its default and the comment above it.
func writeConfigPage(path string, date time.Time) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, ".nh\n.TH \"ASSETD.TOML\" \"5\" \"%s\" \"assetd %s\" \"assetd manual\"\n\n", date.Format("Jan 2006"), version.Version)
	b.WriteString(".SH NAME\nassetd.toml - assetd configuration file\n\n")
	b.WriteString(".SH SYNOPSIS\n\\fI/etc/assetd/assetd.toml\\fP\n\n.SH DESCRIPTION\n")
	var comment []string
	flush := func() {
		for _, l := range comment {
			if l == "" {
				b.WriteString(".PP\n")
				continue
			}
			b.WriteString(manText(l) + "\n")
		}
		comment = comment[:0]
	}
	inTables := false
	sc := bufio.NewScanner(bytes.NewReader(configs.Example))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "#"):
			comment = append(comment, strings.TrimSpace(strings.TrimPrefix(line, "#")))
		case line == "":
			if !inTables {
				comment = append(comment, "")
			}
		case strings.HasPrefix(line, "["):
			if !inTables {
				flush()
				b.WriteString("\n.SH KEYS\n")
				inTables = true
			}
			comment = comment[:0]
			fmt.Fprintf(&b, ".SS %s\n", manText(line))
		default:
			key, value, _ := strings.Cut(line, "=")
			fmt.Fprintf(&b, ".TP\n\\fB%s\\fP = %s\n", manText(strings.TrimSpace(key)), manText(strings.TrimSpace(value)))
			flush()
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	b.WriteString("\n.SH FILES\n.TP\n\\fI/usr/share/assetd/assetd.toml\\fP\nThis reference, with every default; /etc/assetd/assetd.toml starts as a copy.\n")
	b.WriteString("\n.SH SEE ALSO\n\\fBassetd(1)\\fP, \\fBassetd-serve(1)\\fP, \\fBassetd-reload(1)\\fP\n")
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// manText escapes a line of text for roff.
func manText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
