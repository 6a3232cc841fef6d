package sink

// The failover processor follows FLUME.md §3.4 exactly: the live sink of
// highest priority gets every batch; a failure sends it to the dead list with a
// penalty of min(maxpenalty, 2^n s) (n from 1) and the same call retries with
// the next sink; a dead sink is retried, with a real Process, once its refresh
// is strictly before now; READY revives it and fails back to it when it is
// preferred, BACKOFF keeps its refresh, an error lengthens the penalty. BACKOFF
// from the active sink never fails over. No live sink left is an error.
// flumed differs only where FLUME.md §8 row 11 says: unprioritised sinks follow
// the configuration order, and duplicate priorities are config errors.

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/clock"
	"github.com/flumed/flumed/internal/config"
)

type failoverFixture struct {
	t      *testing.T
	tr     *trace
	clock  *clock.Fake
	f      *Failover
	logs   *logBuffer
	byName map[string]*scriptSink
}

func newFailoverFixture(t *testing.T, prio map[string]int, maxPenalty time.Duration, names ...string) *failoverFixture {
	t.Helper()
	fx := &failoverFixture{t: t, tr: &trace{}, clock: clock.NewFake(), byName: map[string]*scriptSink{}}
	var ss []*scriptSink
	for _, n := range names {
		s := newScriptSink(n, fx.tr)
		ss = append(ss, s)
		fx.byName[n] = s
	}
	log, logs := newTestLogger()
	fx.logs = logs
	f, err := NewFailover("g1", sinks(ss...), FailoverOptions{Priorities: prio, MaxPenalty: maxPenalty, Now: fx.clock.Now}, log)
	if err != nil {
		t.Fatal(err)
	}
	fx.f = f
	return fx
}

func (fx *failoverFixture) process() (Status, []string, error) {
	fx.t.Helper()
	before := len(fx.tr.list())
	st, err := fx.f.Process(context.Background())
	return st, fx.tr.list()[before:], err
}

func (fx *failoverFixture) state(name string) FailoverSinkState {
	for _, s := range fx.f.State() {
		if s.Sink == name {
			return s
		}
	}
	fx.t.Fatalf("no sink %s", name)
	return FailoverSinkState{}
}

func (fx *failoverFixture) active() string {
	for _, s := range fx.f.State() {
		if s.Active {
			return s.Sink
		}
	}
	return ""
}

func names(ss []Sink) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Name()
	}
	return out
}

