package source

// The channel processor's contract (FLUME.md §2.14): interceptors run first
// and may drop events; the selector then groups events by channel; every
// required channel gets one put transaction, and the first one that refuses
// rolls back and fails the call with an error wrapping the channel's; optional
// channels are served afterwards and their failures are only logged. The
// caller's events are never modified. Configuration comes from the source's
// selector.* and interceptors* keys, and every mistake there is reported.

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/source/internal/sourcetest"
)

const srcPrefix = "a1.sources.r1."

// newProcessor builds a processor for the snippet over fake channels named
// c1..cn and fails the test on any configuration problem.
func newProcessor(t *testing.T, snippet string, names ...string) (*ChannelProcessor, map[string]*fakeChannel) {
	t.Helper()
	c := config.FromMap(srcPrefix, sourcetest.Props(t, snippet))
	fakes := map[string]*fakeChannel{}
	var chans []channel.Channel
	for _, n := range names {
		f := newFakeChannel(n)
		fakes[n] = f
		chans = append(chans, f)
	}
	p, err := NewChannelProcessor(c, chans, sourcetest.DiscardLog())
	if ps := sourcetest.Problems(c); err != nil || len(ps) > 0 {
		t.Fatalf("NewChannelProcessor: %v\n%s", err, strings.Join(ps, "\n"))
	}
	return p, fakes
}

// configProblems builds a processor for a snippet expected to be wrong and
// returns every problem reported.
func configProblems(t *testing.T, snippet string, names ...string) []string {
	t.Helper()
	c := config.FromMap(srcPrefix, sourcetest.Props(t, snippet))
	var chans []channel.Channel
	for _, n := range names {
		chans = append(chans, newFakeChannel(n))
	}
	_, err := NewChannelProcessor(c, chans, sourcetest.DiscardLog())
	ps := sourcetest.Problems(c)
	if err == nil && len(ps) == 0 {
		t.Fatalf("snippet was accepted:\n%s", snippet)
	}
	return ps
}

func ev(body string, headers ...string) channel.Event {
	e := channel.Event{Body: []byte(body)}
	if len(headers) > 0 {
		e.Headers = map[string]string{}
		for i := 0; i+1 < len(headers); i += 2 {
			e.Headers[headers[i]] = headers[i+1]
		}
	}
	return e
}

func TestReplicatingPutsEveryEventIntoEveryChannel(t *testing.T) {
	p, ch := newProcessor(t, ``, "c1", "c2")
	if err := p.PutBatch([]channel.Event{ev("a"), ev("b")}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"c1", "c2"} {
		if got := ch[n].bodies(); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("%s holds %q", n, got)
		}
		if ch[n].puts != 1 {
			t.Errorf("%s got %d puts, want one transaction with one put", n, ch[n].puts)
		}
	}
}

func TestRequiredChannelRefusalRollsBackAndFails(t *testing.T) {
	p, ch := newProcessor(t, ``, "c1", "c2")
	ch["c2"].setRefuse(1)
	err := p.PutBatch([]channel.Event{ev("a")})
	if !errors.Is(err, channel.ErrFull) {
		t.Fatalf("error %v does not wrap channel.ErrFull", err)
	}
	if !strings.Contains(err.Error(), "c2") {
		t.Errorf("error %q does not name the channel", err)
	}
	if ch["c2"].rollbacks != 1 || ch["c2"].open != 0 || len(ch["c2"].bodies()) != 0 {
		t.Errorf("c2: rollbacks=%d open=%d bodies=%q", ch["c2"].rollbacks, ch["c2"].open, ch["c2"].bodies())
	}
	// Flume's non-atomic behaviour: c1 committed before c2 refused.
	if got := ch["c1"].bodies(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("c1 holds %q", got)
	}
}

func TestTransactionCapacityErrorIsReturnedClearly(t *testing.T) {
	p, ch := newProcessor(t, ``, "c1")
	ch["c1"].txCap = 2
	err := p.PutBatch([]channel.Event{ev("a"), ev("b"), ev("c")})
	if !errors.Is(err, channel.ErrTxnFull) || !strings.Contains(err.Error(), "put 3 events on channel c1") {
		t.Fatalf("got %v", err)
	}
}

func TestOptionalChannelFailureIsOnlyLogged(t *testing.T) {
	c := config.FromMap(srcPrefix, sourcetest.Props(t, `selector.optional = c2`))
	c1, c2 := newFakeChannel("c1"), newFakeChannel("c2")
	log, buf := newTestLog()
	p, err := NewChannelProcessor(c, []channel.Channel{c1, c2}, log)
	if err != nil {
		t.Fatal(err)
	}
	c2.setRefuse(-1)
	for range 3 {
		if err := p.PutBatch([]channel.Event{ev("a")}); err != nil {
			t.Fatalf("optional failure surfaced: %v", err)
		}
	}
	if got := c1.bodies(); len(got) != 3 {
		t.Errorf("c1 holds %q", got)
	}
	if n := strings.Count(buf.String(), "optional channel refused"); n != 1 {
		t.Errorf("logged %d times, want 1 (rate-limited):\n%s", n, buf)
	}
}

