package source

import (
	"fmt"
	"log/slog"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/source/interceptor"
	"github.com/flumed/flumed/source/internal/logthrottle"
	"github.com/flumed/flumed/source/sourceapi"
)

// ProcessorKeys are sourceapi.ProcessorKeys: the channel processor's keys,
// which every source's spec includes.
var ProcessorKeys = sourceapi.ProcessorKeys

// processorOnly is the spec a context is checked against when the channel
// processor is built for a context no source spec checked (tests, tools).
var processorOnly = &config.Spec{Type: "channel processor", Keys: []config.Decl{ProcessorKeys}}

// ChannelProcessor is where a source puts its events (Flume's
// ChannelProcessor, FLUME.md §2.14): the source's interceptors run first, then
// its selector groups the events by channel, then each required channel gets
// one transaction (put all, commit), then each optional channel gets one whose
// failure is only logged.
//
// Commits across required channels are not atomic, as in Flume: when the
// second required channel refuses, the first one keeps what it committed, and
// the source's retry duplicates there.
type ChannelProcessor struct {
	channels []channel.Channel
	names    []string
	chain    []interceptor.Interceptor
	sel      selector
	// static is set when every event goes to the same channels (the
	// replicating selector): the events are then put without grouping.
	static bool
	log    *slog.Logger
	warn   *logthrottle.Log
}

var (
	_ BatchPutter                 = (*ChannelProcessor)(nil)
	_ sourceapi.OriginBatchPutter = (*ChannelProcessor)(nil)
)

// NewChannelProcessor builds the processor of one source.
//
// c is the source's context ("a1.sources.r1."), checked against a spec that
// includes ProcessorKeys (when it was not checked at all, it is checked
// against those keys alone); the processor reads from it "selector.type"
// (replicating by default, multiplexing or load_balancing) and checks the
// selector's keys under "selector." against that type's spec, and
// "interceptors" with each listed interceptor's keys under
// "interceptors.<name>.", checked likewise.
//
// channels are the source's channels in the order of its "channels" key; the
// selector refers to them by Name(). Every problem found is recorded in c. The
// error is non-nil when the processor could not be built, and c's problems
// then say why; the agent reports those and does not start.
func NewChannelProcessor(c *config.Context, channels []channel.Channel, log *slog.Logger) (*ChannelProcessor, error) {
	p := &ChannelProcessor{
		channels: channels,
		names:    make([]string, len(channels)),
		log:      log,
		warn:     logthrottle.New(log, logthrottle.DefaultEvery),
	}
	for i, ch := range channels {
		p.names[i] = ch.Name()
	}
	ok := true
	if len(channels) == 0 {
		c.Errorf("channels", "a source needs at least one channel")
		ok = false
	}

	if !c.Checked() {
		c.Check(processorOnly)
	}
	sc := c.Sub("selector.")
	typ, set := sc.Take("type")
	if !set {
		typ = replicatingType.Type
	}
	if e, found := selectors.Resolve(sc, typ); found {
		sel, good := e.New(sc, p.names)
		p.sel = sel
		ok = ok && good
		_, p.static = sel.(*replicatingSelector)
	} else {
		ok = false
	}

	chain, good := interceptor.Chain(c, sourceapi.Interceptors.Get(c), log)
	p.chain = chain
	if !good || !ok {
		return nil, fmt.Errorf("configure channel processor of %s: %w", c.Prefix(), errConfig)
	}
	return p, nil
}

// PutBatch puts events into the source's channels. It returns nil when every
// required channel committed them (or an interceptor dropped them all). An
// error names the first required channel that refused and wraps its error
// (channel.ErrFull, channel.ErrTxnFull, channel.ErrClosed, ...); the events
// must then be treated as not accepted. PutBatch never modifies events: the
// interceptors work on copies. It is safe for concurrent use.
func (p *ChannelProcessor) PutBatch(events []channel.Event) error {
	if len(p.chain) > 0 {
		events = interceptor.Apply(p.chain, events)
	}
	if len(events) == 0 {
		return nil
	}
	if p.static {
		for _, i := range p.sel.required(nil) {
			if err := p.put(i, events); err != nil {
				return err
			}
		}
		for _, i := range p.sel.optional(nil) {
			p.putOptional(i, events)
		}
		return nil
	}

	req := make([][]channel.Event, len(p.channels))
	opt := make([][]channel.Event, len(p.channels))
	unrouted := 0
	for k := range events {
		ev := &events[k]
		r, o := p.sel.required(ev), p.sel.optional(ev)
		for _, i := range r {
			req[i] = append(req[i], *ev)
		}
		for _, i := range o {
			opt[i] = append(opt[i], *ev)
		}
		if len(r) == 0 && len(o) == 0 {
			unrouted++
		}
	}
	if unrouted > 0 {
		p.warn.Warn("unrouted", "events match no channel of the selector and are dropped",
			slog.Int("events", unrouted))
	}
	for i, batch := range req {
		if len(batch) > 0 {
			if err := p.put(i, batch); err != nil {
				return err
			}
		}
	}
	for i, batch := range opt {
		if len(batch) > 0 {
			p.putOptional(i, batch)
		}
	}
	return nil
}

