package agent

// Every registered component type is fully declared: its factory, run over
// its spec's samples (no key set, every key set, every switch flipped),
// reads no key the spec does not declare; and the README's component tables
// are the specs rendered (go test ./cmd/flumed/internal/agent -run README -update
// rewrites them).

import (
	"flag"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/sink"
	"github.com/flumed/flumed/source"
	"github.com/flumed/flumed/source/interceptor"
)

var update = flag.Bool("update", false, "rewrite README.md's generated component tables")

func TestEveryFactoryReadsOnlyTheKeysItsSpecDeclares(t *testing.T) {
	reg := realRegistries()
	for _, e := range reg.channels.Entries() {
		runSamples(t, "a1.channels.c1.", e.Spec, func(c *config.Context) { e.New("c1", c) })
	}
	for _, e := range reg.sinks.Entries() {
		runSamples(t, "a1.sinks.k1.", e.Spec, func(c *config.Context) { e.New("k1", c, nil) })
	}
	for _, e := range reg.processors.Entries() {
		runSamples(t, "a1.sinkgroups.g1.processor.", e.Spec, func(c *config.Context) {
			e.New("g1", c, []sink.Sink{absentSink{name: "x"}, absentSink{name: "y"}}, nil)
		})
	}
	for _, e := range reg.sources.Entries() {
		runSamples(t, "a1.sources.r1.", e.Spec, func(c *config.Context) {
			if _, err := e.New("r1", c, slog.New(slog.DiscardHandler)); err == nil {
				_, _ = source.NewChannelProcessor(c, []channel.Channel{namedChannel("c1")}, slog.New(slog.DiscardHandler))
			}
		})
	}
	for _, e := range interceptor.Registry().Entries() {
		runSamples(t, "a1.sources.r1.interceptors.i1.", e.Spec, func(c *config.Context) {
			_, _ = e.New(c, slog.New(slog.DiscardHandler))
		})
	}
	for _, e := range source.SelectorRegistry().Entries() {
		runSamples(t, "a1.sources.r1.selector.", e.Spec, func(c *config.Context) { e.New(c, []string{"c1", "c2"}) })
	}
}

// namedChannel is a channel with a name only: the channel processor is
// built over it, never run.
type namedChannel string

func (n namedChannel) Name() string       { return string(n) }
func (namedChannel) Begin() channel.Txn   { return nil }
func (namedChannel) Stats() channel.Stats { return channel.Stats{} }
func (namedChannel) Close() error         { return nil }

// runSamples runs a factory over every sample of spec and fails on a key
// read that the spec does not declare.
func runSamples(t *testing.T, prefix string, spec *config.Spec, run func(*config.Context)) {
	t.Helper()
	if spec.Doc == "" {
		t.Errorf("%s: the spec has no Doc line", spec.Type)
	}
	for i, kv := range spec.Samples() {
		c := config.FromMap(prefix, kv)
		c.Check(spec)
		run(c)
		for _, p := range c.Problems().Errors() {
			if strings.Contains(p.Msg, "flumed bug") {
				t.Errorf("%s, sample %d: %s", spec.Type, i, p)
			}
		}
	}
}

// The README's generated parts: the supported components table and the
// component keys.
const (
	componentsBegin = "<!-- BEGIN generated components: rows come from the specs (go test ./cmd/flumed/internal/agent -run README -update) -->"
	componentsEnd   = "<!-- END generated components -->"
	keysBegin       = "<!-- BEGIN generated keys (go test ./cmd/flumed/internal/agent -run README -update) -->"
	keysEnd         = "<!-- END generated keys -->"
	tableHead       = "| kind | type | where flumed differs from Flume |\n|---|---|---|\n"
)

// documented are the kinds the README documents, in its order.
func documented() []config.DocKind {
	reg := realRegistries()
	return []config.DocKind{
		{Kind: "source", Specs: specsOf(reg.sources)},
		{Kind: "channel", Specs: specsOf(reg.channels)},
		{Kind: "sink", Specs: specsOf(reg.sinks)},
		{Kind: "sink processor", Specs: specsOf(reg.processors)},
		{Kind: "serializer", Specs: specsOf(sink.SerializerRegistry())},
		{Kind: "channel selector", Specs: specsOf(source.SelectorRegistry())},
		{Kind: "interceptor", Specs: specsOf(interceptor.Registry())},
	}
}

func specsOf[F any](r *config.Registry[F]) []*config.Spec {
	var out []*config.Spec
	for _, e := range r.Entries() {
		out = append(out, e.Spec)
	}
	return out
}

func TestTheREADMEComponentTablesComeFromTheSpecs(t *testing.T) {
	const path = "../../../../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	kinds := documented()
	if _, ok := between(readme, componentsBegin, componentsEnd); !ok {
		t.Fatalf("README.md has no %q ... %q block", componentsBegin, componentsEnd)
	}
	rows := config.SummaryRows(kinds)
	want := replace(readme, componentsBegin, componentsEnd, tableHead+strings.Join(rows, "\n")+"\n")
	if _, ok := between(want, keysBegin, keysEnd); !ok {
		t.Fatalf("README.md has no %q ... %q block", keysBegin, keysEnd)
	}
	want = replace(want, keysBegin, keysEnd, config.KeyTables(kinds))
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if readme != want {
		got, exp := strings.Split(readme, "\n"), strings.Split(want, "\n")
		for i := range min(len(got), len(exp)) {
			if got[i] != exp[i] {
				t.Fatalf("README.md line %d differs from the specs (go test ./cmd/flumed/internal/agent -run README -update):\n got %s\nwant %s", i+1, got[i], exp[i])
			}
		}
		t.Fatalf("README.md has %d lines, the specs make %d (go test ./cmd/flumed/internal/agent -run README -update)", len(got), len(exp))
	}
	// Every registered type is documented.
	for _, k := range kinds {
		for _, s := range k.Specs {
			if !slices.ContainsFunc(rows, func(r string) bool { return strings.Contains(r, "`"+s.Type+"`") }) {
				t.Errorf("%s %s has no README row", k.Kind, s.Type)
			}
		}
	}
}

// between is the text between the lines begin and end.
func between(s, begin, end string) (string, bool) {
	_, rest, ok := strings.Cut(s, begin+"\n")
	if !ok {
		return "", false
	}
	in, _, ok := strings.Cut(rest, end)
	return in, ok
}

// replace puts body between the lines begin and end.
func replace(s, begin, end, body string) string {
	head, rest, _ := strings.Cut(s, begin+"\n")
	_, tail, _ := strings.Cut(rest, end)
	return head + begin + "\n" + body + end + tail
}