func TestInterceptorsRunBeforeTheSelectorAndMayDrop(t *testing.T) {
	p, ch := newProcessor(t, `
		interceptors = drop tag
		interceptors.drop.type = regex_filter
		interceptors.drop.regex = ^DEBUG
		interceptors.drop.excludeEvents = true
		interceptors.tag.type = static
		interceptors.tag.key = route
		interceptors.tag.value = errors
		selector.type = multiplexing
		selector.header = route
		selector.mapping.errors = c2
		selector.default = c1
	`, "c1", "c2")
	if err := p.PutBatch([]channel.Event{ev("DEBUG x"), ev("ERROR y")}); err != nil {
		t.Fatal(err)
	}
	if got := ch["c2"].bodies(); !slices.Equal(got, []string{"ERROR y"}) {
		t.Errorf("c2 holds %q", got)
	}
	if got := ch["c1"].bodies(); len(got) != 0 {
		t.Errorf("c1 holds %q", got)
	}
	if err := p.PutBatch([]channel.Event{ev("DEBUG only")}); err != nil {
		t.Errorf("all events dropped should be a success, got %v", err)
	}
}

func TestCallersEventsAreNeverModified(t *testing.T) {
	p, ch := newProcessor(t, `
		interceptors = ts sr
		interceptors.ts.type = timestamp
		interceptors.sr.type = search_replace
		interceptors.sr.searchPattern = a
		interceptors.sr.replaceString = aa
	`, "c1")
	in := []channel.Event{ev("a", "k", "v")}
	for range 2 { // a retry of the same slice must give the same result
		if err := p.PutBatch(in); err != nil {
			t.Fatal(err)
		}
	}
	if string(in[0].Body) != "a" || len(in[0].Headers) != 1 {
		t.Errorf("input changed: %q %v", in[0].Body, in[0].Headers)
	}
	for _, e := range ch["c1"].events() {
		if string(e.Body) != "aa" || e.Headers["timestamp"] == "" || e.Headers["k"] != "v" {
			t.Errorf("committed %q %v", e.Body, e.Headers)
		}
	}
}

func TestProcessorConfigurationMistakesAreReported(t *testing.T) {
	cases := []struct {
		name, snippet, want string
	}{
		{"unknown selector type suggests the closest",
			`selector.type = multiplex`, "did you mean multiplexing?"},
		{"optional channel the source does not use",
			`selector.optional = c9`, "selector.optional: selector channel not found: c9"},
		{"mapping to an unknown channel",
			"selector.type = multiplexing\nselector.mapping.US = c1 c7\nselector.default = c1",
			"selector.mapping.US: selector channel not found: c7"},
		{"default to an unknown channel",
			"selector.type = multiplexing\nselector.default = nope", "selector.default: selector channel not found: nope"},
		{"unknown selector key",
			"selector.type = multiplexing\nselector.default = c1\nselector.headr = x", "selector.headr: unknown key (did you mean header?)"},
		{"unknown load_balancing policy",
			"selector.type = load_balancing\nselector.policy = weighted", "selector.policy: must be one of round_robin, random"},
		{"replicating has no mapping",
			"selector.mapping.x = c1", "selector.mapping.x: unknown key"},
		{"interceptor configured but not listed",
			"interceptors = i1\ninterceptors.i1.type = host\ninterceptors.i2.type = static",
			"interceptor i2 is configured but not listed"},
		{"listed interceptor without configuration",
			"interceptors = i1", "interceptor i1 has no configuration"},
		{"interceptor without type",
			"interceptors = i1\ninterceptors.i1.key = k", "interceptors.i1.type: required key is missing"},
		{"unknown interceptor type",
			"interceptors = i1\ninterceptors.i1.type = timestmp", "did you mean timestamp?"},
		{"unknown interceptor key",
			"interceptors = i1\ninterceptors.i1.type = static\ninterceptors.i1.vaule = x", "interceptors.i1.vaule: unknown key (did you mean value?)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := configProblems(t, tc.snippet, "c1", "c2")
			if !strings.Contains(strings.Join(ps, "\n"), tc.want) {
				t.Errorf("problems do not mention %q:\n%s", tc.want, strings.Join(ps, "\n"))
			}
		})
	}
}

func TestInterceptorClassNamesAreAccepted(t *testing.T) {
	p, ch := newProcessor(t, `
		interceptors = u
		interceptors.u.type = org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder
		selector.type = org.apache.flume.channel.ReplicatingChannelSelector
	`, "c1")
	if err := p.PutBatch([]channel.Event{ev("x")}); err != nil {
		t.Fatal(err)
	}
	if id := ch["c1"].events()[0].Headers["id"]; len(id) != 36 {
		t.Errorf("id header %q", id)
	}
}
