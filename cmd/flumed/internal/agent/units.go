package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/clock"
	"github.com/flumed/flumed/sink"
	"github.com/flumed/flumed/source"
)

// unit is one supervised part of the agent: a channel, a sink group (its
// sinks and their runner), or a source (and its runner, if pollable).
type unit interface {
	// id names the unit in logs: "channel c1".
	id() string
	// deps are the channels that must be open before the unit starts.
	deps() []*chanUnit
	// start starts the unit; on error nothing of it is left running.
	start(ctx context.Context, a *Agent) error
	// stop stops a started unit. The supervisor never calls it concurrently
	// with start.
	stop(a *Agent)
	// died is closed when a started unit stopped on its own (a runner that
	// exited); nil for units that cannot.
	died() <-chan struct{}
}

// chanUnit is one channel: its spec, and once open the channel itself.
type chanUnit struct {
	name  string
	spec  channel.Spec
	proxy *proxy
	ready chan struct{} // closed when the channel is open

	mu sync.Mutex
	ch channel.Channel
}

func (c *chanUnit) id() string            { return "channel " + c.name }
func (c *chanUnit) deps() []*chanUnit     { return nil }
func (c *chanUnit) died() <-chan struct{} { return nil }

func (c *chanUnit) start(_ context.Context, a *Agent) error {
	ch, err := c.spec.Open(c.name, a.opts.Log.With("component", c.name))
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	c.mu.Lock()
	c.ch = ch
	c.mu.Unlock()
	c.proxy.set(ch)
	close(c.ready)
	return nil
}

func (c *chanUnit) stop(a *Agent) {
	if ch := c.channel(); ch != nil {
		if err := ch.Close(); err != nil {
			a.log.Error("close channel", "component", c.name, "err", err)
		}
	}
}

// channel returns the open channel, or nil.
func (c *chanUnit) channel() channel.Channel {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ch
}

func (c *chanUnit) isOpen() bool {
	select {
	case <-c.ready:
		return true
	default:
		return false
	}
}

// groupUnit is a sink group (or a lone sink with its implicit default
// processor): its sinks, started together, and one runner.
type groupUnit struct {
	name  string
	proc  sink.Processor
	sinks []sink.Sink
	chans []*chanUnit // each sink's channel, by index

	health *deliveryHealth // the runner's view of proc

	mu     sync.Mutex
	runner *sink.Runner
}

func newGroupUnit(name string, p sink.Processor, sinks []sink.Sink, sinkChan map[string]*chanUnit) *groupUnit {
	g := &groupUnit{name: name, proc: p, sinks: sinks, health: &deliveryHealth{Processor: p, clock: clock.Real{}}}
	for _, s := range sinks {
		g.chans = append(g.chans, sinkChan[s.Name()])
	}
	return g
}

func (g *groupUnit) id() string { return "sink group " + g.name }

func (g *groupUnit) deps() []*chanUnit { return g.chans }

func (g *groupUnit) start(ctx context.Context, a *Agent) error {
	for i, s := range g.sinks {
		if err := s.Start(ctx, g.chans[i].channel()); err != nil {
			for _, started := range g.sinks[:i] {
				_ = started.Stop()
			}
			return fmt.Errorf("start sink %s: %w", s.Name(), err)
		}
	}
	opts := a.opts.SinkRunner
	opts.Empty = g.empty
	g.health.clock = a.opts.Clock
	r := sink.NewRunner(g.name, g.health, opts, a.opts.Log.With("component", g.name))
	g.mu.Lock()
	g.runner = r
	g.mu.Unlock()
	r.Start(ctx)
	return nil
}

// empty reports whether every channel of the group is drained.
func (g *groupUnit) empty() bool {
	for _, c := range g.chans {
		if ch := c.channel(); ch != nil && ch.Stats().Size > 0 {
			return false
		}
	}
	return true
}

func (g *groupUnit) current() *sink.Runner {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.runner
}

func (g *groupUnit) died() <-chan struct{} {
	if r := g.current(); r != nil {
		return r.Done()
	}
	return nil
}

// drainPoll is how often a drain looks at the channels' sizes.
const drainPoll = 20 * time.Millisecond

// drain lets the runner deliver until the channels are empty or ctx ends.
// The runner notices an empty channel only when a take comes back empty,
// which a channel may delay (the memory channel by its keep-alive, unless
// quiesced: Agent.Stop quiesces the channels first) and which may have to
// happen twice; so the drain also watches the channels' sizes (which count
// takes not yet committed) and stops the runner as soon as they are all
// zero.
func (g *groupUnit) drain(ctx context.Context) error {
	r := g.current()
	if r == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- r.Drain(ctx) }()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			if g.empty() {
				r.Stop()
				if err := <-done; err != nil && !g.empty() {
					return err
				}
				return nil
			}
		}
	}
}

func (g *groupUnit) stop(a *Agent) {
	if r := g.current(); r != nil {
		r.Stop()
	}
	for _, s := range g.sinks {
		if err := s.Stop(); err != nil {
			a.log.Error("stop sink", "component", s.Name(), "err", err)
		}
	}
}

// sourceUnit is a source, its channel processor and, for pollable sources,
// its runner.
type sourceUnit struct {
	name  string
	src   source.Source
	proc  *source.ChannelProcessor
	chans []*chanUnit

	mu      sync.Mutex
	runner  *source.Runner
	runDone chan struct{}
}

func (s *sourceUnit) id() string        { return "source " + s.name }
func (s *sourceUnit) deps() []*chanUnit { return s.chans }

func (s *sourceUnit) start(ctx context.Context, a *Agent) error {
	if err := s.src.Start(ctx, s.proc); err != nil {
		_ = s.src.Stop()
		return fmt.Errorf("start: %w", err)
	}
	p, ok := s.src.(source.Pollable)
	if !ok {
		return nil
	}
	r := source.NewRunner(p, a.opts.Log.With("component", s.name))
	done := make(chan struct{})
	s.mu.Lock()
	s.runner, s.runDone = r, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	return nil
}

func (s *sourceUnit) died() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runDone == nil {
		return nil
	}
	return s.runDone
}

func (s *sourceUnit) stop(a *Agent) {
	s.mu.Lock()
	r, done := s.runner, s.runDone
	s.mu.Unlock()
	if r != nil {
		r.Stop()
		<-done
	}
	if err := s.src.Stop(); err != nil && !errors.Is(err, context.Canceled) {
		a.log.Error("stop source", slog.String("component", s.name), slog.Any("err", err))
	}
}
