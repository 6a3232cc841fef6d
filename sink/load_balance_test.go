package sink

// The load_balance processor follows FLUME.md §3.5 with the fix of §8 row 12:
// each call orders the eligible sinks (round robin advancing once per call, or
// a random permutation) and stops at the first READY or BACKOFF; failures are
// skipped within the call. With backoff a failed sink leaves the rotation for
// min(maxTimeOut, 2^n s) less up to 20 % jitter; a READY resets it. When every
// sink fails, or every sink is backed off, the call returns an error.

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/clock"
	"github.com/flumed/flumed/internal/config"
)

type lbFixture struct {
	t      *testing.T
	tr     *trace
	clock  *clock.Fake
	lb     *LoadBalance
	byName map[string]*scriptSink
}

func newLBFixture(t *testing.T, opts LoadBalanceOptions, names ...string) *lbFixture {
	t.Helper()
	fx := &lbFixture{t: t, tr: &trace{}, clock: clock.NewFake(), byName: map[string]*scriptSink{}}
	var ss []*scriptSink
	for _, n := range names {
		s := newScriptSink(n, fx.tr)
		ss = append(ss, s)
		fx.byName[n] = s
	}
	opts.Now = fx.clock.Now
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewPCG(1, 2))
	}
	lb, err := NewLoadBalance("g1", sinks(ss...), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	fx.lb = lb
	return fx
}

func (fx *lbFixture) process() (Status, []string, error) {
	before := len(fx.tr.list())
	st, err := fx.lb.Process(context.Background())
	return st, fx.tr.list()[before:], err
}

func (fx *lbFixture) backedOffFor(name string) time.Duration {
	for _, s := range fx.lb.State() {
		if s.Sink == name {
			if s.BackedOff.IsZero() {
				return 0
			}
			return s.BackedOff.Sub(fx.clock.Now())
		}
	}
	fx.t.Fatalf("no sink %s", name)
	return 0
}

func TestLoadBalanceRoundRobinAdvancesOncePerCall(t *testing.T) {
	fx := newLBFixture(t, LoadBalanceOptions{}, "k1", "k2", "k3")
	var got []string
	for range 6 {
		st, calls, err := fx.process()
		if st != Ready || err != nil || len(calls) != 1 {
			t.Fatalf("process = %v, %v, calls %v; want one READY sink", st, err, calls)
		}
		got = append(got, calls[0])
	}
	if want := []string{"k1", "k2", "k3", "k1", "k2", "k3"}; !slices.Equal(got, want) {
		t.Fatalf("sinks = %v, want %v", got, want)
	}
}

func TestLoadBalanceFailureTriesTheNextSinkInTheSameCall(t *testing.T) {
	fx := newLBFixture(t, LoadBalanceOptions{}, "k1", "k2", "k3")
	fx.byName["k1"].fail()
	st, calls, err := fx.process()
	if st != Ready || err != nil || !slices.Equal(calls, []string{"k1", "k2"}) {
		t.Fatalf("process = %v, %v, calls %v; want READY after [k1 k2]", st, err, calls)
	}
	// Without backoff k1 stays in the rotation and is tried again.
	fx.process() // starts at k2
	fx.process() // starts at k3
	if _, calls, _ := fx.process(); calls[0] != "k1" {
		t.Fatalf("fourth call = %v, want k1 first (no backoff)", calls)
	}
}

func TestLoadBalanceBackoffFromASinkEndsTheCall(t *testing.T) {
	fx := newLBFixture(t, LoadBalanceOptions{}, "k1", "k2")
	fx.byName["k1"].backoff()
	st, calls, err := fx.process()
	if st != Backoff || err != nil || !slices.Equal(calls, []string{"k1"}) {
		t.Fatalf("process = %v, %v, calls %v; want BACKOFF from k1 alone", st, err, calls)
	}
}

func TestLoadBalanceRandomCoversEverySink(t *testing.T) {
	fx := newLBFixture(t, LoadBalanceOptions{Selector: "random"}, "k1", "k2", "k3")
	first := map[string]int{}
	for range 300 {
		_, calls, _ := fx.process()
		first[calls[0]]++
	}
	for _, n := range []string{"k1", "k2", "k3"} {
		if first[n] < 50 {
			t.Fatalf("sink %s went first %d times in 300 calls: %v", n, first[n], first)
		}
	}
}

