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

// TestErrcodeNamedHere holds the rule of codes.go: every code, class,
// phase, reason and type of apitype/errcode is named here as errcode's, and
// errs gives no code, phase or reason a value of its own (that would be a
// second source of truth a client of errcode cannot see).
func TestErrcodeNamedHere(t *testing.T) {
	public := decls(t, "../../apitype/errcode")
	here := decls(t, ".")
	for name := range public {
		v, ok := here[name]
		if !ok {
			t.Errorf("errcode.%s is not named in errs: add %s = errcode.%s to codes.go", name, name, name)
			continue
		}
		if v != "errcode."+name {
			t.Errorf("errs.%s is %s, want errcode.%s", name, v, name)
		}
	}
	for name, v := range here {
		if _, ok := public[name]; ok {
			continue
		}
		if strings.HasPrefix(name, "Reason") || strings.HasPrefix(name, "Phase") || strings.HasPrefix(name, "Class") || strings.HasPrefix(v, "Code(") {
			t.Errorf("errs.%s = %s is client-facing: define it in apitype/errcode and name it here", name, v)
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
