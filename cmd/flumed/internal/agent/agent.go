package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flumed/flumed/internal/config"
)

// Agent is one built agent. Start it once, stop it once.
//
// Start order is Flume's: channels open, then each sink group's sinks start
// and its runner runs, then sources start. A part whose start fails is
// retried by a supervisor with backoff, and parts that need a channel wait
// until it is open. Stop reverses it: sources stop, sinks drain the channels
// until they are empty or the drain timeout passes, runners stop (a take in
// flight rolls back), sinks stop, channels close. Channels are told when the
// sources have stopped (quiesceChannels), so an empty one is seen as drained
// without waiting out its keep-alive.
type Agent struct {
	name     string
	opts     Options
	log      *slog.Logger
	channels []*chanUnit
	groups   []*groupUnit
	sources  []*sourceUnit
	warnings []config.Problem
	// conf is the configuration the running parts were built from: what a
	// reload compares with (reload.go).
	conf *config.Agent

	// reloadMu serialises Reload and Stop: a reload finishes before a stop
	// starts draining, and a second reload waits for the first.
	reloadMu sync.Mutex

	// mu guards started, stopped, stages' unit lists and the component
	// slices above, which a reload replaces.
	mu      sync.Mutex
	started bool
	stopped bool
	stages  [3]*stage // channels, sinks, sources
}

// Name is the agent's name.
func (a *Agent) Name() string { return a.name }

// Warnings are the configuration's warnings (the agent runs despite them).
func (a *Agent) Warnings() []config.Problem {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.warnings
}

// parts are the agent's components now: a reload replaces them.
func (a *Agent) parts() ([]*chanUnit, []*groupUnit, []*sourceUnit) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.channels, a.groups, a.sources
}

// stage is one kind of unit under supervision, stopped as a whole.
type stage struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the supervisor goroutines of the stage
	units  []*supervised
}

// supervised is a unit and what the supervisor knows of it.
type supervised struct {
	u        unit
	up       atomic.Bool
	stopping atomic.Bool
	failures atomic.Int64 // start failures and deaths since the last start

	// ctx ends the unit's supervisor only (a reload removing the unit); the
	// unit itself runs under its stage's context, so a reload stops it
	// gracefully through stop, as Stop does.
	ctx    context.Context
	cancel context.CancelFunc
	sup    chan struct{} // closed when its supervisor goroutine exits; nil if none
}

func newSupervised(st *stage, u unit) *supervised {
	s := &supervised{u: u}
	s.ctx, s.cancel = context.WithCancel(st.ctx)
	return s
}

const (
	stageChannels = iota
	stageSinks
	stageSources
)

// Start starts everything in order and returns once every part has been
// tried once; parts that failed keep being retried in the background until
// Stop. It fails only when called twice.
func (a *Agent) Start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started {
		return errors.New("agent already started")
	}
	a.started = true
	units := [3][]unit{}
	for _, c := range a.channels {
		units[stageChannels] = append(units[stageChannels], c)
	}
	for _, g := range a.groups {
		units[stageSinks] = append(units[stageSinks], g)
	}
	for _, s := range a.sources {
		units[stageSources] = append(units[stageSources], s)
	}
	for i := range a.stages {
		st := &stage{}
		st.ctx, st.cancel = context.WithCancel(context.Background())
		a.stages[i] = st
		for _, u := range units[i] {
			s := newSupervised(st, u)
			st.units = append(st.units, s)
			a.launch(st, s)
		}
	}
	a.log.Info("agent started", "channels", len(a.channels), "sink_groups", len(a.groups), "sources", len(a.sources))
	return nil
}

// launch makes the first attempt to start s, synchronously so the start
// order is the configuration's, and hands s to a supervisor goroutine when
// it failed, must wait for a channel, or may die later.
func (a *Agent) launch(st *stage, s *supervised) {
	if !depsReady(s.u) {
		a.log.Warn("waiting for its channels to open", "component", s.u.id())
		a.goSupervise(st, s, false)
		return
	}
	if err := safeStart(st.ctx, a, s.u); err != nil {
		s.failures.Add(1)
		a.log.Error("start failed; retrying", "component", s.u.id(), "err", err, "retry_in", a.opts.RestartMin)
		a.goSupervise(st, s, true)
		return
	}
	s.up.Store(true)
	a.log.Debug("started", "component", s.u.id())
	if s.u.died() != nil {
		a.goSupervise(st, s, true)
	}
}

// goSupervise hands s to a supervisor goroutine.
func (a *Agent) goSupervise(st *stage, s *supervised, backoffFirst bool) {
	st.wg.Add(1)
	s.sup = make(chan struct{})
	go func() {
		defer close(s.sup)
		a.supervise(st, s, backoffFirst)
	}()
}

