package sink

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/counter"
)

// DeliverFunc hands one batch (never empty) to the next hop. It returns nil only
// when the hop has accepted every event: after that the take is committed. Any
// error makes the take roll back, so the events stay at the head of the channel.
type DeliverFunc func(ctx context.Context, events []channel.Event) error

// BatchTaker is the take–deliver–commit step every batching sink shares
// (FLUME.md §3.1), with Flume's SinkCounter bookkeeping:
//
//   - Take up to Size events in one transaction. None → commit the empty
//     transaction, BatchEmpty++, return Backoff.
//   - A channel error on take or commit → roll back, ChannelReadFail++, log,
//     return Backoff with a nil error: the channel is at fault, not the sink, so
//     it must not drive failover.
//   - Otherwise EventDrainAttempt += n, deliver; a delivery error → roll back,
//     EventWriteFail++, return the error (the caller closes its connection or
//     file). Success → commit, EventDrainSuccess += n, return Ready.
//
// BatchEmpty/BatchUnderflow/BatchComplete count every call. Counter may be nil
// for sinks without counters (logger, null). Delivery is at-least-once: a
// commit that fails after the hop accepted the batch leaves the events in the
// channel to be sent again.
//
// On a channel whose every take commit costs a sync (channel.SyncsTakeCommits:
// a file channel with fsyncPerTransaction), a delivered batch is handed to a
// committer goroutine and Process returns Ready without waiting: the next
// batches are taken and delivered while it syncs, and the batches delivered
// meanwhile commit together with the next sync (channel.CommitAll). One sync
// per batch made a sink taking one event at a time (the logger, as in Flume)
// as slow as the disk's flush. What stays: batches commit in the order
// delivered, only after delivery; Process returns Backoff (an empty channel,
// a channel or delivery failure) only once every delivered batch is
// committed; a commit that failed makes the next Process back off, as a
// synchronous one would have; Wait, which Stop calls, waits for the commits.
//
// A BatchTaker is used from the sink's runner goroutine only.
type BatchTaker struct {
	Sink    string          // sink name, for log lines
	Channel channel.Channel // the sink's channel
	Size    int             // events per transaction, > 0
	Counter *counter.Sink   // optional
	Log     *slog.Logger    // required

	committer    *committer  // nil until a batch is handed over
	commitFailed atomic.Bool // set by the committer, taken by Process
}

// committerEvents bounds the events delivered and queued for the committer
// behind the group it is committing, which is at most as large: so at most
// twice this many are delivered and not yet committed.
const committerEvents = 1000

// Wait returns once every delivered batch has been committed (or, its
// commit failed, rolled back).
func (b *BatchTaker) Wait() {
	if b.committer != nil {
		b.committer.wait()
	}
}

// Process runs one take–deliver–commit cycle.
func (b *BatchTaker) Process(ctx context.Context, deliver DeliverFunc) (Status, error) {
	if b.commitFailed.Swap(false) {
		b.Wait()
		return Backoff, nil // the channel is at fault, as in a synchronous commit
	}
	st, err := b.process(ctx, deliver)
	if st == Backoff {
		b.Wait()
	}
	return st, err
}

func (b *BatchTaker) process(ctx context.Context, deliver DeliverFunc) (st Status, err error) {
	txn := b.Channel.Begin()
	done := false
	// A panicking deliver is a bug, but it must not leave events stranded in an
	// open transaction: roll back and let the panic continue to the runner.
	defer func() {
		if !done {
			_ = txn.Rollback()
		}
	}()

	events, err := txn.Take(b.Size)
	if err != nil {
		done = true
		b.rollback(txn)
		b.channelFail("take", err)
		return Backoff, nil
	}
	n := len(events)
	if b.Counter != nil {
		b.Counter.Batch(n, b.Size)
	}
	if n == 0 {
		done = true
		if err := txn.Commit(); err != nil {
			b.channelFail("commit empty take", err)
		}
		return Backoff, nil
	}

	if b.Counter != nil {
		b.Counter.EventDrainAttempt.Add(int64(n))
	}
	if err := deliver(ctx, events); err != nil {
		done = true
		b.rollback(txn)
		if b.Counter != nil {
			b.Counter.EventWriteFail.Add(1)
		}
		return Backoff, fmt.Errorf("deliver %d events: %w", n, err)
	}
	done = true
	if channel.SyncsTakeCommits(b.Channel) {
		if b.committer == nil {
			b.committer = newCommitter(max(1, committerEvents/b.Size), func(bs []taken) { b.commit(bs) })
		}
		b.committer.hand([]taken{{txn: txn, n: n}})
		return Ready, nil
	}
	if !b.commit([]taken{{txn: txn, n: n}}) {
		return Backoff, nil
	}
	return Ready, nil
}

// commit commits delivered batches together and reports whether all of them
// committed. A failed Commit leaves the transaction rolled back (channel
// contract): the hop has the batch and the channel still has it, so it is
// sent again.
func (b *BatchTaker) commit(batches []taken) bool {
	ok := true
	for i, err := range commitAll(b.Channel, batches) {
		if err != nil {
			b.channelFail("commit", err)
			ok = false
			continue
		}
		if b.Counter != nil {
			b.Counter.EventDrainSuccess.Add(int64(batches[i].n))
		}
	}
	if !ok && b.committer != nil {
		b.commitFailed.Store(true)
	}
	return ok
}

func (b *BatchTaker) rollback(txn channel.Txn) {
	if err := txn.Rollback(); err != nil {
		b.Log.Error("roll back take", "sink", b.Sink, "channel", b.Channel.Name(), "err", err)
	}
}

func (b *BatchTaker) channelFail(op string, err error) {
	if b.Counter != nil {
		b.Counter.ChannelReadFail.Add(1)
	}
	b.Log.Error("unable to get events from channel", "sink", b.Sink, "channel", b.Channel.Name(), "op", op, "err", err)
}
