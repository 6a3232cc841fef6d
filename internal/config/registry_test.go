package config

// Contract: one lookup rule for every kind of component, Flume's: the type
// name in any case, or a Flume class name exactly as Java would load it.
// A name that is not registered is either a Flume type flumed does not have
// ("not supported by flumed", for its alias and its class names) or unknown,
// with a "did you mean" over the type names (over the class names for a
// class name). A name registered twice is a programming error.

import (
	"strings"
	"testing"
)

type testFactory func() string

var testRegistry = NewRegistry("sink", []Entry[testFactory]{
	{Spec: testSpec, New: func() string { return "test" }},
	{Spec: &Spec{Type: "logger", Classes: []string{"org.apache.flume.sink.LoggerSink"}}, New: func() string { return "logger" }},
}, []Unsupported{
	{Type: "hdfs", Classes: []string{"org.apache.flume.sink.hdfs.HDFSEventSink"}},
	{Classes: []string{"org.apache.flume.sink.kafka.KafkaSink"}},
})

func TestOneLookupRuleAliasesInAnyCaseClassesExactly(t *testing.T) {
	for typ, want := range map[string]string{
		"logger": "logger", "LOGGER": "logger", " Logger ": "logger", "org.apache.flume.sink.LoggerSink": "logger",
		"Test": "test", "org.example.Test": "test",
	} {
		e, ok := testRegistry.Lookup(typ)
		if !ok || e.New() != want {
			t.Errorf("Lookup(%q) = %v, want %s", typ, ok, want)
		}
	}
	for _, typ := range []string{"org.apache.flume.sink.loggersink", "hdfs", "", "loggers"} {
		if _, ok := testRegistry.Lookup(typ); ok {
			t.Errorf("Lookup(%q) found a type", typ)
		}
	}
	if got := strings.Join(testRegistry.Types(), " "); got != "logger test" {
		t.Errorf("Types() = %s", got)
	}
}

func TestAnUnregisteredTypeSaysWhy(t *testing.T) {
	for typ, want := range map[string]string{
		"HDFS": "sink type hdfs is not supported by flumed (supported: logger, test)",
		"org.apache.flume.sink.hdfs.HDFSEventSink": "sink type org.apache.flume.sink.hdfs.HDFSEventSink is not supported by flumed (supported: logger, test)",
		"org.apache.flume.sink.kafka.KafkaSink":    "sink type org.apache.flume.sink.kafka.KafkaSink is not supported by flumed (supported: logger, test)",
		"loger":                                    `unknown sink type "loger" (did you mean logger?)`,
		"org.apache.flume.sink.loggersink":         `unknown sink type "org.apache.flume.sink.loggersink" (did you mean org.apache.flume.sink.LoggerSink?)`,
		"elasticsearch":                            `unknown sink type "elasticsearch" (known: logger, test)`,
	} {
		if got := testRegistry.Unknown(typ); got != want {
			t.Errorf("Unknown(%q)\n got %s\nwant %s", typ, got, want)
		}
	}
}

func TestResolveChecksTheContextAgainstTheTypesSpec(t *testing.T) {
	c := FromMap("a1.sinks.k1.", map[string]string{"type": "test", "sise": "1"})
	c.Take("type") // as the tree does
	if _, ok := testRegistry.Resolve(c, "test"); !ok {
		t.Fatal("not resolved")
	}
	got := problemStrings(c.Problems().Errors())
	want := []string{"a1.sinks.k1.host: required key is missing", "a1.sinks.k1.sise: unknown key (did you mean size?)"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q\nwant %q", got, want)
	}
	c = FromMap("a1.sinks.k1.", map[string]string{"type": "hdfs"})
	if _, ok := testRegistry.Resolve(c, "hdfs"); ok || c.Problems().Err() == nil {
		t.Error("an unsupported type resolved")
	}
}

func TestATypeRegisteredTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	NewRegistry("sink", []Entry[testFactory]{{Spec: &Spec{Type: "a"}}}, []Unsupported{{Type: "A"}})
}

func TestTheDocsShowEveryKeyOnceAndEachGroupOnce(t *testing.T) {
	group := &Group{Name: "Shared", Doc: "keys two specs share", Keys: []Decl{Bool("ssl", false, "use TLS")}}
	a := &Spec{Type: "a", Classes: []string{"org.example.A"}, Doc: "first | one", Keys: []Decl{
		Bytes("size", 64<<20, "how big").Flumed(), Seconds("wait", 3e9, "how long"), testPrio, Ignore("old", ""), group}}
	b := &Spec{Type: "b", Doc: "second", Keys: []Decl{group}}
	kinds := []DocKind{{Kind: "sink", Specs: []*Spec{a, b}}}
	rows := strings.Join(SummaryRows(kinds), "\n")
	wantRows := "| sink | [`a`](#sink-a) | first \\| one |\n| sink | [`b`](#sink-b) | second |"
	if rows != wantRows {
		t.Errorf("rows\n%s\nwant\n%s", rows, wantRows)
	}
	got := KeyTables(kinds)
	for _, want := range []string{
		"#### sink a\n\nFlume class: `org.example.A`.\n\n| key | type | default | Flume | what it does |",
		"| `size` | bytes | 67108864 (64 MiB) | flumed's | how big |",
		"| `wait` | seconds | 3 | yes | how long |",
		"| `priority.<sink>` | integer | 0 | yes | a sink's priority |",
		"| `old` |  |  | ignored | known to Flume but not used by flumed; ignored |",
		"| [Shared keys](#shared-keys) | | | | keys two specs share |",
		"#### Shared keys\n\nkeys two specs share\n\n",
		"| `ssl` | boolean | false | yes | use TLS |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("key tables lack %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "#### Shared keys") != 1 {
		t.Errorf("the group is documented %d times", strings.Count(got, "#### Shared keys"))
	}
}
