// Package internal holds no code of its own: this test keeps the arrows
// between flumed's packages pointing the way DESIGN.md §2 and STYLE.md draw
// them. It reads the module's import graph with `go list -json` and fails on
// every import that points the wrong way, printing the chain that brings it
// in, so a new component cannot quietly make a sink depend on a source, or
// the storage layers on what sits above them.
package internal

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/flumed/flumed"

// pkg is what go list says of one package of the module.
type pkg struct {
	ImportPath   string
	Dir          string
	GoFiles      []string
	Imports      []string // of the package's own (non-test) files
	TestImports  []string // of its _test.go files in the package
	XTestImports []string // of its _test.go files in package x_test
}

// rel is a package's path inside the module ("" for the root).
func rel(path string) string {
	if path == module {
		return ""
	}
	return strings.TrimPrefix(path, module+"/")
}

// under reports whether p is the package named or one below it.
func under(p string, names ...string) bool {
	for _, n := range names {
		if p == n || strings.HasPrefix(p, n+"/") {
			return true
		}
	}
	return false
}

// testSupport reports whether p is test code that tests import, named by
// Go's convention (net/http/httptest): channel/channeltest, the conformance
// suite every channel runs. Such a package may use what tests use, and only
// test files may import it.
func testSupport(p string) bool { return strings.HasSuffix(p, "test") }

// leaves are the utility packages the storage layers may use: they import no
// flumed package and know nothing of events.
var leaves = []string{"internal/fsutil", "internal/clock"}

// rule is one arrow that must not exist. A package matched by from must not
// import, directly or through other packages of its own (non-test) files, a
// package matched by banned.
type rule struct {
	why    string
	from   func(p string) bool
	banned func(p string) bool
	// pending, when set, names the change the rule waits for: the rule is
	// checked and its violations logged, and the test fails once it holds,
	// so that the mark is removed.
	pending string
}

var rules = []rule{
	{
		why:    "internal/config is a leaf: it imports no flumed package",
		from:   func(p string) bool { return p == "internal/config" },
		banned: func(string) bool { return true },
	},
	{
		why:    "internal/fsutil knows nothing of events: it imports no flumed package",
		from:   func(p string) bool { return p == "internal/fsutil" },
		banned: func(string) bool { return true },
	},
	{
		why:    "wal knows nothing of events or channels: it imports only the leaf utilities " + strings.Join(leaves, ", "),
		from:   func(p string) bool { return under(p, "wal") },
		banned: func(p string) bool { return !under(p, "wal") && !slices.Contains(leaves, p) },
	},
	{
		why:  "channel knows nothing of sources, sinks, the agent or the wire",
		from: func(p string) bool { return under(p, "channel") },
		banned: func(p string) bool {
			return under(p, "source", "sink", "cmd/flumed/internal/agent", "internal/avrorpc")
		},
	},
	{
		why:    "sources never import sinks: they meet only at channel",
		from:   func(p string) bool { return under(p, "source") },
		banned: func(p string) bool { return under(p, "sink") },
	},
	{
		why:    "sinks never import sources: they meet only at channel",
		from:   func(p string) bool { return under(p, "sink") },
		banned: func(p string) bool { return under(p, "source") },
	},
	{
		why:    "internal/avrorpc speaks its own wire event type: it never imports channel",
		from:   func(p string) bool { return under(p, "internal/avrorpc") },
		banned: func(p string) bool { return under(p, "channel") },
	},
	{
		why:    "internal/avrorpc takes plain options: it never imports internal/config",
		from:   func(p string) bool { return under(p, "internal/avrorpc") },
		banned: func(p string) bool { return p == "internal/config" },
	},
}

// direct is an import that must not be written at all, in any file of the
// package (tests included) unless tests says they may.
type direct struct {
	why    string
	from   func(p string) bool
	banned func(p string) bool
	tests  bool // test files may make the import
}

var directs = []direct{
	{
		why:    "the agent (cmd/flumed/internal/agent) is the composition root: only cmd/flumed imports it (Go's internal rule enforces it too)",
		from:   func(p string) bool { return !under(p, "cmd", "cmd/flumed/internal/agent") },
		banned: func(p string) bool { return p == "cmd/flumed/internal/agent" },
	},
	{
		why:    "cmd/flumed reaches sources and sinks only through its agent",
		from:   func(p string) bool { return p == "cmd/flumed" },
		banned: func(p string) bool { return under(p, "source", "sink") },
		tests:  true, // its tests may compute a bound from sink.Window
	},
	{
		why:    "bench is never imported",
		from:   func(p string) bool { return p != "bench" },
		banned: func(p string) bool { return under(p, "bench") },
	},
	{
		why:    "internal/await is for tests only",
		from:   func(p string) bool { return p != "internal/await" && !testSupport(p) },
		banned: func(p string) bool { return p == "internal/await" },
		tests:  true,
	},
	{
		why:    "a test-support package (such as channel/channeltest) is imported by tests only",
		from:   func(p string) bool { return !testSupport(p) },
		banned: testSupport,
		tests:  true,
	},
	{
		why:    "internal/e2e is a test harness: only tests, bench and cmd/flumed-demo use it",
		from:   func(p string) bool { return !under(p, "internal/e2e", "cmd/flumed-demo") },
		banned: func(p string) bool { return p == "internal/e2e" },
		tests:  true,
	},
}

