package sink

// The delivery engine: the one take–deliver–commit loop every sink runs
// (FLUME.md §3.1), with batches in flight and commits in groups.
//
// A sink gives the engine a Delivery, which hands one batch to the next hop
// and returns a Pending: the outcome to come (an avro call whose reply is on
// its way), or one already known (a synchronous sink: DeliverFunc). The
// sink's Process calls Engine.Process once per runner turn; its Stop calls
// Engine.Settle. The engine keeps:
//
//   - Takes. Up to BatchSize events per take transaction. None: the empty
//     transaction commits, BatchEmpty++, and Process returns Backoff.
//     BatchEmpty/Underflow/Complete count every take, EventDrainAttempt
//     every event handed to Send, EventDrainSuccess every event committed.
//   - Order. A transaction commits only after its batch was accepted, and
//     transactions commit in the order they were taken.
//   - Channel failures back off. A take or commit the channel fails counts
//     ChannelReadFail, is logged, and makes Process return Backoff with a
//     nil error (a failed commit: this Process when it ends a drain and the
//     runner made the commit itself, otherwise the next one): the channel is
//     at fault, not the next hop, so it must not drive failover. A failed
//     Commit leaves its transaction rolled back, so the hop has the batch
//     and the channel still has it: it is sent again.
//   - Delivery failures fail over. A Send or a Pending that fails (an
//     error, a refusal, a timeout, a cancelled context, a panic) rolls back
//     every batch not yet committed, latest first, so each goes back to the
//     head ahead of the ones taken after it and the channel keeps its order;
//     batches accepted before it commit first. EventWriteFail++, and the
//     error is returned: that is what makes a failover processor move on.
//   - Depth. At most Depth batches are sent and not yet answered; Process
//     returns once fewer are, so a Delivery may keep several calls on one
//     connection. A batch smaller than BatchSize (the channel ran dry) waits
//     for every answer before Process returns: nothing is left unanswered
//     while a channel waits for puts or the runner sleeps.
//   - Group commits. On a channel whose take commits each cost a sync
//     (channel.SyncsTakeCommits: a file channel with fsyncPerTransaction),
//     answered batches go to a committer goroutine, which commits
//     everything handed to it since its last sync as one group
//     (channel.CommitAll), while the runner takes and sends the next
//     batches. On any other channel the runner commits each batch itself.
//   - The window. At most Window(Depth) = 3 × Depth batches are taken and
//     not yet committed at any time, at most Depth of them not yet
//     answered, the rest (up to 2 × Depth: a group in its sync and the next
//     group forming) waiting for their commit or in it. The runner
//     takes no new batch while the window is full, so a slow sync stops the
//     sink instead of letting delivered batches pile up behind it, and an
//     answered batch waits for at most the group commit under way and its
//     own. This is also the bound on duplicates: a crash
//     delivers again at most Window(Depth) batches, a failed hop at most
//     Depth (README, "Delivery and duplicates").
//   - Backoff only when settled. Process returns Backoff (an empty channel,
//     a channel or delivery failure) only once every batch is answered and
//     committed or rolled back. Settle does the same for the batches still
//     held, waiting at most as long as its context allows for answers.
//
// An Engine belongs to its sink's runner goroutine: Process and Settle are
// never called concurrently. The runner holds every open transaction until
// it hands it to the committer, which alone uses it from then on; channels
// allow that (a Txn belongs to the goroutine that uses it, not to the one
// that began it). The events given to Send are read-only (channel.Txn.Take)
// and must not be kept after its Pending is done.

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/counter"
)

// Delivery hands batches to a sink's next hop.
type Delivery interface {
	// Send hands events (never empty) to the next hop and returns its
	// outcome to come. An error means the batch was not (wholly) handed
	// over; the engine treats it as the Pending's failure. Send is called
	// from the runner goroutine only, with up to the engine's Depth
	// batches sent and not yet answered.
	Send(ctx context.Context, events []channel.Event) (Pending, error)
}

// Pending is the outcome of one Send: *avrorpc.Pending is one, and
// Delivered makes one already known.
type Pending interface {
	// Done is closed once the outcome is known.
	Done() <-chan struct{}
	// Wait returns the outcome, waiting for it until ctx ends: nil when
	// the next hop accepted every event of the batch.
	Wait(ctx context.Context) error
}

// OriginDelivery is the optional power of a Delivery that can name each
// event to the next hop (the avro sink, in the call metadata), so that the
// next hop recognises a resend. The engine uses it when its channel is a
// channel.Originator with an identity and the take transaction a
// channel.Sequenced (the file channel): seqs[i] is events[i]'s number under
// origin. Otherwise it calls Send. Same rules as Send.
type OriginDelivery interface {
	SendFrom(ctx context.Context, origin channel.OriginID, seqs []uint64, events []channel.Event) (Pending, error)
}

// DeliverFunc is a synchronous Delivery: it returns nil only when the next
// hop has accepted every event.
type DeliverFunc func(ctx context.Context, events []channel.Event) error

