package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/clock"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/sink"
	"github.com/flumed/flumed/source"
)

// Options tune an agent. Zero values take the defaults.
type Options struct {
	// Log receives every log line; components get it with a component=<name>
	// attribute. Nil discards.
	Log *slog.Logger
	// DrainTimeout bounds how long sinks keep draining the channels after the
	// sources stopped (default 5 s).
	DrainTimeout time.Duration
	// RestartMin and RestartMax bound the supervisor's backoff between two
	// attempts to start a failed component: RestartMin, doubling, up to
	// RestartMax (defaults 3 s, as Flume's supervisor, and 30 s).
	RestartMin, RestartMax time.Duration
	// EventOut is where logger sinks print their "Event: { ... }" lines
	// (default os.Stdout; the log goes to stderr).
	EventOut io.Writer
	// SinkRunner tunes the sink runners' backoffs (defaults: Flume's).
	SinkRunner sink.RunnerOptions
	// FailingAfter is how long every sink of a group may fail before Ready
	// says no (default DefaultFailingAfter).
	FailingAfter time.Duration
	// Clock times FailingAfter (default the real one; tests use a fake).
	Clock clock.Clock

	lookup *registries // nil: the real registries; tests add fakes
}

func (o *Options) defaults() {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 5 * time.Second
	}
	if o.RestartMin <= 0 {
		o.RestartMin = 3 * time.Second
	}
	if o.RestartMax < o.RestartMin {
		o.RestartMax = max(30*time.Second, o.RestartMin)
	}
	if o.EventOut == nil {
		o.EventOut = os.Stdout
	}
	if o.FailingAfter <= 0 {
		o.FailingAfter = DefaultFailingAfter
	}
	o.Clock = clock.Or(o.Clock)
	if o.lookup == nil {
		o.lookup = realRegistries()
	}
}

// registries are the component types Build makes components of.
type registries struct {
	channels   *config.Registry[channel.Factory]
	sinks      *config.Registry[sink.Factory]
	processors *config.Registry[sink.ProcessorFactory]
	sources    *config.Registry[source.Factory]
}

func realRegistries() *registries {
	return &registries{
		channels: channel.Registry(), sinks: sink.Registry(), processors: sink.ProcessorRegistry(),
		sources: source.Registry(),
	}
}

// Check builds every component of a without starting anything and returns
// every problem found, or nil: what "flumed config check" runs.
func Check(a *config.Agent, opts Options) error {
	_, err := Build(a, opts)
	return err
}

// Build makes the components of a, unstarted, checking what the
// configuration tree could not: component types, every component's keys
// against its type's spec (unknown keys are errors), and batch sizes against
// the channels' transactionCapacity. It returns a *config.Error listing
// every problem of the agent (the tree's included) when anything is wrong.
// It goes kind by kind in start order, each step making its components
// through construct; a component that fails does not stop the others from
// being checked, and a sink group with a broken member still has its
// processor keys checked.
func Build(a *config.Agent, opts Options) (*Agent, error) {
	opts.defaults()
	b := &builder{
		a: a, opts: opts, reg: opts.lookup,
		ag:       &Agent{name: a.Name, opts: opts, log: opts.Log.With("agent", a.Name)},
		chans:    map[string]*chanUnit{},
		proxies:  map[string]*proxy{},
		sinks:    map[string]sink.Sink{},
		sinkChan: map[string]*chanUnit{},
		grouped:  map[string]bool{},
	}
	b.buildChannels()
	b.buildSinks()
	b.buildGroups()
	b.buildLoneSinks()
	b.buildSources()
	if err := a.Problems.Err(); err != nil {
		return nil, err
	}
	b.ag.warnings = a.Problems.Warnings()
	b.ag.conf = a // what a reload compares with
	return b.ag, nil
}

// builder is what Build has made so far, shared by its steps.
type builder struct {
	a    *config.Agent
	opts Options
	reg  *registries
	ag   *Agent

	chans    map[string]*chanUnit // built channels
	proxies  map[string]*proxy    // every listed channel's, built or not
	sinks    map[string]sink.Sink // built sinks
	sinkChan map[string]*chanUnit // a built sink's built channel
	grouped  map[string]bool      // sinks named by a sink group
}

