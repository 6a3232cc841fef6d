package sink

import (
	"context"
	"fmt"
	"log/slog"

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
// A BatchTaker is used from the sink's runner goroutine only.
type BatchTaker struct {
	Sink    string          // sink name, for log lines
	Channel channel.Channel // the sink's channel
	Size    int             // events per transaction, > 0
	Counter *counter.Sink   // optional
	Log     *slog.Logger    // required
}

// Process runs one take–deliver–commit cycle.
func (b *BatchTaker) Process(ctx context.Context, deliver DeliverFunc) (st Status, err error) {
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
	if err := txn.Commit(); err != nil {
		// A failed Commit leaves the transaction rolled back (channel contract):
		// the hop has the batch and the channel still has it, so it is sent again.
		b.channelFail("commit", err)
		return Backoff, nil
	}
	if b.Counter != nil {
		b.Counter.EventDrainSuccess.Add(int64(n))
	}
	return Ready, nil
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
