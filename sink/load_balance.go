package sink

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/counter"
)

// LoadBalanceOptions configure a load_balance processor.
type LoadBalanceOptions struct {
	// Selector is "round_robin" (the default) or "random".
	Selector string
	// Backoff takes a failed sink out of rotation for a while (Flume's backoff, false).
	Backoff bool
	// MaxTimeOut caps a sink's backoff (Flume's selector.maxTimeOut; zero is
	// the key's default).
	MaxTimeOut time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Rand drives the random order and the backoff jitter (a random seed when nil).
	Rand *rand.Rand
}

// LoadBalance is Flume's LoadBalancingSinkProcessor (FLUME.md §3.5): each
// Process call orders the eligible sinks — round robin, advancing the head once
// per call, or a random permutation — and asks them in turn until one returns
// READY or BACKOFF; a sink that fails is skipped for the rest of the call. When
// every sink fails the call returns an error wrapping ErrAllSinksFailed.
//
// With Backoff, a failed sink leaves the rotation for min(MaxTimeOut,
// 2^n × 1 s) after its n-th consecutive failure, less up to 20 % of jitter so
// a group's sinks do not all come back at once. Unlike Flume (FLUME-2229), a
// READY resets the sink's failure count: one good batch proves it is healthy
// again. When every sink is backed off, Process returns an error (Flume's
// random selector throws instead).
//
// Process is called from the group's runner goroutine; State may be called from
// any goroutine.
type LoadBalance struct {
	group      string
	log        *slog.Logger
	sinks      []Sink
	random     bool
	backoff    bool
	maxTimeOut time.Duration
	now        func() time.Time
	rnd        *rand.Rand

	mu       sync.Mutex
	nextHead int
	state    []lbState
}

type lbState struct {
	seqFails int
	restore  time.Time // eligible again when restore < now
}

var (
	_ Processor         = (*LoadBalance)(nil)
	_ counter.Monitored = (*LoadBalance)(nil)
)

// NewLoadBalance builds a load_balance processor; it needs at least two sinks.
func NewLoadBalance(group string, sinks []Sink, opts LoadBalanceOptions, log *slog.Logger) (*LoadBalance, error) {
	if len(sinks) < 2 {
		return nil, fmt.Errorf("load_balance group %s needs at least 2 sinks, has %d", group, len(sinks))
	}
	sel := strings.ToLower(opts.Selector)
	if sel != "" && sel != "round_robin" && sel != "random" {
		return nil, fmt.Errorf("load_balance group %s: unknown selector %q (round_robin or random)", group, opts.Selector)
	}
	return newLoadBalance(group, sinks, opts, log), nil
}

func newLoadBalance(group string, sinks []Sink, opts LoadBalanceOptions, log *slog.Logger) *LoadBalance {
	lb := &LoadBalance{
		group:      group,
		log:        orDiscard(log),
		sinks:      sinks,
		random:     strings.EqualFold(opts.Selector, "random"),
		backoff:    opts.Backoff,
		maxTimeOut: opts.MaxTimeOut,
		now:        opts.Now,
		rnd:        opts.Rand,
		state:      make([]lbState, len(sinks)),
	}
	if lb.maxTimeOut <= 0 {
		lb.maxTimeOut = lbMaxTimeOut.Default()
	}
	if lb.now == nil {
		lb.now = time.Now
	}
	if lb.rnd == nil {
		lb.rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return lb
}

// The load_balance processor's keys (FLUME.md §2.14).
var (
	lbBackoff  = config.Bool("backoff", false, "take a failed sink out of the rotation for a while")
	lbSelector = config.OneOf("selector", "round_robin", []string{"round_robin", "random"}, "the order sinks are tried in").
			RefusingClasses("custom selector classes are not supported by flumed (use round_robin or random)")
	lbMaxTimeOut = config.Millis("selector.maxTimeOut", 30*time.Second, "the longest a failed sink stays out of the rotation")
)

// loadBalanceType declares the load_balance processor.
var loadBalanceType = &config.Spec{
	Type:    "load_balance",
	Classes: []string{"org.apache.flume.sink.LoadBalancingSinkProcessor"},
	Doc:     "`round_robin`/`random` with `backoff`; a READY resets the sink's backoff (FLUME-2229); up to 20 % jitter on backoff times",
	Keys:    []config.Decl{lbBackoff, lbSelector, lbMaxTimeOut},
}

func newLoadBalanceFactory(group string, c *config.Context, sinks []Sink, log *slog.Logger) (Processor, error) {
	opts := LoadBalanceOptions{Backoff: lbBackoff.Get(c), Selector: lbSelector.Get(c), MaxTimeOut: lbMaxTimeOut.Get(c)}
	if opts.MaxTimeOut <= 0 {
		c.Errorf(lbMaxTimeOut.Name(), "must be a positive number of milliseconds, not %d", opts.MaxTimeOut.Milliseconds())
	}
	if len(sinks) < 2 {
		c.Errorf("type", "load_balance needs at least 2 sinks; group %s has %d", group, len(sinks))
	}
	return newLoadBalance(group, sinks, opts, log), nil
}

// Sinks returns the sinks in configuration order.
func (lb *LoadBalance) Sinks() []Sink { return append([]Sink(nil), lb.sinks...) }

// order returns the indices of the sinks to try this call, and when none is
// eligible, how long until the first one is.
func (lb *LoadBalance) order(now time.Time) ([]int, time.Duration) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	var eligible []int
	wait := time.Duration(-1)
	for i, st := range lb.state {
		if st.restore.Before(now) {
			eligible = append(eligible, i)
		} else if d := st.restore.Sub(now); wait < 0 || d < wait {
			wait = d
		}
	}
	n := len(eligible)
	if n == 0 {
		return nil, wait
	}
	if lb.random {
		lb.rnd.Shuffle(n, func(i, j int) { eligible[i], eligible[j] = eligible[j], eligible[i] })
		return eligible, 0
	}
	// The eligible set may have shrunk since the last call.
	if lb.nextHead >= n {
		lb.nextHead = 0
	}
	begin := lb.nextHead
	lb.nextHead = (lb.nextHead + 1) % n
	out := make([]int, n)
	for i := range n {
		out[i] = eligible[(begin+i)%n]
	}
	return out, 0
}