// PutBatchFrom implements sourceapi.OriginBatchPutter: PutBatch, with each
// event's upstream origin and number following it through the
// interceptors and the selector, so that each channel (each of a
// replicating selector's, each of a multiplexing selector's for the events
// routed to it) leaves out what it committed before, by its own state.
// Commits across required channels are still not atomic, but a resend after
// the second refused no longer duplicates in the first.
func (p *ChannelProcessor) PutBatchFrom(origin channel.OriginID, seqs []uint64, events []channel.Event) error {
	if len(seqs) != len(events) {
		return p.PutBatch(events)
	}
	var plain []channel.Event // interceptors' extra events: no number of their own
	if len(p.chain) > 0 {
		events, seqs, plain = p.interceptEach(seqs, events)
	}
	if len(events) == 0 && len(plain) == 0 {
		return nil
	}
	if p.static {
		for _, i := range p.sel.required(nil) {
			if err := p.putID(i, origin, seqs, events, plain); err != nil {
				return err
			}
		}
		for _, i := range p.sel.optional(nil) {
			if err := p.putID(i, origin, seqs, events, plain); err != nil {
				p.warn.Warn("optional:"+p.names[i], "optional channel refused events; they are not delivered there",
					slog.String("channel", p.names[i]), slog.Any("err", err))
			}
		}
		return nil
	}
	type group struct {
		seqs   []uint64
		events []channel.Event
		plain  []channel.Event
	}
	req := make([]group, len(p.channels))
	opt := make([]group, len(p.channels))
	unrouted := 0
	route := func(ev *channel.Event, add func(g *group)) {
		r, o := p.sel.required(ev), p.sel.optional(ev)
		for _, i := range r {
			add(&req[i])
		}
		for _, i := range o {
			add(&opt[i])
		}
		if len(r) == 0 && len(o) == 0 {
			unrouted++
		}
	}
	for k := range events {
		route(&events[k], func(g *group) { g.seqs = append(g.seqs, seqs[k]); g.events = append(g.events, events[k]) })
	}
	for k := range plain {
		route(&plain[k], func(g *group) { g.plain = append(g.plain, plain[k]) })
	}
	if unrouted > 0 {
		p.warn.Warn("unrouted", "events match no channel of the selector and are dropped",
			slog.Int("events", unrouted))
	}
	for i, g := range req {
		if len(g.events)+len(g.plain) > 0 {
			if err := p.putID(i, origin, g.seqs, g.events, g.plain); err != nil {
				return err
			}
		}
	}
	for i, g := range opt {
		if len(g.events)+len(g.plain) > 0 {
			if err := p.putID(i, origin, g.seqs, g.events, g.plain); err != nil {
				p.warn.Warn("optional:"+p.names[i], "optional channel refused events; they are not delivered there",
					slog.String("channel", p.names[i]), slog.Any("err", err))
			}
		}
	}
	return nil
}

// interceptEach runs the interceptors on each event alone, so each result
// keeps its event's number: an event an interceptor drops has none to keep,
// and the extra events of one that makes several are put without a number
// (they are new here; a resend makes them again, as it would without dedup).
func (p *ChannelProcessor) interceptEach(seqs []uint64, events []channel.Event) ([]channel.Event, []uint64, []channel.Event) {
	outEv := make([]channel.Event, 0, len(events))
	outSeq := make([]uint64, 0, len(seqs))
	var plain []channel.Event
	for k := range events {
		got := interceptor.Apply(p.chain, events[k:k+1])
		if len(got) == 0 {
			continue
		}
		outEv = append(outEv, got[0])
		outSeq = append(outSeq, seqs[k])
		plain = append(plain, got[1:]...)
	}
	return outEv, outSeq, plain
}

// putID runs one put transaction on channel i: events numbered seqs of
// origin through channel.PutFrom, plain ones as they are.
func (p *ChannelProcessor) putID(i int, origin channel.OriginID, seqs []uint64, events, plain []channel.Event) error {
	tx := p.channels[i].Begin()
	_, err := channel.PutFrom(tx, origin, seqs, events)
	if err == nil && len(plain) > 0 {
		err = tx.Put(plain...)
	}
	if err != nil {
		if rerr := tx.Rollback(); rerr != nil {
			p.log.Debug("rollback after failed put", slog.String("channel", p.names[i]), slog.Any("err", rerr))
		}
		return fmt.Errorf("put %d events on channel %s: %w", len(events)+len(plain), p.names[i], err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit %d events on channel %s: %w", len(events)+len(plain), p.names[i], err)
	}
	return nil
}

// put runs one put transaction on channel i.
func (p *ChannelProcessor) put(i int, events []channel.Event) error {
	tx := p.channels[i].Begin()
	if err := tx.Put(events...); err != nil {
		if rerr := tx.Rollback(); rerr != nil {
			p.log.Debug("rollback after failed put", slog.String("channel", p.names[i]), slog.Any("err", rerr))
		}
		return fmt.Errorf("put %d events on channel %s: %w", len(events), p.names[i], err)
	}
	if err := tx.Commit(); err != nil {
		// A failed Commit leaves the transaction rolled back.
		return fmt.Errorf("commit %d events on channel %s: %w", len(events), p.names[i], err)
	}
	return nil
}

func (p *ChannelProcessor) putOptional(i int, events []channel.Event) {
	if err := p.put(i, events); err != nil {
		p.warn.Warn("optional:"+p.names[i], "optional channel refused events; they are not delivered there",
			slog.String("channel", p.names[i]), slog.Any("err", err))
	}
}
