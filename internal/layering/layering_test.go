package layering

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docPath is the file that holds the table, from the module root.
const docPath = "docs/architecture.md"

// rule is one row of the table: what a package may import.
type rule struct {
	imports map[string]bool // packages of this module, from the module root
	modules map[string]bool // third-party modules
	never   []string        // packages or modules never among its deps
}

// pkg is what the test reads of one package of `go list -deps -json`.
type pkg struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Deps       []string
	Module     *struct {
		Path string
		Main bool
	}
}

// TestLayering checks the module's real dependency graph against the
// table of docs/architecture.md.
func TestLayering(t *testing.T) {
	root, table := realTable(t)
	for _, v := range check(goList(t, root), table) {
		t.Errorf("%s", v)
	}
}

// realTable is the module's root and the table docs/architecture.md holds.
func realTable(t *testing.T) (root string, table map[string]rule) {
	t.Helper()
	root = moduleRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, docPath))
	if err != nil {
		t.Fatal(err)
	}
	table, err = parseTable(doc)
	if err != nil {
		t.Fatalf("%s: %v", docPath, err)
	}
	return root, table
}

// moduleRoot is the directory of go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// goCommand is the go command on PATH ("" when there is none): go test
// puts the $GOROOT/bin of the toolchain running the test first on its
// PATH, so this is the go that built the test.
func goCommand() string {
	p, err := exec.LookPath("go")
	if err != nil {
		return ""
	}
	return p
}

// goList runs `go list -deps -json ./...` in root: every package of the
// module (without tests) and everything they depend on.
func goList(t *testing.T, root string) []pkg {
	goBin := goCommand()
	if goBin == "" {
		t.Skip("no go command: cannot list the dependency graph")
	}
	cmd := exec.Command(goBin, "list", "-deps", "-json=ImportPath,Standard,Imports,Deps,Module", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	pkgs, err := decode(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return pkgs
}

// decode reads go list's stream of JSON objects.
func decode(r io.Reader) ([]pkg, error) {
	var pkgs []pkg
	dec := json.NewDecoder(r)
	for {
		var p pkg
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return pkgs, nil
		}
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, p)
	}
}

// backticked finds the `quoted` entries of a table cell.
var backticked = regexp.MustCompile("`([^`]+)`")

// parseTable reads the table of the "## Layering" section of the doc: a
// row per package, `| package | may import | third-party | never |`.
func parseTable(doc []byte) (map[string]rule, error) {
	table := map[string]rule{}
	in := false
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "## ") {
			in = line == "## Layering"
			continue
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 4 {
			return nil, fmt.Errorf("line %d: %d cells, want 4 (package, may import, third-party, never)", n, len(cells))
		}
		name := entries(cells[0])
		if len(name) != 1 {
			return nil, fmt.Errorf("line %d: the first cell names %d packages, want 1", n, len(name))
		}
		if _, dup := table[name[0]]; dup {
			return nil, fmt.Errorf("line %d: %s has a second row", n, name[0])
		}
		r := rule{imports: set(entries(cells[1])), modules: set(entries(cells[2])), never: entries(cells[3])}
		table[name[0]] = r
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(table) == 0 {
		return nil, errors.New(`no table rows in a "## Layering" section`)
	}
	return table, nil
}

func entries(cell string) []string {
	var out []string
	for _, m := range backticked.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

func set(list []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range list {
		m[s] = true
	}
	return m
}

// check returns every way the graph breaks the table, sorted: an import
// the table does not allow, a dependency it forbids, a package of the
// module without a row and a row without a package.
func check(pkgs []pkg, table map[string]rule) []string {
	mainMod := ""
	moduleOf := map[string]string{} // import path -> module path; "" for std
	for _, p := range pkgs {
		if p.Module != nil {
			moduleOf[p.ImportPath] = p.Module.Path
			if p.Module.Main {
				mainMod = p.Module.Path
			}
		}
	}
	rel := func(path string) (string, bool) {
		if path == mainMod {
			return ".", true
		}
		r, ok := strings.CutPrefix(path, mainMod+"/")
		return r, ok
	}
	var bad []string
	seen := map[string]bool{}
	for _, p := range pkgs {
		if p.Standard || p.Module == nil || !p.Module.Main {
			continue
		}
		name, _ := rel(p.ImportPath)
		seen[name] = true
		r, ok := table[name]
		if !ok {
			bad = append(bad, fmt.Sprintf("%s has no row in the layering table of %s: add one", name, docPath))
			continue
		}
		for _, imp := range p.Imports {
			if own, ok := rel(imp); ok {
				if !r.imports[own] {
					bad = append(bad, fmt.Sprintf("%s imports %s, which its row in %s does not allow", name, own, docPath))
				}
				continue
			}
			mod := moduleOf[imp]
			if mod == "" { // the standard library
				continue
			}
			if !r.modules[mod] {
				bad = append(bad, fmt.Sprintf("%s imports %s (module %s), which its row in %s does not allow", name, imp, mod, docPath))
			}
		}
		for _, never := range r.never {
			if _, own := table[never]; own {
				never = mainMod + "/" + never
			}
			for _, d := range p.Deps {
				if d == never || strings.HasPrefix(d, never+"/") {
					bad = append(bad, fmt.Sprintf("%s depends on %s, which its row in %s forbids (never: %s)", name, d, docPath, never))
					break // one is enough: the rest are its subpackages
				}
			}
		}
	}
	for name := range table {
		if !seen[name] {
			bad = append(bad, fmt.Sprintf("%s has a row in the layering table of %s but no package: remove it", name, docPath))
		}
	}
	slices.Sort(bad)
	return bad
}
