package errs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoVocabularyHere holds the line between the two packages: the
// client-facing vocabulary (codes, classes, phases, reasons, the error type
// and its wire body) lives in apitype/errcode alone, and the daemon names it
// there; errs declares none of it again, neither as a value of its own (a
// second source of truth a client of errcode cannot see) nor as an alias (a
// second list to keep in step).
func TestNoVocabularyHere(t *testing.T) {
	public := decls(t, "../../apitype/errcode")
	for name, v := range decls(t, ".") {
		switch {
		case public[name] != "":
			t.Errorf("errs.%s names errcode.%s again: use errcode.%s", name, name, name)
		case strings.HasPrefix(name, "Reason"), strings.HasPrefix(name, "Phase"), strings.HasPrefix(name, "Class"),
			strings.HasPrefix(v, "Code("), strings.HasPrefix(v, "errcode."):
			t.Errorf("errs.%s = %s is client-facing: define it in apitype/errcode", name, v)
		}
	}
}

// decls returns the exported constants and types declared in the non-test
// files of dir, each with its value (or aliased type) as source text;
// a constant with an explicit type is given as Type(value).
func decls(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	out := map[string]string{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, b, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		tf := fset.File(f.Pos())
		src := func(n ast.Node) string { return string(b[tf.Offset(n.Pos()):tf.Offset(n.End())]) }
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, s := range g.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() {
						out[s.Name.Name] = src(s.Type)
					}
				case *ast.ValueSpec:
					if g.Tok != token.CONST {
						continue
					}
					for i, n := range s.Names {
						if !n.IsExported() {
							continue
						}
						v := "iota"
						if i < len(s.Values) {
							v = src(s.Values[i])
						}
						if s.Type != nil {
							v = src(s.Type) + "(" + v + ")"
						}
						out[n.Name] = v
					}
				}
			}
		}
	}
	return out
}
