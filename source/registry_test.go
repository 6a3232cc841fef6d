package source

// The registries: Flume type names are case-insensitive, Flume's class names
// are accepted as aliases, and Types lists only the short names (what a "did
// you mean" should suggest).

import (
	"slices"
	"testing"

	"github.com/flumed/flumed/source/internal/registry"
)

func TestSourceLookup(t *testing.T) {
	for _, name := range []string{
		"seq", "SEQ", " Seq ", "org.apache.flume.source.SequenceGeneratorSource",
		"exec", "EXEC", "org.apache.flume.source.ExecSource",
		"netcat", "NetCat", "org.apache.flume.source.NetcatSource",
	} {
		if _, ok := Lookup(name); !ok {
			t.Errorf("Lookup(%q) failed", name)
		}
	}
	for _, name := range []string{"sequence", "org.apache.flume.source.sequencegeneratorsource", ""} {
		if _, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) succeeded", name)
		}
	}
	for _, typ := range Types() {
		if _, ok := Lookup(typ); !ok {
			t.Errorf("listed type %q does not look up", typ)
		}
	}
	if !slices.Contains(Types(), "seq") || !slices.Contains(Types(), "exec") || !slices.Contains(Types(), "netcat") {
		t.Errorf("Types() = %q", Types())
	}
}

func TestSelectorTypes(t *testing.T) {
	if got := SelectorTypes(); !slices.Equal(got, []string{"load_balancing", "multiplexing", "replicating"}) {
		t.Errorf("SelectorTypes() = %q", got)
	}
	if _, ok := registry.Lookup(selectors, "Multiplexing"); !ok {
		t.Error("selector names are not case-insensitive")
	}
}
