//go:build docgen

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDocgen(t *testing.T) {
	t.Setenv("ASSETD_SOCKET", "/elsewhere.sock")
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	dir := t.TempDir()
	if _, errOut, code := cli(t, t.Context(), "", "docgen", dir); code != 0 {
		t.Fatalf("docgen: exit %d, %s", code, errOut)
	}
	read := func(name string) string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	root := read("man/assetd.1")
	if !strings.Contains(root, `.TH "ASSETD" "1"`) || !strings.Contains(root, "assetd-serve(1)") {
		t.Errorf("assetd.1 lacks its header or its SEE ALSO:\n%s", root)
	}
	serve := read("man/assetd-serve.1")
	if !strings.Contains(serve, DefaultSocket) || strings.Contains(serve, "/elsewhere.sock") || strings.Contains(serve, "Auto generated") {
		t.Errorf("assetd-serve.1 depends on who built it:\n%s", serve)
	}
	for _, page := range []string{root, serve, read("man/assetd-ls.1")} {
		for _, want := range []string{".SH ENVIRONMENT", "ASSETD_SOCKET", ".SH FILES", "/etc/assetd/assetd.toml", "assetd.toml(5)"} {
			if !strings.Contains(page, want) {
				t.Errorf("a page lacks %q:\n%s", want, page)
			}
		}
		if strings.Index(page, ".SH FILES") > strings.Index(page, ".SH SEE ALSO") {
			t.Errorf("FILES after SEE ALSO")
		}
	}
	// assetd.toml(5) documents every key of the reference, under its table.
	conf := read("man/assetd.toml.5")
	if !strings.Contains(conf, `.TH "ASSETD.TOML" "5"`) || !strings.Contains(conf, ".SS [api]") {
		t.Errorf("assetd.toml.5 lacks its header or tables:\n%s", conf)
	}
	for _, key := range []string{"url", "trusted_keys", "concurrency", "max_bytes", "socket_mode", "allowed_gids", "refresh_interval", "format"} {
		if !strings.Contains(conf, `\fB`+key+`\fP = `) {
			t.Errorf("assetd.toml.5 does not document %s", key)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "man/assetd-docgen.1")); !os.IsNotExist(err) {
		t.Errorf("the hidden docgen command has a man page: %v", err)
	}
	for name, want := range map[string]string{
		"completions/assetd":      "__start_assetd",
		"completions/_assetd":     "#compdef assetd",
		"completions/assetd.fish": "complete -c assetd",
	} {
		if got := read(name); !strings.Contains(got, want) {
			t.Errorf("%s lacks %q", name, want)
		}
	}
	// cobra's completion command is there for users too.
	out, _, code := cli(t, t.Context(), "", "completion", "zsh")
	if code != 0 || !strings.Contains(out, "#compdef assetd") {
		t.Errorf("assetd completion zsh: exit %d", code)
	}
}
