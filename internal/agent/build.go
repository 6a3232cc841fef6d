package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/flumed/flumed/channel"
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
	if o.lookup == nil {
		o.lookup = realRegistries()
	}
}

// registries are the type lookups Build uses.
type registries struct {
	channel        func(string) (channel.Factory, bool)
	channelTypes   func() []string
	sink           func(string) (sink.Factory, bool)
	sinkTypes      func() []string
	processor      func(string) (sink.ProcessorFactory, bool)
	processorTypes func() []string
	source         func(string) (source.Factory, bool)
	sourceTypes    func() []string
}

func realRegistries() *registries {
	return &registries{
		channel: channel.Lookup, channelTypes: channel.Types,
		sink: sink.Lookup, sinkTypes: sink.Types,
		processor: sink.ProcessorLookup, processorTypes: sink.ProcessorTypes,
		source: source.Lookup, sourceTypes: source.Types,
	}
}

// flumeOnly are Flume's type aliases (FLUME.md §1.2) that flumed does not
// implement, so the message can say "not supported" rather than "unknown".
var flumeOnly = map[config.Kind][]string{
	config.Sources:  {"avro", "thrift", "exec", "netcat", "netcatudp", "seq", "spooldir", "taildir", "syslogtcp", "multiport_syslogtcp", "syslogudp", "http", "jms"},
	config.Channels: {"memory", "file", "jdbc", "spillablememory"},
	config.Sinks:    {"logger", "null", "avro", "thrift", "file_roll", "hdfs", "irc", "hbase", "asynchbase", "elasticsearch", "morphline_solr", "hive", "http"},
}

// unknownType records an unknown component type with a did-you-mean over the
// registered type names.
func unknownType(c *config.Context, key, what, typ string, kind config.Kind, known []string) {
	for _, f := range flumeOnly[kind] {
		if strings.EqualFold(f, typ) {
			c.Errorf(key, "%s type %s is not supported by flumed (supported: %s)", what, f, strings.Join(known, ", "))
			return
		}
	}
	msg := fmt.Sprintf("unknown %s type %q", what, typ)
	if best := config.Suggest(strings.ToLower(typ), known); best != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", best)
	} else {
		msg += fmt.Sprintf(" (known: %s)", strings.Join(known, ", "))
	}
	c.Errorf(key, "%s", msg)
}

// Check builds every component of a without starting anything and returns
// every problem found, or nil: what "flumed config check" runs.
func Check(a *config.Agent, opts Options) error {
	_, err := Build(a, opts)
	return err
}