// supervise keeps s running until its stage ends: it waits for s's
// channels, (re)starts s with backoff (RestartMin doubling up to
// RestartMax, reset after a successful start), and restarts it when it
// dies.
func (a *Agent) supervise(st *stage, s *supervised, backoffFirst bool) {
	defer st.wg.Done()
	backoff := a.opts.RestartMin
	for {
		if s.up.Load() {
			died := s.u.died()
			if died == nil {
				return
			}
			select {
			case <-s.ctx.Done():
				return
			case <-died:
			}
			if s.stopping.Load() || s.ctx.Err() != nil {
				return
			}
			s.up.Store(false)
			s.failures.Add(1)
			a.log.Error("stopped on its own; restarting", "component", s.u.id(), "retry_in", backoff)
			s.u.stop(a)
			backoffFirst = true
		}
		if !waitDeps(s.ctx, s.u) {
			return
		}
		if backoffFirst && !sleep(s.ctx, backoff) {
			return
		}
		backoffFirst = true
		if err := safeStart(st.ctx, a, s.u); err != nil {
			s.failures.Add(1)
			backoff = min(2*backoff, a.opts.RestartMax)
			a.log.Error("start failed; retrying", "component", s.u.id(), "err", err, "retry_in", backoff)
			continue
		}
		s.up.Store(true)
		a.log.Info("started", "component", s.u.id(), "after_failures", s.failures.Swap(0))
		backoff = a.opts.RestartMin
	}
}

// safeStart starts u, turning a panic of a component into a start failure
// the supervisor retries, rather than the end of the process.
func safeStart(ctx context.Context, a *Agent, u unit) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
			a.log.Error("panic while starting", "component", u.id(), "panic", p, "stack", string(debug.Stack()))
		}
	}()
	return u.start(ctx, a)
}

func depsReady(u unit) bool {
	for _, c := range u.deps() {
		if !c.isOpen() {
			return false
		}
	}
	return true
}

func waitDeps(ctx context.Context, u unit) bool {
	for _, c := range u.deps() {
		select {
		case <-c.ready:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Stop stops the agent gracefully: sources, then a drain of at most
// DrainTimeout, then sinks, then channels. Cancelling ctx cuts the drain
// short (a second signal): what is still in a channel stays there, and a take
// in flight rolls back. Stop returns an error when the drain did not empty
// the channels; the agent is stopped either way.
func (a *Agent) Stop(ctx context.Context) error {
	a.reloadMu.Lock() // a reload in progress finishes first
	defer a.reloadMu.Unlock()
	a.mu.Lock()
	if !a.started || a.stopped {
		a.mu.Unlock()
		return nil
	}
	a.stopped = true
	a.mu.Unlock()

	a.log.Info("stopping sources")
	a.stopStage(a.stages[stageSources])
	a.quiesceChannels()

	a.log.Info("draining channels", "timeout", a.opts.DrainTimeout)
	drainCtx, cancel := context.WithTimeout(ctx, a.opts.DrainTimeout)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, s := range a.stages[stageSinks].units {
		s.stopping.Store(true)
		if !s.up.Load() {
			continue
		}
		wg.Add(1)
		go func(g *groupUnit) {
			defer wg.Done()
			if err := g.drain(drainCtx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}(s.u.(*groupUnit))
	}
	wg.Wait()
	cancel()

	a.log.Info("stopping sinks")
	a.stopStage(a.stages[stageSinks])
	a.log.Info("closing channels")
	a.stopStage(a.stages[stageChannels])
	left := int64(0)
	for _, c := range a.channels {
		if ch := c.channel(); ch != nil {
			left += ch.Stats().Size
		}
	}
	a.log.Info("agent stopped", "events_left_in_channels", left)
	if len(errs) > 0 {
		return fmt.Errorf("stop agent %s: %w", a.name, errors.Join(errs...))
	}
	return nil
}

// quiescer is a channel whose empty takes wait for puts (the memory channel
// waits keep-alive) and can be told that none will come.
type quiescer interface{ Quiesce() }

// quiesceChannels tells the channels that the sources have stopped, so a
// sink's take on an empty channel returns at once instead of holding up the
// drain, or the runner's stop, by a keep-alive. No event is involved: only
// takes that found nothing return sooner.
func (a *Agent) quiesceChannels() {
	for _, c := range a.channels {
		if q, ok := c.channel().(quiescer); ok {
			q.Quiesce()
		}
	}
}

// stopStage ends a stage's supervisors, then stops its started units in
// reverse start order.
func (a *Agent) stopStage(st *stage) {
	for _, s := range st.units {
		s.stopping.Store(true)
	}
	st.cancel()
	st.wg.Wait()
	for i := len(st.units) - 1; i >= 0; i-- {
		s := st.units[i]
		if s.up.Swap(false) {
			s.u.stop(a)
			a.log.Debug("stopped", "component", s.u.id())
		}
	}
}

// Run starts the agent, waits for ctx to end, and stops it; stopCtx ending
// cuts the drain short (see Stop).
func (a *Agent) Run(ctx, stopCtx context.Context) error {
	if err := a.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	return a.Stop(stopCtx)
}