func TestFailoverOrdersByPriorityThenConfigOrder(t *testing.T) {
	fx := newFailoverFixture(t, map[string]int{"k2": 5, "k4": 10}, 0, "k1", "k2", "k3", "k4")
	if got, want := names(fx.f.Sinks()), []string{"k4", "k2", "k1", "k3"}; !slices.Equal(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
	st, calls, err := fx.process()
	if st != Ready || err != nil || !slices.Equal(calls, []string{"k4"}) {
		t.Fatalf("process = %v, %v, calls %v; want READY from k4 alone", st, err, calls)
	}
}

func TestFailoverImplicitPrioritiesSkipExplicitOnes(t *testing.T) {
	// k1 has no priority: it would be -1 in Flume and collide with k2's -1,
	// silently dropping a sink. flumed gives it the next free value, -2.
	fx := newFailoverFixture(t, map[string]int{"k2": -1}, 0, "k1", "k2")
	if got := names(fx.f.Sinks()); !slices.Equal(got, []string{"k2", "k1"}) {
		t.Fatalf("order = %v, want [k2 k1]", got)
	}
}

func TestFailoverFailsOverWithinTheSameCall(t *testing.T) {
	fx := newFailoverFixture(t, map[string]int{"k1": 10, "k2": 5}, 0, "k1", "k2")
	fx.byName["k1"].fail()
	st, calls, err := fx.process()
	if st != Ready || err != nil {
		t.Fatalf("process = %v, %v; want READY from k2", st, err)
	}
	if !slices.Equal(calls, []string{"k1", "k2"}) {
		t.Fatalf("calls = %v, want [k1 k2]", calls)
	}
	k1 := fx.state("k1")
	if !k1.Dead || k1.Failures != 1 || !k1.RetryAt.Equal(fx.clock.Now().Add(2*time.Second)) {
		t.Fatalf("k1 state = %+v, want dead, 1 failure, retry in 2s", k1)
	}
	if fx.active() != "k2" {
		t.Fatalf("active = %q, want k2", fx.active())
	}
	logs := fx.logs.String()
	if !strings.Contains(logs, "failing over") || !strings.Contains(logs, "sink=k1") || !strings.Contains(logs, "to=k2") {
		t.Fatalf("failover not logged with both sink names:\n%s", logs)
	}
	// The next call goes straight to k2: k1's penalty has not expired.
	if _, calls, _ := fx.process(); !slices.Equal(calls, []string{"k2"}) {
		t.Fatalf("second call = %v, want [k2]", calls)
	}
}

func TestFailoverPenaltyDoublesUpToTheCap(t *testing.T) {
	const s, ms = time.Second, time.Millisecond
	for _, tc := range []struct {
		name       string
		maxPenalty time.Duration
		want       []time.Duration
	}{
		{"default maxpenalty 30 s", 0, []time.Duration{2 * s, 4 * s, 8 * s, 16 * s, 30 * s, 30 * s}},
		{"maxpenalty 10 s as in the seed", 10 * s, []time.Duration{2 * s, 4 * s, 8 * s, 10 * s, 10 * s}},
		{"maxpenalty below 2 s caps the first penalty too", 500 * ms, []time.Duration{500 * ms, 500 * ms, 500 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFailoverFixture(t, map[string]int{"k1": 10, "k2": 5}, tc.maxPenalty, "k1", "k2")
			fx.byName["k1"].fail()
			for i, want := range tc.want {
				if i > 0 {
					// At exactly the refresh time the sink is not retried yet.
					fx.clock.Advance(fx.state("k1").RetryAt.Sub(fx.clock.Now()))
					if _, calls, _ := fx.process(); !slices.Equal(calls, []string{"k2"}) {
						t.Fatalf("retry %d at exactly the refresh time: calls %v, want [k2]", i, calls)
					}
					fx.clock.Advance(time.Millisecond)
				}
				if _, calls, _ := fx.process(); calls[0] != "k1" {
					t.Fatalf("retry %d: calls = %v, want k1 first", i, calls)
				}
				st := fx.state("k1")
				if got := st.RetryAt.Sub(fx.clock.Now()); got != want || st.Failures != i+1 {
					t.Fatalf("failure %d: penalty %v (failures %d), want %v (%d)", i+1, got, st.Failures, want, i+1)
				}
			}
		})
	}
}

func TestFailoverFailsBackAfterThePenaltyThroughARealProcess(t *testing.T) {
	fx := newFailoverFixture(t, map[string]int{"k1": 10, "k2": 5}, 0, "k1", "k2")
	fx.byName["k1"].fail()
	fx.process()
	fx.byName["k1"].ready()
	fx.clock.Advance(2*time.Second + time.Millisecond)
	st, calls, err := fx.process()
	if st != Ready || err != nil || !slices.Equal(calls, []string{"k1"}) {
		t.Fatalf("process = %v, %v, calls %v; want READY from k1 alone", st, err, calls)
	}
	if fx.active() != "k1" || fx.state("k1").Dead {
		t.Fatalf("after recovery: active %q, k1 %+v; want k1 active and live", fx.active(), fx.state("k1"))
	}
	if !strings.Contains(fx.logs.String(), "failing back") {
		t.Fatalf("failback not logged:\n%s", fx.logs.String())
	}
	if _, calls, _ := fx.process(); !slices.Equal(calls, []string{"k1"}) {
		t.Fatalf("next call = %v, want [k1]", calls)
	}
	// A new failure starts again at 2 s: the failure count was reset.
	fx.byName["k1"].fail()
	fx.process()
	if got := fx.state("k1").RetryAt.Sub(fx.clock.Now()); got != 2*time.Second {
		t.Fatalf("penalty after a recovery = %v, want 2s", got)
	}
}

func TestFailoverRecoveredLowerPrioritySinkDoesNotTakeOver(t *testing.T) {
	fx := newFailoverFixture(t, map[string]int{"k1": 10, "k2": 5, "k3": 1}, 0, "k1", "k2", "k3")
	fx.byName["k2"].fail()
	fx.byName["k1"].fail()
	fx.process() // k1 fails, k2 fails, k3 takes over
	fx.byName["k2"].ready()
	fx.clock.Advance(2*time.Second + time.Millisecond)
	// Both dead sinks are due; k1 (higher priority, same refresh) is retried
	// first and fails again, then k2 comes back and becomes active over k3.
	_, calls, _ := fx.process()
	if !slices.Equal(calls, []string{"k1", "k2"}) || fx.active() != "k2" {
		t.Fatalf("calls %v, active %q; want [k1 k2] and k2 active", calls, fx.active())
	}
}

func TestFailoverBackoffFromTheActiveSinkNeverFailsOver(t *testing.T) {
	fx := newFailoverFixture(t, map[string]int{"k1": 10, "k2": 5}, 0, "k1", "k2")
	fx.byName["k1"].backoff()
	for range 3 {
		st, calls, err := fx.process()
		if st != Backoff || err != nil || !slices.Equal(calls, []string{"k1"}) {
			t.Fatalf("process = %v, %v, calls %v; want BACKOFF from k1 alone", st, err, calls)
		}
	}
	if fx.active() != "k1" || fx.state("k1").Dead {
		t.Fatalf("k1 should stay active: %+v", fx.f.State())
	}
}

func TestFailoverBackoffFromADeadSinkKeepsItsRefresh(t *testing.T) {
	fx := newFailoverFixture(t, map[string]int{"k1": 10, "k2": 5}, 0, "k1", "k2")
	fx.byName["k1"].fail()
	fx.process()
	refresh := fx.state("k1").RetryAt
	fx.byName["k1"].backoff()
	fx.clock.Advance(3 * time.Second)
	for i := range 2 {
		st, calls, err := fx.process()
		if st != Backoff || err != nil || !slices.Equal(calls, []string{"k1"}) {
			t.Fatalf("call %d = %v, %v, calls %v; want BACKOFF from k1 alone (active k2 not called)", i, st, err, calls)
		}
		if s := fx.state("k1"); !s.Dead || !s.RetryAt.Equal(refresh) || s.Failures != 1 {
			t.Fatalf("call %d: k1 = %+v, want still dead with refresh %v and 1 failure", i, s, refresh)
		}
	}
}

func TestFailoverAllSinksDeadIsAnErrorUntilOneRecovers(t *testing.T) {
	fx := newFailoverFixture(t, map[string]int{"k1": 10, "k2": 5}, 0, "k1", "k2")
	fx.byName["k1"].fail()
	fx.byName["k2"].fail()
	st, calls, err := fx.process()
	if err == nil || !errors.Is(err, ErrAllSinksFailed) || st != Backoff {
		t.Fatalf("process = %v, %v; want an ErrAllSinksFailed error", st, err)
	}
	if !strings.Contains(err.Error(), "all sinks failed to process, nothing left to failover to") {
		t.Fatalf("error = %q, want Flume's message", err)
	}
	if !slices.Equal(calls, []string{"k1", "k2"}) {
		t.Fatalf("calls = %v, want [k1 k2]", calls)
	}
	// Before any penalty expires nothing is called at all.
	if _, calls, err := fx.process(); err == nil || len(calls) != 0 {
		t.Fatalf("second call = %v, calls %v; want an error and no sink called", err, calls)
	}
	// k2 comes back first: it is retried (after k1, which fails again) and
	// takes over.
	fx.byName["k2"].ready()
	fx.clock.Advance(2*time.Second + time.Millisecond)
	st, calls, err = fx.process()
	if st != Ready || err != nil || !slices.Equal(calls, []string{"k1", "k2"}) {
		t.Fatalf("recovery call = %v, %v, calls %v; want READY after [k1 k2]", st, err, calls)
	}
	if fx.active() != "k2" || fx.state("k1").Failures != 2 {
		t.Fatalf("after recovery: active %q, k1 %+v; want k2 active, k1 with 2 failures", fx.active(), fx.state("k1"))
	}
	if !strings.Contains(fx.logs.String(), "no live sink left") || !strings.Contains(fx.logs.String(), "sink recovered; resuming") {
		t.Fatalf("transitions not logged:\n%s", fx.logs.String())
	}
}

func TestFailoverShutdownDoesNotPenalizeASink(t *testing.T) {
	fx := newFailoverFixture(t, map[string]int{"k1": 10, "k2": 5}, 0, "k1", "k2")
	fx.byName["k1"].fail()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st, err := fx.f.Process(ctx)
	if err == nil || st != Backoff {
		t.Fatalf("process = %v, %v; want the sink's error", st, err)
	}
	if fx.state("k1").Dead || fx.active() != "k1" {
		t.Fatalf("k1 was penalized for a cancelled call: %+v", fx.f.State())
	}
}

func TestFailoverMetricsShowActiveAndDeadSinks(t *testing.T) {
	fx := newFailoverFixture(t, map[string]int{"k1": 10, "k2": 5}, 0, "k1", "k2")
	fx.byName["k1"].fail()
	fx.process()
	m := fx.f.FlumeMetrics()
	retry := fx.clock.Now().Add(2 * time.Second).UnixMilli()
	if m["ActiveSink"] != "k2" || m["DeadSinks"] != "k1" || m["Sink.k1.Failures"] != "1" ||
		m["Sink.k1.RetryAt"] != strconv.FormatInt(retry, 10) || m["Type"] != "SINK_PROCESSOR" {
		t.Fatalf("metrics = %v", m)
	}
}

func TestFailoverConfigFromTheSeed(t *testing.T) {
	c := config.FromMap("a1.sinkgroups.g1.processor.", map[string]string{
		"priority.k1": "10",
		"priority.k2": "5",
		"maxpenalty":  "10000",
	})
	factory, ok := ProcessorLookup("failover")
	if !ok {
		t.Fatal("failover is not registered")
	}
	p, err := factory("g1", c, sinks(newScriptSink("k1", nil), newScriptSink("k2", nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Problems().Err(); err != nil {
		t.Fatalf("problems: %v", err)
	}
	f := p.(*Failover)
	if got := names(f.Sinks()); !slices.Equal(got, []string{"k1", "k2"}) || f.maxPenalty != 10*time.Second {
		t.Fatalf("order %v, maxpenalty %v; want [k1 k2], 10s", got, f.maxPenalty)
	}
}

func TestFailoverConfigProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		kv   map[string]string
		want []string
	}{
		{
			"duplicate priority names both lines",
			map[string]string{"priority.k1": "5", "priority.k2": "5"},
			[]string{"<inline>:2: a1.sinkgroups.g1.processor.priority.k2: priority 5 is also given to sink k1 at <inline>:1; failover priorities must be unique"},
		},
		{
			"the seed's misspelt maxpenality gets a suggestion",
			map[string]string{"priority.k1": "10", "priority.maxpenality": "10000"},
			[]string{"<inline>:2: a1.sinkgroups.g1.processor.priority.maxpenality: unknown key (did you mean maxpenalty?)"},
		},
		{
			"a priority that is not a number",
			map[string]string{"priority.k1": "high"},
			[]string{`<inline>:1: a1.sinkgroups.g1.processor.priority.k1: not an integer: "high"`},
		},
		{
			"a negative maxpenalty",
			map[string]string{"maxpenalty": "-1"},
			[]string{"<inline>:1: a1.sinkgroups.g1.processor.maxpenalty: must be a positive number of milliseconds, not -1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.FromMap("a1.sinkgroups.g1.processor.", tc.kv)
			if _, err := checkedProcessor("failover")("g1", c, sinks(newScriptSink("k1", nil), newScriptSink("k2", nil)), nil); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range c.Problems().Errors() {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestNewFailoverRejectsDuplicatePriorities(t *testing.T) {
	_, err := NewFailover("g1", sinks(newScriptSink("k1", nil), newScriptSink("k2", nil)),
		FailoverOptions{Priorities: map[string]int{"k1": 3, "k2": 3}}, nil)
	if err == nil || !strings.Contains(err.Error(), "k1 and k2 both have priority 3") {
		t.Fatalf("err = %v, want a duplicate-priority error naming k1 and k2", err)
	}
}
