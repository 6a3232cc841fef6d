package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/counter"
)

// ErrAllSinksFailed is returned (wrapped) by a failover processor with no live
// sink left, and by a load_balance processor whose every eligible sink failed.
var ErrAllSinksFailed = errors.New("all sinks failed")

// failurePenalty is Flume's FAILURE_PENALTY: a sink that failed n times in a row
// waits min(maxpenalty, 2^n × 1 s) before it is tried again.
const failurePenalty = time.Second

// FailoverOptions configure a failover processor.
type FailoverOptions struct {
	// Priorities by sink name; larger is preferred, and they must be unique.
	// A sink without one ranks as if given -1, -2, … in the order of the sinks
	// list (skipping values taken explicitly), so the list order decides among
	// them, never a hash.
	Priorities map[string]int
	// MaxPenalty caps the penalty of a failed sink (Flume's maxpenalty).
	MaxPenalty time.Duration
	// Now is the clock (time.Now when nil); tests inject a fake one.
	Now func() time.Time
}

// Failover is Flume's FailoverSinkProcessor (FLUME.md §3.4): it sends every
// batch to the live sink of highest priority. A sink whose Process fails goes to
// a dead list with a penalty of 2 s, 4 s, 8 s, … capped at MaxPenalty, and the
// same call retries with the next live sink. A dead sink whose penalty has
// expired is retried before the active sink on the next call, with a real
// Process: READY revives it (and fails back to it when it is preferred),
// BACKOFF keeps it dead with the same expired penalty, an error lengthens the
// penalty. BACKOFF from the active sink never fails over.
//
// Process is called from the group's runner goroutine; State and FlumeMetrics
// may be called from any goroutine.
type Failover struct {
	group      string
	log        *slog.Logger
	maxPenalty time.Duration
	now        func() time.Time
	all        []*failoverSink // by preference

	mu     sync.Mutex
	live   []*failoverSink // by preference
	dead   []*failoverSink // by refresh, then preference
	active *failoverSink
}

type failoverSink struct {
	sink        Sink
	priority    int
	seqFailures int
	refresh     time.Time // when a dead sink may be retried
}

var (
	_ Processor         = (*Failover)(nil)
	_ counter.Monitored = (*Failover)(nil)
)

// NewFailover builds a failover processor over sinks (in configuration order).
// It fails on duplicate priorities or an empty group.
func NewFailover(group string, sinks []Sink, opts FailoverOptions, log *slog.Logger) (*Failover, error) {
	if len(sinks) == 0 {
		return nil, fmt.Errorf("failover group %s has no sinks", group)
	}
	byPrio := map[int]string{}
	for _, s := range sinks {
		if p, ok := opts.Priorities[s.Name()]; ok {
			if other, dup := byPrio[p]; dup {
				return nil, fmt.Errorf("failover group %s: sinks %s and %s both have priority %d", group, other, s.Name(), p)
			}
			byPrio[p] = s.Name()
		}
	}
	return newFailover(group, sinks, opts, log), nil
}

func newFailover(group string, sinks []Sink, opts FailoverOptions, log *slog.Logger) *Failover {
	f := &Failover{group: group, log: orDiscard(log), maxPenalty: opts.MaxPenalty, now: opts.Now}
	if f.maxPenalty <= 0 {
		f.maxPenalty = failoverMaxPenalty.Default()
	}
	if f.now == nil {
		f.now = time.Now
	}
	taken := map[int]bool{}
	for _, p := range opts.Priorities {
		taken[p] = true
	}
	next := 0
	for _, s := range sinks {
		p, ok := opts.Priorities[s.Name()]
		if !ok {
			for next--; taken[next]; next-- {
			}
			p = next
		}
		f.all = append(f.all, &failoverSink{sink: s, priority: p})
	}
	// Stable: equal priorities (only possible after a reported config error)
	// keep the configuration order.
	slices.SortStableFunc(f.all, func(a, b *failoverSink) int { return b.priority - a.priority })
	f.live = slices.Clone(f.all)
	f.active = f.live[0]
	return f
}

