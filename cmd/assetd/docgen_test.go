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