// Build makes the components of a, unstarted, checking what the
// configuration tree could not: component types, every component's keys
// (unknown keys are errors), and batch sizes against the channels'
// transactionCapacity. It returns a *config.Error listing every problem of
// the agent (the tree's included) when anything is wrong. A component whose
// factory failed still has its unknown keys reported (see failed), and a sink
// group with a broken member still has its processor keys checked.
func Build(a *config.Agent, opts Options) (*Agent, error) {
	opts.defaults()
	ag := &Agent{name: a.Name, opts: opts, log: opts.Log.With("agent", a.Name)}
	reg := opts.lookup
	chans := map[string]*chanUnit{}
	// Every listed channel has a proxy, built or not, so a source's selector
	// and interceptors are checked even when one of its channels is broken.
	proxies := map[string]*proxy{}
	for _, c := range a.Channels {
		proxies[c.Name] = newProxy(c.Name)
	}

	for _, c := range a.Channels {
		if c.Type == "" {
			continue // reported by the tree
		}
		f, ok := reg.channel(c.Type)
		if !ok {
			unknownType(c.Context, "type", "channel", c.Type, config.Channels, reg.channelTypes())
			continue
		}
		before := len(a.Problems.Errors())
		spec, err := f(c.Name, c.Context)
		if err != nil || spec == nil {
			if failed(c.Context, err, before) {
				c.Context.Finish()
			}
			continue
		}
		c.Context.Finish()
		cu := &chanUnit{name: c.Name, spec: spec, proxy: proxies[c.Name], ready: make(chan struct{})}
		chans[c.Name] = cu
		ag.channels = append(ag.channels, cu)
	}

	sinks := map[string]sink.Sink{}
	sinkChan := map[string]*chanUnit{}
	for _, c := range a.Sinks {
		if c.Type == "" {
			continue
		}
		f, ok := reg.sink(c.Type)
		if !ok {
			unknownType(c.Context, "type", "sink", c.Type, config.Sinks, reg.sinkTypes())
			continue
		}
		before := len(a.Problems.Errors())
		s, err := f(c.Name, c.Context, opts.Log.With("component", c.Name))
		if err != nil || s == nil {
			if failed(c.Context, err, before) {
				c.Context.Finish()
			}
			continue
		}
		c.Context.Finish()
		if lw, ok := s.(interface{ SetOutput(io.Writer) }); ok {
			lw.SetOutput(opts.EventOut)
		}
		sinks[c.Name] = s
		if len(c.Channels) == 1 {
			if cu := chans[c.Channels[0]]; cu != nil {
				sinkChan[c.Name] = cu
				if bs, ok := s.(sink.BatchSizer); ok {
					checkBatch(c.Context, bs.BatchSize(), batchKey(s), cu)
				}
			}
		}
	}

	grouped := map[string]bool{}
	for _, g := range a.SinkGroups {
		for _, n := range g.Sinks {
			grouped[n] = true
		}
		if g.ProcessorType == "" || len(g.Sinks) == 0 {
			continue // an empty processor.type or no sinks: the tree reported it
		}
		f, ok := reg.processor(g.ProcessorType)
		if !ok {
			unknownType(g.Processor, "type", "sink processor", g.ProcessorType, config.SinkGroups, reg.processorTypes())
			continue
		}
		members, complete := groupSinks(g.Sinks, sinks, sinkChan)
		before := len(a.Problems.Errors())
		p, err := f(g.Name, g.Processor, members, opts.Log.With("component", g.Name))
		if err != nil || p == nil {
			if failed(g.Processor, err, before) {
				g.Processor.Finish()
			}
			continue
		}
		g.Processor.Finish()
		if !complete {
			// A member is broken (and reported): the processor was built over
			// a stand-in only to check the group's keys.
			continue
		}
		ag.groups = append(ag.groups, newGroupUnit(g.Name, p, members, sinkChan))
	}
	// Every sink outside a group gets its own default processor and runner,
	// as in Flume.
	for _, c := range a.Sinks {
		s, ok := sinks[c.Name]
		if !ok || grouped[c.Name] || sinkChan[c.Name] == nil {
			continue
		}
		f, ok := reg.processor("default")
		if !ok {
			return nil, fmt.Errorf("no default sink processor registered")
		}
		before := len(a.Problems.Errors())
		p, err := f(c.Name, config.NewContext(c.Context.Prefix()+"processor.", nil, a.Problems), []sink.Sink{s}, opts.Log.With("component", c.Name))
		if err != nil || p == nil {
			failed(c.Context, err, before) // the sink's keys were finished above
			continue
		}
		ag.groups = append(ag.groups, newGroupUnit(c.Name, p, []sink.Sink{s}, sinkChan))
	}

	for _, c := range a.Sources {
		if c.Type == "" {
			continue
		}
		f, ok := reg.source(c.Type)
		if !ok {
			unknownType(c.Context, "type", "source", c.Type, config.Sources, reg.sourceTypes())
			continue
		}
		log := opts.Log.With("component", c.Name)
		before := len(a.Problems.Errors())
		src, err := f(c.Name, c.Context, log)
		built := err == nil && src != nil
		// The channel processor reads the source's selector and interceptor
		// keys, so it is configured even for a source that failed: its
		// problems and the source's unknown keys are reported together.
		readAll := built || failed(c.Context, err, before)
		var targets []channel.Channel
		var units []*chanUnit
		for _, n := range c.Channels {
			if p := proxies[n]; p != nil {
				targets = append(targets, p)
			}
			if cu := chans[n]; cu != nil {
				units = append(units, cu)
				if bs, ok := src.(source.BatchSizer); ok && built {
					checkBatch(c.Context, bs.BatchSize(), batchKey(src), cu)
				}
			}
		}
		if len(targets) == 0 {
			continue // no channels: the tree reported it
		}
		before = len(a.Problems.Errors())
		proc, err := source.NewChannelProcessor(c.Context, targets, log)
		if err != nil || proc == nil {
			readAll = failed(c.Context, err, before) && readAll
		}
		if readAll {
			c.Context.Finish()
		}
		if !built || proc == nil || err != nil || len(units) != len(c.Channels) {
			continue // reported: the source, its processor or a channel failed
		}
		ag.sources = append(ag.sources, &sourceUnit{name: c.Name, src: src, proc: proc, chans: units})
	}

	if err := a.Problems.Err(); err != nil {
		return nil, err
	}
	ag.warnings = a.Problems.Warnings()
	return ag, nil
}

// failed handles a factory (or the channel processor) that returned err or
// nothing, where before is the number of errors recorded before it ran. It
// makes sure the failure stops the agent, with the factory's reason when the
// factory recorded no problem itself, and reports whether the component's
// context may be finished: whether its unread keys are truly unknown.
//
// The rule: a factory that recorded a problem in c and then failed followed
// the factories' contract (record problems, keep reading every known key,
// fail at the end), so Finish runs and a misspelt key is reported with the
// problem that made the factory fail ("every problem at once"). A factory
// that failed without recording anything stopped for another reason (an I/O
// error, a bug) and may have stopped before reading its keys: finishing its
// context could call valid keys unknown, so only its error is reported.
func failed(c *config.Context, err error, before int) (finish bool) {
	if len(c.Problems().Errors()) > before {
		return true
	}
	if err == nil {
		err = fmt.Errorf("factory returned nothing")
	}
	c.Errorf("type", "%v", err)
	return false
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