// The failover processor's keys (FLUME.md §2.13).
var (
	failoverPriority = config.Int("priority.<sink>", 0,
		"the sink's priority, higher first; unique in the group. Sinks without one come after, in configuration order").
		DefaultText("none")
	failoverMaxPenalty = config.Millis("maxpenalty", 30*time.Second, "the longest a failed sink is set aside")
)

// failoverType declares the failover processor.
var failoverType = &config.Spec{
	Type:    "failover",
	Classes: []string{"org.apache.flume.sink.FailoverSinkProcessor"},
	Doc:     "sinks without a priority are ordered by their order in the configuration, not by hash; duplicate priorities are an error",
	Keys:    []config.Decl{failoverPriority, failoverMaxPenalty},
}

func newFailoverFactory(group string, c *config.Context, sinks []Sink, log *slog.Logger) (Processor, error) {
	opts := FailoverOptions{Priorities: map[string]int{}}
	owner := map[int]string{} // priority -> sink that has it
	for _, s := range sinks {
		p, set := failoverPriority.At(c, s.Name())
		if !set {
			continue
		}
		key := "priority." + s.Name()
		if other, dup := owner[p]; dup {
			c.Errorf(key, "priority %d is also given to sink %s at %s; failover priorities must be unique",
				p, other, c.Pos("priority."+other))
			continue
		}
		owner[p] = s.Name()
		opts.Priorities[s.Name()] = p
	}
	opts.MaxPenalty = failoverMaxPenalty.Get(c)
	if opts.MaxPenalty <= 0 {
		c.Errorf(failoverMaxPenalty.Name(), "must be a positive number of milliseconds, not %d", opts.MaxPenalty.Milliseconds())
		opts.MaxPenalty = failoverMaxPenalty.Default()
	}
	if len(sinks) == 0 {
		c.Errorf("type", "failover group %s has no sinks", group)
		return &Failover{group: group, log: orDiscard(log), now: time.Now}, nil
	}
	return newFailover(group, sinks, opts, log), nil
}

// Sinks returns the sinks by priority, highest first.
func (f *Failover) Sinks() []Sink {
	out := make([]Sink, len(f.all))
	for i, s := range f.all {
		out[i] = s.sink
	}
	return out
}

func (f *Failover) penalty(seqFailures int) time.Duration {
	if seqFailures >= 30 {
		return f.maxPenalty
	}
	return min(f.maxPenalty, time.Duration(1<<seqFailures)*failurePenalty)
}

// Process implements Processor.
func (f *Failover) Process(ctx context.Context) (Status, error) {
	// 1. Dead sinks whose penalty has expired are retried first, with real events.
	now := f.now()
	for {
		f.mu.Lock()
		if len(f.dead) == 0 || !f.dead[0].refresh.Before(now) {
			f.mu.Unlock()
			break
		}
		fs := f.dead[0]
		f.dead = f.dead[1:]
		f.mu.Unlock()

		st, err := fs.sink.Process(ctx)
		switch {
		case err == nil && st == Ready:
			f.revive(fs)
			return Ready, nil
		case err == nil || ctx.Err() != nil:
			// BACKOFF (or a shutdown, which says nothing about the sink): keep
			// the expired refresh so it is tried first again next call.
			f.pushDead(fs)
			return Backoff, err
		}
		fs.seqFailures++
		fs.refresh = f.now().Add(f.penalty(fs.seqFailures))
		f.pushDead(fs)
		f.log.Warn("sink still failing", "group", f.group, "sink", fs.sink.Name(),
			"failures", fs.seqFailures, "retry_in", f.penalty(fs.seqFailures), "err", err)
	}

	// 2. The active sink; on failure, fail over within this call.
	for {
		f.mu.Lock()
		fs := f.active
		f.mu.Unlock()
		if fs == nil {
			break
		}
		st, err := fs.sink.Process(ctx)
		if err == nil {
			return st, nil // BACKOFF passes through: it never fails over
		}
		if ctx.Err() != nil {
			return Backoff, err
		}
		fs.seqFailures = 1
		fs.refresh = f.now().Add(f.penalty(1))
		f.mu.Lock()
		f.live = slices.DeleteFunc(f.live, func(x *failoverSink) bool { return x == fs })
		f.active = nil
		if len(f.live) > 0 {
			f.active = f.live[0]
		}
		next := f.active
		f.mu.Unlock()
		f.pushDead(fs)
		if next != nil {
			f.log.Warn("sink failed; failing over", "group", f.group, "sink", fs.sink.Name(),
				"to", next.sink.Name(), "retry_in", f.penalty(1), "err", err)
		} else {
			f.log.Error("sink failed; no live sink left", "group", f.group, "sink", fs.sink.Name(),
				"retry_in", f.penalty(1), "err", err)
		}
	}
	return Backoff, fmt.Errorf("group %s: %w to process, nothing left to failover to", f.group, ErrAllSinksFailed)
}

