package layering

import (
	"slices"
	"strings"
	"testing"
)

// graph builds a synthetic `go list -deps` output for the module
// example.com/m: edges maps a package to its direct imports; a package
// with a dot in its first element is third-party (its module is its first
// two elements), one without is in the standard library.
func graph(edges map[string][]string) []pkg {
	const mod = "example.com/m"
	var deps func(string, map[string]bool)
	deps = func(p string, seen map[string]bool) {
		for _, d := range edges[p] {
			if !seen[d] {
				seen[d] = true
				deps(d, seen)
			}
		}
	}
	var pkgs []pkg
	for p, imps := range edges {
		seen := map[string]bool{}
		deps(p, seen)
		q := pkg{ImportPath: p, Imports: imps}
		for d := range seen {
			q.Deps = append(q.Deps, d)
		}
		slices.Sort(q.Deps)
		switch first, _, _ := strings.Cut(p, "/"); {
		case strings.HasPrefix(p, mod):
			q.Module = &struct {
				Path string
				Main bool
			}{mod, true}
		case strings.Contains(first, "."):
			parts := strings.SplitN(p, "/", 3)
			q.Module = &struct {
				Path string
				Main bool
			}{strings.Join(parts[:2], "/"), false}
		default:
			q.Standard = true
		}
		pkgs = append(pkgs, q)
	}
	return pkgs
}

const syntheticDoc = "# Architecture\n\n## Layering\n\n" +
	"| package | may import | third-party | never |\n| --- | --- | --- | --- |\n" +
	"| `a` | `b` | | `c` `example.org/toml` |\n" +
	"| `b` | `c` | | |\n" +
	"| `c` | | `example.org/toml` | |\n" +
	"\n## Next\n\n| `z` | | | |\n"

// clean is a graph that keeps syntheticDoc's table.
func clean() map[string][]string {
	return map[string][]string{
		"example.com/m/a":        {"example.com/m/b", "fmt"},
		"example.com/m/b":        {"fmt"},
		"example.com/m/c":        {"example.org/toml/parse", "strings"},
		"example.org/toml/parse": {"strings"},
		"fmt":                    nil,
		"strings":                nil,
	}
}

// TestCheckCatches is the test of the test: each forbidden edge added to a
// clean synthetic graph is reported, and the clean graph is not.
func TestCheckCatches(t *testing.T) {
	table, err := parseTable([]byte(syntheticDoc))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := table["z"]; ok {
		t.Fatal("a row outside the Layering section was read")
	}
	if bad := check(graph(clean()), table); len(bad) != 0 {
		t.Fatalf("the clean graph: %q", bad)
	}
	for _, tc := range []struct {
		name   string
		change func(g map[string][]string)
		want   []string // a part of each violation, in order
	}{
		{"an import of the module the row does not allow", func(g map[string][]string) {
			g["example.com/m/b"] = append(g["example.com/m/b"], "example.com/m/a")
		}, []string{"b imports a, which its row"}},
		{"a third-party module the row does not allow", func(g map[string][]string) {
			g["example.com/m/b"] = append(g["example.com/m/b"], "example.org/toml/parse")
		}, []string{
			"a depends on example.org/toml/parse, which its row in docs/architecture.md forbids (never: example.org/toml)",
			"b imports example.org/toml/parse (module example.org/toml)",
		}},
		{"a forbidden package reached through an allowed one", func(g map[string][]string) {
			g["example.com/m/b"] = append(g["example.com/m/b"], "example.com/m/c")
		}, []string{
			"a depends on example.com/m/c, which its row in docs/architecture.md forbids (never: example.com/m/c)",
			"a depends on example.org/toml/parse, which its row in docs/architecture.md forbids (never: example.org/toml)",
		}},
		{"a package without a row", func(g map[string][]string) {
			g["example.com/m/d"] = []string{"fmt"}
		}, []string{"d has no row"}},
		{"a row without a package", func(g map[string][]string) {
			delete(g, "example.com/m/c")
			delete(g, "example.org/toml/parse")
		}, []string{"c has a row in the layering table of docs/architecture.md but no package"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := clean()
			tc.change(g)
			bad := check(graph(g), table)
			if len(bad) != len(tc.want) {
				t.Fatalf("got %d violations, want %d:\n%s", len(bad), len(tc.want), strings.Join(bad, "\n"))
			}
			for i := range bad {
				if !strings.Contains(bad[i], tc.want[i]) {
					t.Errorf("violation %d: %q, want it to say %q", i, bad[i], tc.want[i])
				}
			}
		})
	}
}

// TestCheckCatchesOnTheRealGraph adds the drift this test was written
// against to the real graph: internal/api importing internal/config (and
// so the TOML parser). The real table must refuse it.
func TestCheckCatchesOnTheRealGraph(t *testing.T) {
	root, table := realTable(t)
	pkgs := goList(t, root)
	var cfg pkg
	for _, p := range pkgs {
		if strings.HasSuffix(p.ImportPath, "/internal/config") {
			cfg = p
		}
	}
	if cfg.ImportPath == "" {
		t.Fatal("internal/config is not in the graph")
	}
	found := false
	for i, p := range pkgs {
		if strings.HasSuffix(p.ImportPath, "/internal/api") {
			found = true
			pkgs[i].Imports = append(slices.Clone(p.Imports), cfg.ImportPath)
			pkgs[i].Deps = append(append(slices.Clone(p.Deps), cfg.ImportPath), cfg.Deps...)
		}
	}
	if !found {
		t.Fatal("internal/api is not in the graph")
	}
	bad := check(pkgs, table)
	joined := strings.Join(bad, "\n")
	for _, want := range []string{
		"internal/api imports internal/config, which its row",
		"internal/api depends on github.com/assetd/assetd/internal/config, which its row",
		"internal/api depends on github.com/pelletier/go-toml/v2",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("no violation says %q; got:\n%s", want, joined)
		}
	}
}

func TestParseTableRefusesMalformedRows(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"no section", "# A\n\n| `a` | | | |\n", "no table rows"},
		{"three cells", "## Layering\n| `a` | | |\n", "3 cells, want 4"},
		{"two names", "## Layering\n| `a` `b` | | | |\n", "names 2 packages"},
		{"a second row", "## Layering\n| `a` | | | |\n| `a` | `b` | | |\n", "a has a second row"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseTable([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseTable: %v, want an error with %q", err, tc.want)
			}
		})
	}
}
