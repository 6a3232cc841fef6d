package avrorpc

// avrorpc is the wire (DESIGN.md §2): it speaks its own event type and takes
// plain options, so it imports neither channel nor config (components read
// their keys, TLS ones through internal/tlskeys, and fill the options).

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestTheWirePackageImportsNeitherChannelNorConfig(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path == "github.com/flumed/flumed/channel" || path == "github.com/flumed/flumed/internal/config" {
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
}