// construct makes one component of the type typ registered in reg: it
// finds the type (an unknown or unsupported one is reported on c), checks
// c against the type's spec (unknown keys, bad values and ignored keys are
// reported whatever happens next) and calls newFn with the factory. A
// factory that fails, or returns nothing, with no problem recorded for the
// component (by the check or by itself) has its error reported at c's
// "type", so the agent never starts short of a component silently. ok is
// false when no component was made.
func construct[F, T any](c *config.Context, reg *config.Registry[F], typ string, newFn func(F) (T, error)) (v T, ok bool) {
	if typ == "" {
		return v, false // reported by the tree
	}
	before := len(c.Problems().Errors()) // Check's problems may be why the factory fails
	e, ok := reg.Resolve(c, typ)
	if !ok {
		return v, false
	}
	v, err := newFn(e.New)
	if err == nil && any(v) != nil {
		return v, true
	}
	if len(c.Problems().Errors()) == before {
		if err == nil {
			err = fmt.Errorf("factory returned nothing")
		}
		c.Errorf("type", "%v", err)
	}
	return v, false
}

// buildChannels makes every channel's spec. Every listed channel has a
// proxy, built or not, so a source's selector and interceptors are checked
// even when one of its channels is broken.
func (b *builder) buildChannels() {
	for _, c := range b.a.Channels {
		b.proxies[c.Name] = newProxy(c.Name)
	}
	for _, c := range b.a.Channels {
		spec, ok := construct(c.Context, b.reg.channels, c.Type, func(f channel.Factory) (channel.Spec, error) {
			return f(c.Name, c.Context)
		})
		if !ok {
			continue
		}
		cu := &chanUnit{name: c.Name, spec: spec, proxy: b.proxies[c.Name], ready: make(chan struct{})}
		b.chans[c.Name] = cu
		b.ag.channels = append(b.ag.channels, cu)
	}
}

// buildSinks makes every sink and checks its batch size against its
// channel's transactionCapacity.
func (b *builder) buildSinks() {
	for _, c := range b.a.Sinks {
		s, ok := construct(c.Context, b.reg.sinks, c.Type, func(f sink.Factory) (sink.Sink, error) {
			return f(c.Name, c.Context, b.opts.Log.With("component", c.Name))
		})
		if !ok {
			continue
		}
		if lw, ok := s.(interface{ SetOutput(io.Writer) }); ok {
			lw.SetOutput(b.opts.EventOut)
		}
		b.sinks[c.Name] = s
		if len(c.Channels) != 1 || b.chans[c.Channels[0]] == nil {
			continue // reported by the tree, or the channel failed
		}
		cu := b.chans[c.Channels[0]]
		b.sinkChan[c.Name] = cu
		if bs, ok := s.(sink.BatchSizer); ok {
			checkBatch(c.Context, bs.BatchSize(), batchKey(s), cu)
		}
	}
}

// buildGroups makes every sink group's processor. A group with a broken
// member is built over a stand-in (absentSink) only to check its keys.
func (b *builder) buildGroups() {
	for _, g := range b.a.SinkGroups {
		for _, n := range g.Sinks {
			b.grouped[n] = true
		}
		if g.ProcessorType == "" || len(g.Sinks) == 0 {
			continue // an empty processor.type or no sinks: the tree reported it
		}
		members, complete := groupSinks(g.Sinks, b.sinks, b.sinkChan)
		sink.BindSinks(g.Processor, members)
		p, ok := construct(g.Processor, b.reg.processors, g.ProcessorType, func(f sink.ProcessorFactory) (sink.Processor, error) {
			return f(g.Name, g.Processor, members, b.opts.Log.With("component", g.Name))
		})
		if ok && complete {
			b.ag.groups = append(b.ag.groups, newGroupUnit(g.Name, p, members, b.sinkChan))
		}
	}
}

// buildLoneSinks gives every built sink outside a group its own default
// processor and runner, as in Flume.
func (b *builder) buildLoneSinks() {
	for _, c := range b.a.Sinks {
		s, ok := b.sinks[c.Name]
		if !ok || b.grouped[c.Name] || b.sinkChan[c.Name] == nil {
			continue
		}
		pc := config.NewContext(c.Context.Prefix()+"processor.", nil, b.a.Problems)
		p, ok := construct(pc, b.reg.processors, "default", func(f sink.ProcessorFactory) (sink.Processor, error) {
			return f(c.Name, pc, []sink.Sink{s}, b.opts.Log.With("component", c.Name))
		})
		if ok {
			b.ag.groups = append(b.ag.groups, newGroupUnit(c.Name, p, []sink.Sink{s}, b.sinkChan))
		}
	}
}

