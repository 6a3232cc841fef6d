package source

// The multiplexing selector's rules (FLUME.md §2.14), written as the
// .properties snippets users write: the header's value picks mapping.<value>;
// a missing, blank or unmapped value picks default; optional.<value> adds
// optional channels, minus those already required for that value (or by
// default when the value has no mapping). Header values may contain dots.
// The load_balancing selector gives each event to one channel, in turn or at
// random.

import (
	"slices"
	"testing"

	"github.com/flumed/flumed/channel"
)

func TestMultiplexingRoutesByHeader(t *testing.T) {
	p, ch := newProcessor(t, `
		selector.type = multiplexing
		selector.header = state
		selector.mapping.CZ = c1
		selector.mapping.US = c2 c3
		selector.mapping.10.0.0.1 = c3
		selector.default = c4
	`, "c1", "c2", "c3", "c4")
	events := []channel.Event{
		ev("cz", "state", "CZ"),
		ev("us", "state", "US"),
		ev("ip", "state", "10.0.0.1"),
		ev("unmapped", "state", "FR"),
		ev("blank", "state", "  "),
		ev("missing"),
		ev("other-header", "flume.selector.header", "CZ"),
	}
	if err := p.PutBatch(events); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"c1": {"cz"},
		"c2": {"us"},
		"c3": {"us", "ip"},
		"c4": {"unmapped", "blank", "missing", "other-header"},
	}
	for n, w := range want {
		if got := ch[n].bodies(); !slices.Equal(got, w) {
			t.Errorf("%s holds %q, want %q", n, got, w)
		}
	}
}

func TestMultiplexingDefaultHeaderName(t *testing.T) {
	p, ch := newProcessor(t, `
		selector.type = multiplexing
		selector.mapping.a = c2
		selector.default = c1
	`, "c1", "c2")
	if err := p.PutBatch([]channel.Event{ev("x", DefaultSelectorHeader, "a")}); err != nil {
		t.Fatal(err)
	}
	if got := ch["c2"].bodies(); !slices.Equal(got, []string{"x"}) {
		t.Errorf("c2 holds %q", got)
	}
}

func TestMultiplexingOptionalChannels(t *testing.T) {
	p, ch := newProcessor(t, `
		selector.type = multiplexing
		selector.header = h
		selector.mapping.a = c1
		selector.optional.a = c1 c2
		selector.optional.b = c3 c4
		selector.default = c3
	`, "c1", "c2", "c3", "c4")
	// c1 is required for "a", so it is not also optional: it gets "a" once.
	// "b" has no mapping, so default c3 is required and only c4 is optional.
	ch["c4"].setRefuse(-1)
	if err := p.PutBatch([]channel.Event{ev("a", "h", "a"), ev("b", "h", "b"), ev("none")}); err != nil {
		t.Fatalf("optional channel failure surfaced: %v", err)
	}
	want := map[string][]string{"c1": {"a"}, "c2": {"a"}, "c3": {"b", "none"}, "c4": {}}
	for n, w := range want {
		if got := ch[n].bodies(); !slices.Equal(got, w) {
			t.Errorf("%s holds %q, want %q", n, got, w)
		}
	}
	if ch["c1"].puts != 1 {
		t.Errorf("c1 got %d puts; a channel both required and optional must be served once", ch["c1"].puts)
	}
}

func TestMultiplexingRequiredFailureIsReturned(t *testing.T) {
	p, ch := newProcessor(t, `
		selector.type = multiplexing
		selector.header = h
		selector.mapping.a = c2
		selector.default = c1
	`, "c1", "c2")
	ch["c2"].setRefuse(1)
	if err := p.PutBatch([]channel.Event{ev("x", "h", "a")}); err == nil {
		t.Fatal("refusal of a required channel was not returned")
	}
}

func TestMultiplexingWithoutDefaultWarnsAndDropsUnmapped(t *testing.T) {
	p, ch := newProcessor(t, `
		selector.type = multiplexing
		selector.header = h
		selector.mapping.a = c1
	`, "c1")
	if err := p.PutBatch([]channel.Event{ev("lost", "h", "zz"), ev("kept", "h", "a")}); err != nil {
		t.Fatal(err)
	}
	if got := ch["c1"].bodies(); !slices.Equal(got, []string{"kept"}) {
		t.Errorf("c1 holds %q", got)
	}
}

func TestReplicatingOptionalListedTwiceCountsOnce(t *testing.T) {
	p, ch := newProcessor(t, `selector.optional = c2 c2`, "c1", "c2")
	if err := p.PutBatch([]channel.Event{ev("x")}); err != nil {
		t.Fatal(err)
	}
	if got := ch["c2"].bodies(); !slices.Equal(got, []string{"x"}) {
		t.Errorf("c2 holds %q", got)
	}
}

func TestLoadBalancingRoundRobinGivesEachEventToOneChannelInTurn(t *testing.T) {
	p, ch := newProcessor(t, `selector.type = load_balancing`, "c1", "c2", "c3")
	var events []channel.Event
	for _, b := range []string{"0", "1", "2", "3", "4", "5", "6"} {
		events = append(events, ev(b))
	}
	if err := p.PutBatch(events); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"c1": {"0", "3", "6"}, "c2": {"1", "4"}, "c3": {"2", "5"}}
	for n, w := range want {
		if got := ch[n].bodies(); !slices.Equal(got, w) {
			t.Errorf("%s holds %q, want %q", n, got, w)
		}
	}
}

func TestLoadBalancingRandomGivesEachEventToExactlyOneChannel(t *testing.T) {
	p, ch := newProcessor(t, "selector.type = LOAD_BALANCING\nselector.policy = random", "c1", "c2")
	var events []channel.Event
	for range 100 {
		events = append(events, ev("x"))
	}
	if err := p.PutBatch(events); err != nil {
		t.Fatal(err)
	}
	if n := len(ch["c1"].bodies()) + len(ch["c2"].bodies()); n != 100 {
		t.Errorf("%d events delivered, want 100", n)
	}
}
