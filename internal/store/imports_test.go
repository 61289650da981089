package store

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the layering of doc.go: store knows nothing of fetch,
// manager or api.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			for _, bad := range []string{"/internal/fetch", "/internal/manager", "/internal/api", "/internal/daemon"} {
				if strings.HasPrefix(p, "github.com/assetd/assetd") && strings.HasSuffix(p, bad) {
					t.Errorf("%s imports %s", name, p)
				}
			}
		}
	}
}