// buildSources makes every source and its channel processor (interceptors
// and selector, whose keys the source's spec declares as nested). The
// processor is made even for a source that failed, so its problems are
// reported with the source's.
func (b *builder) buildSources() {
	for _, c := range b.a.Sources {
		src, built := construct(c.Context, b.reg.sources, c.Type, func(f source.Factory) (source.Source, error) {
			return f(c.Name, c.Context, b.opts.Log.With("component", c.Name))
		})
		if c.Type == "" || !c.Context.Checked() {
			continue // no type, or an unknown one: reported
		}
		targets, units := b.sourceChannels(c, src, built)
		if len(targets) == 0 {
			continue // no channels: the tree reported it
		}
		proc, err := source.NewChannelProcessor(c.Context, targets, b.opts.Log.With("component", c.Name))
		if err != nil || proc == nil {
			continue // its problems are recorded in c
		}
		if built && len(units) == len(c.Channels) {
			b.ag.sources = append(b.ag.sources, &sourceUnit{name: c.Name, src: src, proc: proc, chans: units})
		}
	}
}

// sourceChannels are the proxies a source puts into and the built channels
// among them, whose transactionCapacity its batch size is checked against.
func (b *builder) sourceChannels(c *config.Component, src source.Source, built bool) ([]channel.Channel, []*chanUnit) {
	var targets []channel.Channel
	var units []*chanUnit
	for _, n := range c.Channels {
		if p := b.proxies[n]; p != nil {
			targets = append(targets, p)
		}
		if cu := b.chans[n]; cu != nil {
			units = append(units, cu)
			if bs, ok := src.(source.BatchSizer); ok && built {
				checkBatch(c.Context, bs.BatchSize(), batchKey(src), cu)
			}
		}
	}
	return targets, units
}

// batchKey is the key a component's batch size is set with: what it says
// through BatchSizeKey, else Flume's usual "batchSize".
func batchKey(component any) string {
	// sink.BatchSizeKeyer and source.BatchSizeKeyer are the same method.
	if k, ok := component.(interface{ BatchSizeKey() string }); ok {
		return k.BatchSizeKey()
	}
	return "batchSize"
}

// checkBatch reports a batch size above the channel's transactionCapacity
// (Flume's FLUME-3246 check): such a batch could never be committed. key is
// the component's batch size key, named in the message whether it is set or
// the default applies.
func checkBatch(c *config.Context, size int, key string, cu *chanUnit) {
	limit := cu.spec.TransactionCapacity()
	if size <= limit || limit <= 0 {
		return
	}
	what := fmt.Sprintf("batch size %d", size)
	if c.Pos(key).Line == 0 {
		what = fmt.Sprintf("the default batch size %d", size)
	}
	c.Errorf(key, "%s is above channel %s's transactionCapacity %d", what, cu.name, limit)
}

// groupSinks returns the sinks named, in order, and whether all of them were
// built with a channel. A member that was not stands in as an absentSink, so
// the group's processor keys (priority.<sink>) can still be checked.
func groupSinks(names []string, sinks map[string]sink.Sink, sinkChan map[string]*chanUnit) ([]sink.Sink, bool) {
	out := make([]sink.Sink, 0, len(names))
	complete := true
	for _, n := range names {
		s, ok := sinks[n]
		if !ok || sinkChan[n] == nil {
			s, complete = absentSink{name: n}, false
		}
		out = append(out, s)
	}
	return out, complete && len(out) > 0
}

// absentSink stands for a group member that could not be built (its problem
// is reported). A processor over it is only configured, never run.
type absentSink struct{ name string }

func (s absentSink) Name() string { return s.name }

func (s absentSink) Start(context.Context, channel.Channel) error {
	return fmt.Errorf("sink %s was not built", s.name)
}

func (s absentSink) Process(context.Context) (sink.Status, error) {
	return sink.Backoff, fmt.Errorf("sink %s was not built", s.name)
}

func (absentSink) Stop() error { return nil }