// Send implements Delivery with an outcome known at once.
func (f DeliverFunc) Send(ctx context.Context, events []channel.Event) (Pending, error) {
	if err := f(ctx, events); err != nil {
		return nil, err
	}
	return Delivered(nil), nil
}

// Delivered returns a Pending whose outcome is err, known at once.
func Delivered(err error) Pending { return delivered{err} }

type delivered struct{ err error }

var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (d delivered) Done() <-chan struct{}      { return closedDone }
func (d delivered) Wait(context.Context) error { return d.err }

// Window is how many batches an engine of depth depth holds taken and not
// yet committed at most: 3 × depth, so that while depth batches are in
// flight, a group of answered ones can be in its sync and the next group
// can form behind it. With 2 × depth the runner waited on the sync often
// enough to cost the avro sink at depth 4 about 7% of its events/s in
// BenchmarkPipeline; 3 × depth costs about 3% against an unbounded
// committer. It is the most a sink delivers twice after a crash, in
// batches (README, "Delivery and duplicates").
func Window(depth int) int { return 3 * max(depth, 1) }

// EngineOptions configure an Engine.
type EngineOptions struct {
	Sink      string          // sink name, for log lines
	Channel   channel.Channel // the sink's channel
	BatchSize int             // events per take transaction, > 0
	// Depth is how many batches may be sent and not yet answered, at least
	// 1: the avro sink's pipeline-depth; DefaultPipelineDepth for a
	// synchronous sink, whose batches are answered at once, so that it
	// commits in groups of up to Depth while it delivers as many more.
	Depth   int
	Counter *counter.Sink // optional (logger and null have none)
	Log     *slog.Logger  // optional
}

// Engine runs a sink's takes, deliveries and commits (see the top of this
// file for what it keeps).
type Engine struct {
	o EngineOptions
	d Delivery

	flight    []*batch   // sent and not yet handed to commit, oldest first
	committer *committer // commits in groups; nil: the runner commits (channel.SyncsTakeCommits false)

	// commitFailed is set when a take commit failed, by the committer or
	// the runner, and taken by the Process that backs off for it.
	commitFailed atomic.Bool
}

// batch is one take transaction the engine holds, sent and not committed.
type batch struct {
	txn  channel.Txn
	n    int
	call Pending // nil: it never reached the next hop
}

// NewEngine returns an engine delivering through d. It asks the channel
// once whether its take commits sync (channel.SyncsTakeCommits).
func NewEngine(o EngineOptions, d Delivery) *Engine {
	o.BatchSize = max(o.BatchSize, 1)
	o.Depth = max(o.Depth, 1)
	o.Log = orDiscard(o.Log)
	e := &Engine{o: o, d: d}
	if channel.SyncsTakeCommits(o.Channel) {
		e.committer = newCommitter(e.commitNow)
	}
	return e
}

// inFlight is how many batches are sent and not yet handed to commit.
func (e *Engine) inFlight() int { return len(e.flight) }

// Process takes one batch and sends it, settling the batches before it as
// their answers come (see the top of this file).
func (e *Engine) Process(ctx context.Context) (st Status, err error) {
	// A panic is a bug, but it must not leave events stranded in open
	// transactions: roll them back and let the panic go on to the runner.
	defer func() {
		if p := recover(); p != nil {
			e.rollbackAll()
			panic(p)
		}
	}()
	if e.commitFailed.Swap(false) {
		// The channel is at fault, not the next hop: back off as a sink
		// whose commit failed does, rather than send the batch again at once.
		return Backoff, e.Settle(ctx)
	}
	if err := e.settle(ctx, 0); err != nil {
		return Backoff, err
	}
	if e.committer != nil {
		e.committer.waitBelow(Window(e.o.Depth) - len(e.flight))
	}
	txn := e.o.Channel.Begin()
	events, err := txn.Take(e.o.BatchSize)
	if err != nil {
		e.rollback(txn)
		e.channelFail("take", err)
		return Backoff, e.Settle(ctx)
	}
	n := len(events)
	if e.o.Counter != nil {
		e.o.Counter.Batch(n, e.o.BatchSize)
	}
	if n == 0 {
		if err := txn.Commit(); err != nil {
			e.channelFail("commit empty take", err)
		}
		return Backoff, e.Settle(ctx)
	}
	if e.o.Counter != nil {
		e.o.Counter.EventDrainAttempt.Add(int64(n))
	}
	b := &batch{txn: txn, n: n}
	e.flight = append(e.flight, b)
	if b.call, err = e.send(ctx, txn, events); err != nil {
		return Backoff, e.failed(err)
	}
	if n < e.o.BatchSize {
		// The channel ran dry: settle every answer before the runner comes
		// back to a channel that may wait for puts.
		if err := e.settle(ctx, len(e.flight)); err != nil {
			return Backoff, err
		}
		if e.committer == nil && e.commitFailed.Swap(false) {
			return Backoff, nil // the runner's own commit failed, as Flume's would
		}
		return Ready, nil
	}
	if err := e.settle(ctx, len(e.flight)-e.o.Depth+1); err != nil {
		return Backoff, err
	}
	return Ready, nil
}

