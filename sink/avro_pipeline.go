package sink

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/avrorpc"
)

// The avro sink's pipeline: up to PipelineDepth batches in flight on one
// connection, each in its own take transaction. One round trip to the
// collector costs its put commit (an fsync) plus the network; keeping several
// calls outstanding lets the collector commit them together, and lets this
// agent take and send the next batch while earlier ones are answered.
//
// What it keeps:
//   - A transaction commits only after its call was answered OK, and
//     transactions commit in the order they were taken.
//   - Any failure (connect, send, timeout, FAILED, a dropped connection, a
//     cancelled context) rolls back every transaction not yet committed,
//     latest first, so each batch goes back to the head ahead of the ones
//     taken after it: the channel's order is what it was. The events of
//     batches that were answered OK but not yet committed are sent again.
//   - Process returns Backoff only with nothing in flight, and a batch
//     smaller than BatchSize (the channel ran dry) is settled with every
//     batch before it before Process returns: nothing is held in flight
//     while the runner sleeps or the channel waits for puts.
//
// It is run by the runner goroutine only (Stop comes after the runner has
// stopped), so one goroutine holds every open transaction; the channels
// allow that (a Txn belongs to the goroutine that uses it, not to the only
// one that may be open).

// inflight is one batch sent and not yet committed.
type inflight struct {
	txn  channel.Txn
	n    int
	call *avrorpc.Pending // nil: the batch never reached the wire
}

// process takes one batch and sends it (FLUME.md §3.1 with the pipeline),
// keeping Flume's SinkCounter: BatchEmpty/Underflow/Complete per take,
// EventDrainAttempt before the send, EventDrainSuccess at the commit,
// EventWriteFail per failure, ChannelReadFail per channel error.
func (s *Avro) process(ctx context.Context) (st Status, err error) {
	// A panic is a bug, but it must not leave events stranded in open
	// transactions: roll them back and let the panic go on to the runner.
	defer func() {
		if p := recover(); p != nil {
			s.rollbackAll()
			s.disconnect()
			panic(p)
		}
	}()
	if err := s.settleAnswered(ctx); err != nil {
		return Backoff, err
	}
	txn := s.ch.Begin()
	events, err := txn.Take(s.opts.BatchSize)
	if err != nil {
		s.rollback(txn)
		s.channelFail("take", err)
		// The channel is at fault, not the collector: no failover; finish
		// what is in flight before the runner backs off.
		return Backoff, s.settleAll(ctx)
	}
	n := len(events)
	s.counter.Batch(n, s.opts.BatchSize)
	if n == 0 {
		if err := txn.Commit(); err != nil {
			s.channelFail("commit empty take", err)
		}
		return Backoff, s.settleAll(ctx)
	}
	s.counter.EventDrainAttempt.Add(int64(n))
	b := &inflight{txn: txn, n: n}
	s.flight = append(s.flight, b)
	if b.call, err = s.send(ctx, events); err != nil {
		return Backoff, s.failed(err)
	}
	if n < s.opts.BatchSize {
		if err := s.settleAll(ctx); err != nil {
			return Backoff, err
		}
		return Ready, nil
	}
	for len(s.flight) >= s.opts.PipelineDepth {
		if err := s.settleOldest(ctx); err != nil {
			return Backoff, err
		}
	}
	return Ready, nil
}

// settleAnswered commits the batches at the head of the pipeline whose
// replies have come, without waiting.
func (s *Avro) settleAnswered(ctx context.Context) error {
	for len(s.flight) > 0 {
		select {
		case <-s.flight[0].call.Done():
		default:
			return nil
		}
		if err := s.settleOldest(ctx); err != nil {
			return err
		}
	}
	return nil
}

// settleAll waits for every batch in flight and commits each in turn.
func (s *Avro) settleAll(ctx context.Context) error {
	for len(s.flight) > 0 {
		if err := s.settleOldest(ctx); err != nil {
			return err
		}
	}
	return nil
}

// settleOldest waits for the oldest batch's reply and commits its take; a
// failed reply fails the whole pipeline.
func (s *Avro) settleOldest(ctx context.Context) error {
	b := s.flight[0]
	if err := b.call.Wait(ctx); err != nil {
		return s.failed(err)
	}
	s.flight[0] = nil
	s.flight = s.flight[1:]
	if err := b.txn.Commit(); err != nil {
		// A failed Commit leaves the transaction rolled back (channel
		// contract): the collector has the batch and the channel still has
		// it at the head, so it is sent again. Later batches carry on.
		s.channelFail("commit", err)
		return nil
	}
	s.counter.EventDrainSuccess.Add(int64(b.n))
	return nil
}

// failed handles a failed delivery: every uncommitted transaction rolls
// back, latest first, the connection closes, and the error returned makes a
// failover processor move on.
func (s *Avro) failed(err error) error {
	batches, events := len(s.flight), 0
	for _, b := range s.flight {
		events += b.n
	}
	s.rollbackAll()
	s.disconnect()
	s.counter.EventWriteFail.Add(1)
	return fmt.Errorf("avro sink %s to %s: deliver %d events in %d batches: %w", s.name, s.addr(), events, batches, err)
}

// rollbackAll rolls back every batch in flight, latest first: each rollback
// puts its events at the head, so the oldest batch must go back last.
func (s *Avro) rollbackAll() {
	for i := len(s.flight) - 1; i >= 0; i-- {
		s.rollback(s.flight[i].txn)
		s.flight[i] = nil
	}
	s.flight = s.flight[:0]
}

func (s *Avro) rollback(txn channel.Txn) {
	if err := txn.Rollback(); err != nil {
		s.log.Error("roll back take", slog.String("sink", s.name), slog.String("channel", s.ch.Name()), slog.Any("err", err))
	}
}

func (s *Avro) channelFail(op string, err error) {
	s.counter.ChannelReadFail.Add(1)
	s.log.Error("unable to get events from channel", slog.String("sink", s.name), slog.String("channel", s.ch.Name()),
		slog.String("op", op), slog.Any("err", err))
}