// Process implements Processor.
func (lb *LoadBalance) Process(ctx context.Context) (Status, error) {
	idx, wait := lb.order(lb.now())
	if len(idx) == 0 {
		return Backoff, fmt.Errorf("group %s: %w: every sink is backed off (the first returns in %s)", lb.group, ErrAllSinksFailed, wait)
	}
	var lastErr error
	for _, i := range idx {
		s := lb.sinks[i]
		st, err := s.Process(ctx)
		if err == nil {
			if st == Ready {
				lb.succeeded(i)
			}
			return st, nil
		}
		if ctx.Err() != nil {
			return Backoff, err
		}
		lastErr = err
		d := lb.failed(i)
		lb.log.Warn("sink failed; trying the next", "group", lb.group, "sink", s.Name(), "backoff", d, "err", err)
	}
	return Backoff, fmt.Errorf("group %s: %w (last: %w)", lb.group, ErrAllSinksFailed, lastErr)
}

func (lb *LoadBalance) succeeded(i int) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.state[i].seqFails > 0 {
		lb.log.Info("sink recovered", "group", lb.group, "sink", lb.sinks[i].Name())
	}
	lb.state[i] = lbState{}
}

// failed backs sink i off (when backoff is on) and returns for how long.
func (lb *LoadBalance) failed(i int) time.Duration {
	if !lb.backoff {
		return 0
	}
	lb.mu.Lock()
	defer lb.mu.Unlock()
	st := &lb.state[i]
	st.seqFails = min(st.seqFails+1, 16)
	d := min(lb.maxTimeOut, time.Duration(1<<st.seqFails)*time.Second)
	d -= time.Duration(lb.rnd.Int64N(int64(d/5) + 1))
	st.restore = lb.now().Add(d)
	return d
}

// LoadBalanceSinkState is one sink of a load_balance group as seen by monitoring.
type LoadBalanceSinkState struct {
	Sink      string
	Failures  int       // consecutive failures
	BackedOff time.Time // out of rotation until then (zero: in rotation)
}

// State returns every sink's state, in configuration order.
func (lb *LoadBalance) State() []LoadBalanceSinkState {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	now := lb.now()
	out := make([]LoadBalanceSinkState, len(lb.sinks))
	for i, s := range lb.sinks {
		out[i] = LoadBalanceSinkState{Sink: s.Name(), Failures: lb.state[i].seqFails}
		if !lb.state[i].restore.Before(now) {
			out[i].BackedOff = lb.state[i].restore
		}
	}
	return out
}

// FlumeMetrics renders the group's state for the metrics JSON (flumed's own
// SINK_PROCESSOR group): the sinks backed off now, and per backed-off sink its
// consecutive failures and when it returns, in epoch ms.
func (lb *LoadBalance) FlumeMetrics() map[string]string {
	m := map[string]string{"Type": "SINK_PROCESSOR"}
	var out []string
	for _, s := range lb.State() {
		if s.BackedOff.IsZero() {
			continue
		}
		out = append(out, s.Sink)
		m["Sink."+s.Sink+".Failures"] = strconv.Itoa(s.Failures)
		m["Sink."+s.Sink+".RetryAt"] = strconv.FormatInt(s.BackedOff.UnixMilli(), 10)
	}
	m["BackedOffSinks"] = strings.Join(out, " ")
	return m
}