// send hands a batch to the Delivery, naming its events when it and the
// channel can (OriginDelivery).
func (e *Engine) send(ctx context.Context, txn channel.Txn, events []channel.Event) (Pending, error) {
	if od, ok := e.d.(OriginDelivery); ok {
		if o, ok := e.o.Channel.(channel.Originator); ok {
			if s, ok := txn.(channel.Sequenced); ok {
				if origin, seqs := o.Origin(), s.Seqs(); origin != (channel.OriginID{}) && len(seqs) == len(events) {
					return od.SendFrom(ctx, origin, seqs, events)
				}
			}
		}
	}
	return e.d.Send(ctx, events)
}

// Settle settles everything the engine holds: it waits for the answers of
// the batches in flight (until ctx ends), commits those accepted and rolls
// back the rest on a failure, which it returns, and waits for the commits
// under way. After it the engine holds nothing and may process again. A
// sink's Stop calls it, and so does a sink about to close its connection.
func (e *Engine) Settle(ctx context.Context) error {
	err := e.settle(ctx, len(e.flight))
	e.waitCommits()
	return err
}

// settle waits for the answers of the first wait batches in flight, then
// hands them to commit with any answered after them. A failed answer fails
// the whole pipeline once the batches before it are handed over.
func (e *Engine) settle(ctx context.Context, wait int) error {
	ready := 0
	var callErr error
	for ; ready < len(e.flight); ready++ {
		call := e.flight[ready].call
		if ready >= wait && !answered(call) {
			break
		}
		if callErr = call.Wait(ctx); callErr != nil {
			break
		}
	}
	if ready > 0 {
		e.commit(e.flight[:ready])
		clear(e.flight[:ready])
		e.flight = e.flight[ready:]
	}
	if callErr != nil {
		return e.failed(callErr)
	}
	return nil
}

func answered(call Pending) bool {
	select {
	case <-call.Done():
		return true
	default:
		return false
	}
}

// commit commits answered batches, oldest first: on the committer, in
// groups, while the runner goes on, when each commit costs a sync; at once
// otherwise.
func (e *Engine) commit(bs []*batch) {
	if e.committer == nil {
		e.commitNow(bs)
		return
	}
	e.committer.hand(bs)
}

// commitNow commits batches as one group.
func (e *Engine) commitNow(bs []*batch) {
	txns := make([]channel.Txn, len(bs))
	for i, b := range bs {
		txns[i] = b.txn
	}
	for i, err := range channel.CommitAll(e.o.Channel, txns) {
		if err != nil {
			// The transaction is rolled back (channel contract): the hop has
			// the batch and the channel still has it at the head, so it is
			// sent again, after a Process that backs off. Later batches
			// carry on.
			e.channelFail("commit", err)
			e.commitFailed.Store(true)
			continue
		}
		if e.o.Counter != nil {
			e.o.Counter.EventDrainSuccess.Add(int64(bs[i].n))
		}
	}
}

// waitCommits returns once every batch handed to the committer is
// committed (or, its commit failed, rolled back).
func (e *Engine) waitCommits() {
	if e.committer != nil {
		e.committer.wait()
	}
}

// failed handles a failed delivery: every uncommitted transaction rolls
// back, latest first, and the error returned makes a failover processor
// move on.
func (e *Engine) failed(err error) error {
	batches, events := len(e.flight), 0
	for _, b := range e.flight {
		events += b.n
	}
	e.rollbackAll()
	if e.o.Counter != nil {
		e.o.Counter.EventWriteFail.Add(1)
	}
	if batches == 1 {
		return fmt.Errorf("deliver %d events: %w", events, err)
	}
	return fmt.Errorf("deliver %d events in %d batches: %w", events, batches, err)
}

// rollbackAll rolls back every batch in flight, latest first: each rollback
// puts its events at the head, so the oldest batch must go back last.
// Batches handed to the committer were accepted: they commit first.
func (e *Engine) rollbackAll() {
	e.waitCommits()
	for i := len(e.flight) - 1; i >= 0; i-- {
		e.rollback(e.flight[i].txn)
		e.flight[i] = nil
	}
	e.flight = e.flight[:0]
}

func (e *Engine) rollback(txn channel.Txn) {
	if err := txn.Rollback(); err != nil {
		e.o.Log.Error("roll back take", "sink", e.o.Sink, "channel", e.o.Channel.Name(), "err", err)
	}
}

func (e *Engine) channelFail(op string, err error) {
	if e.o.Counter != nil {
		e.o.Counter.ChannelReadFail.Add(1)
	}
	e.o.Log.Error("unable to get events from channel", "sink", e.o.Sink, "channel", e.o.Channel.Name(), "op", op, "err", err)
}