func TestImportsPointTheWayDesignDrawsThem(t *testing.T) {
	pkgs := listModule(t)
	graph := map[string][]string{}
	for _, p := range pkgs {
		graph[rel(p.ImportPath)] = ours(p.Imports)
	}
	for _, r := range rules {
		var broken []string
		for _, p := range pkgs {
			from := rel(p.ImportPath)
			if !r.from(from) {
				continue
			}
			for _, chain := range paths(graph, from, r.banned) {
				broken = append(broken, strings.Join(chain, " → "))
			}
		}
		switch {
		case r.pending != "" && len(broken) > 0:
			t.Logf("known, waiting for a fix (%s): %s:\n\t%s", r.pending, r.why, strings.Join(broken, "\n\t"))
		case r.pending != "":
			t.Errorf("%s: the rule holds now; remove its pending mark (%s)", r.why, r.pending)
		case len(broken) > 0:
			t.Errorf("%s; imports pointing the wrong way:\n\t%s", r.why, strings.Join(broken, "\n\t"))
		}
	}
	for _, d := range directs {
		for _, p := range pkgs {
			from := rel(p.ImportPath)
			if !d.from(from) {
				continue
			}
			imports := map[string][]string{"": p.Imports}
			if !d.tests {
				imports["test files: "] = append(slices.Clone(p.TestImports), p.XTestImports...)
			}
			for kind, list := range imports {
				for _, to := range ours(list) {
					if d.banned(to) {
						t.Errorf("%s; %s%s imports %s", d.why, kind, from, to)
					}
				}
			}
		}
	}
}

// TestOnlyTestsUseTheFakeClock: production code may take a clock.Clock, but
// a clock.Fake in a non-test file would stop time for real.
func TestOnlyTestsUseTheFakeClock(t *testing.T) {
	for _, p := range listModule(t) {
		if rel(p.ImportPath) == "internal/clock" || testSupport(rel(p.ImportPath)) || !slices.Contains(p.Imports, module+"/internal/clock") {
			continue
		}
		for _, name := range p.GoFiles {
			for _, use := range fakeClockUses(t, filepath.Join(p.Dir, name)) {
				t.Errorf("%s/%s uses clock.%s: the fake clock is for tests only", rel(p.ImportPath), name, use)
			}
		}
	}
}

// fakeClockUses lists the clock.Fake and clock.NewFake references of a file.
func fakeClockUses(t *testing.T, file string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	local := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == module+"/internal/clock" {
			local = "clock"
			if imp.Name != nil {
				local = imp.Name.Name
			}
		}
	}
	var uses []string
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == local && (sel.Sel.Name == "Fake" || sel.Sel.Name == "NewFake") && !slices.Contains(uses, sel.Sel.Name) {
				uses = append(uses, sel.Sel.Name)
			}
		}
		return true
	})
	return uses
}

// TestTheLayerCheckSeesAWrongArrow keeps the check itself honest: a graph
// with a sink importing a source through the channel must be caught, with
// the chain that brings the source in.
func TestTheLayerCheckSeesAWrongArrow(t *testing.T) {
	graph := map[string][]string{
		"sink":    {"channel", "internal/config"},
		"channel": {"wal", "source"},
		"wal":     {"internal/fsutil"},
		"source":  {"channel"},
	}
	chains := paths(graph, "sink", func(p string) bool { return under(p, "source") })
	if len(chains) != 1 || strings.Join(chains[0], " → ") != "sink → channel → source" {
		t.Fatalf("chains %q, want [sink → channel → source]", chains)
	}
	if chains := paths(graph, "wal", func(p string) bool { return under(p, "source") }); chains != nil {
		t.Fatalf("wal reaches no source, yet the check found %q", chains)
	}
}

// paths returns, for every package banned matches that from reaches through
// the module's packages, the shortest import chain to it. The search stops at
// a banned package: what it imports in turn is its own rule's business.
func paths(graph map[string][]string, from string, banned func(string) bool) [][]string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	var chains [][]string
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, to := range graph[p] {
			if _, seen := prev[to]; seen {
				continue
			}
			prev[to] = p
			if !banned(to) {
				queue = append(queue, to)
				continue
			}
			chain := []string{to}
			for at := p; at != ""; at = prev[at] {
				chain = append([]string{at}, chain...)
			}
			chains = append(chains, chain)
		}
	}
	return chains
}

// ours keeps the module's packages of an import list, as paths inside it.
func ours(imports []string) []string {
	var out []string
	for _, i := range imports {
		if i == module || strings.HasPrefix(i, module+"/") {
			out = append(out, rel(i))
		}
	}
	return out
}

// listModule runs `go list -json` over every package of the module.
func listModule(t *testing.T) []pkg {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to read the import graph: %v", err)
	}
	cmd := exec.Command(goBin, "list", "-json", module+"/...")
	cmd.Dir = ".." // the module root: this file sits in internal/
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages: %v", len(pkgs), pkgs)
	}
	return pkgs
}