// revive puts a recovered sink back among the live ones and makes the
// highest-priority live sink active again (failback).
func (f *Failover) revive(fs *failoverSink) {
	f.mu.Lock()
	old := f.active
	fs.seqFailures, fs.refresh = 0, time.Time{}
	f.live = append(f.live, fs)
	slices.SortStableFunc(f.live, func(a, b *failoverSink) int { return b.priority - a.priority })
	f.active = f.live[0]
	f.mu.Unlock()
	switch {
	case old == nil:
		f.log.Info("sink recovered; resuming", "group", f.group, "sink", fs.sink.Name())
	case old != f.active:
		f.log.Info("sink recovered; failing back", "group", f.group, "sink", fs.sink.Name(), "from", old.sink.Name())
	default:
		f.log.Info("sink recovered; standing by", "group", f.group, "sink", fs.sink.Name(), "active", old.sink.Name())
	}
}

func (f *Failover) pushDead(fs *failoverSink) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dead = append(f.dead, fs)
	slices.SortStableFunc(f.dead, func(a, b *failoverSink) int {
		if c := a.refresh.Compare(b.refresh); c != 0 {
			return c
		}
		return b.priority - a.priority
	})
}

// FailoverSinkState is one sink of a failover group as seen by monitoring.
type FailoverSinkState struct {
	Sink     string
	Priority int
	Active   bool
	Dead     bool
	Failures int       // consecutive failures of a dead sink
	RetryAt  time.Time // when a dead sink is tried again
}

// State returns every sink's state, by priority.
func (f *Failover) State() []FailoverSinkState {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FailoverSinkState, 0, len(f.all))
	for _, s := range f.all {
		st := FailoverSinkState{Sink: s.sink.Name(), Priority: s.priority, Active: s == f.active}
		if slices.Contains(f.dead, s) {
			st.Dead, st.Failures, st.RetryAt = true, s.seqFailures, s.refresh
		}
		out = append(out, st)
	}
	return out
}

// FlumeMetrics renders the group's state for the metrics JSON (flumed's own
// SINK_PROCESSOR group; Flume has none for failover): the active sink, the
// dead sinks, and per dead sink its failures and retry time in epoch ms.
func (f *Failover) FlumeMetrics() map[string]string {
	m := map[string]string{"Type": "SINK_PROCESSOR", "ActiveSink": ""}
	var dead []string
	for _, s := range f.State() {
		if s.Active {
			m["ActiveSink"] = s.Sink
		}
		if s.Dead {
			dead = append(dead, s.Sink)
			m["Sink."+s.Sink+".Failures"] = strconv.Itoa(s.Failures)
			m["Sink."+s.Sink+".RetryAt"] = strconv.FormatInt(s.RetryAt.UnixMilli(), 10)
		}
	}
	m["DeadSinks"] = strings.Join(dead, " ")
	return m
}
