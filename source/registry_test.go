package source

// The registries: Flume type names are case-insensitive, Flume's class names
// are accepted as aliases, and Types lists only the short names (what a "did
// you mean" should suggest).

import (
	"slices"
	"testing"

	"github.com/flumed/flumed/internal/config"
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
	for _, typ := range Registry().Types() {
		if _, ok := Lookup(typ); !ok {
			t.Errorf("listed type %q does not look up", typ)
		}
	}
	if !slices.Contains(Registry().Types(), "seq") || !slices.Contains(Registry().Types(), "exec") || !slices.Contains(Registry().Types(), "netcat") {
		t.Errorf("Registry().Types() = %q", Registry().Types())
	}
}

func TestSelectorTypes(t *testing.T) {
	if got := SelectorRegistry().Types(); !slices.Equal(got, []string{"load_balancing", "multiplexing", "replicating"}) {
		t.Errorf("SelectorRegistry().Types() = %q", got)
	}
	if _, ok := selectors.Lookup("Multiplexing"); !ok {
		t.Error("selector names are not case-insensitive")
	}
}

func TestEverySourceSpecIncludesTheChannelProcessorKeys(t *testing.T) {
	// The agent builds every source's channel processor from the source's
	// own checked context: a spec without these keys would call a source's
	// interceptors and selector unknown.
	for _, e := range Registry().Entries() {
		if !slices.Contains(e.Spec.Keys, config.Decl(ProcessorKeys)) {
			t.Errorf("source %s: the spec does not include ProcessorKeys", e.Spec.Type)
		}
	}
}