func TestLoadBalanceBackoffGrowsIsCappedAndResetsOnSuccess(t *testing.T) {
	fx := newLBFixture(t, LoadBalanceOptions{Backoff: true, MaxTimeOut: 10 * time.Second}, "k1", "k2")
	fx.byName["k1"].fail()
	for i, base := range []time.Duration{2, 4, 8, 10, 10} {
		base *= time.Second
		// Rotate until k1 is asked (it is first on every other call).
		var calls []string
		for !slices.Contains(calls, "k1") {
			_, calls, _ = fx.process()
		}
		d := fx.backedOffFor("k1")
		if d > base || d < base*4/5 {
			t.Fatalf("failure %d: backed off for %v, want within [%v, %v]", i+1, d, base*4/5, base)
		}
		// While backed off, k1 is never asked.
		for range 4 {
			if _, calls, _ := fx.process(); slices.Contains(calls, "k1") {
				t.Fatalf("failure %d: k1 asked while backed off", i+1)
			}
		}
		fx.clock.Advance(d + time.Millisecond)
	}
	// k1 recovers: one READY resets its count, so the next failure is 2 s again.
	fx.byName["k1"].ready()
	for range 2 {
		fx.process()
	}
	if s := fx.lb.State()[0]; s.Failures != 0 || !s.BackedOff.IsZero() {
		t.Fatalf("after a READY k1 = %+v, want reset", s)
	}
	fx.byName["k1"].fail()
	var calls []string
	for !slices.Contains(calls, "k1") {
		_, calls, _ = fx.process()
	}
	if d := fx.backedOffFor("k1"); d > 2*time.Second || d < 1600*time.Millisecond {
		t.Fatalf("backoff after a reset = %v, want about 2s", d)
	}
}

func TestLoadBalanceMetricsShowBackedOffSinks(t *testing.T) {
	fx := newLBFixture(t, LoadBalanceOptions{Backoff: true}, "k1", "k2")
	fx.byName["k1"].fail()
	fx.process()
	m := fx.lb.FlumeMetrics()
	retry := fx.clock.Now().Add(fx.backedOffFor("k1")).UnixMilli()
	if m["Type"] != "SINK_PROCESSOR" || m["BackedOffSinks"] != "k1" || m["Sink.k1.Failures"] != "1" ||
		m["Sink.k1.RetryAt"] != strconv.FormatInt(retry, 10) {
		t.Fatalf("metrics = %v", m)
	}
}

func TestLoadBalanceAllFailingIsAnError(t *testing.T) {
	fx := newLBFixture(t, LoadBalanceOptions{}, "k1", "k2")
	fx.byName["k1"].fail()
	fx.byName["k2"].fail()
	st, calls, err := fx.process()
	if st != Backoff || !errors.Is(err, ErrAllSinksFailed) || len(calls) != 2 {
		t.Fatalf("process = %v, %v, calls %v; want ErrAllSinksFailed after both", st, err, calls)
	}
	if !strings.Contains(err.Error(), "k2: connection refused") && !strings.Contains(err.Error(), "k1: connection refused") {
		t.Fatalf("error %q does not carry the last sink error", err)
	}
}

func TestLoadBalanceAllBackedOffIsAnErrorNotAPanic(t *testing.T) {
	for _, sel := range []string{"round_robin", "random"} {
		t.Run(sel, func(t *testing.T) {
			fx := newLBFixture(t, LoadBalanceOptions{Selector: sel, Backoff: true}, "k1", "k2")
			fx.byName["k1"].fail()
			fx.byName["k2"].fail()
			fx.process()
			st, calls, err := fx.process()
			if st != Backoff || !errors.Is(err, ErrAllSinksFailed) || len(calls) != 0 {
				t.Fatalf("process = %v, %v, calls %v; want an error and no sink asked", st, err, calls)
			}
			if !strings.Contains(err.Error(), "every sink is backed off") {
				t.Fatalf("error = %q", err)
			}
		})
	}
}

func TestLoadBalanceConfig(t *testing.T) {
	two := func() []Sink { return sinks(newScriptSink("k1", nil), newScriptSink("k2", nil)) }
	for _, tc := range []struct {
		name  string
		kv    map[string]string
		sinks []Sink
		want  []string
	}{
		{"all keys", map[string]string{"backoff": "true", "selector": "RANDOM", "selector.maxTimeOut": "5000"}, two(), nil},
		{"a selector class is not supported", map[string]string{"selector": "com.example.MySelector"}, two(),
			[]string{"<inline>:1: a1.sinkgroups.g1.processor.selector: custom selector classes are not supported by flumed (use round_robin or random)"}},
		{"a misspelt selector gets a suggestion", map[string]string{"selector": "round_robbin"}, two(),
			[]string{`<inline>:1: a1.sinkgroups.g1.processor.selector: must be one of round_robin, random, not "round_robbin" (did you mean round_robin?)`}},
		{"one sink is not enough", map[string]string{"backoff": "true"}, sinks(newScriptSink("k1", nil)),
			[]string{"<inline>:1: a1.sinkgroups.g1.processor.type: load_balance needs at least 2 sinks; group g1 has 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.FromMap("a1.sinkgroups.g1.processor.", tc.kv)
			factory, ok := ProcessorLookup("load_balance")
			if !ok {
				t.Fatal("load_balance is not registered")
			}
			p, err := factory("g1", c, tc.sinks, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, pr := range c.Problems().Errors() {
				got = append(got, pr.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if tc.want == nil {
				lb := p.(*LoadBalance)
				if !lb.random || !lb.backoff || lb.maxTimeOut != 5*time.Second {
					t.Fatalf("random %v backoff %v maxTimeOut %v", lb.random, lb.backoff, lb.maxTimeOut)
				}
			}
		})
	}
}
