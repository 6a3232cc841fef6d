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
// Answered batches are committed by a committer goroutine, several at a
// time with channel.CommitAll (one checkpoint sync for the group in a file
// channel), while the runner goes on taking and sending: committing one
// batch at a time on the runner made the agent's own sync, not the
// collector, the limit of a drain.
//
// What it keeps:
//   - A transaction commits only after its call was answered OK, and
//     transactions commit in the order they were taken.
//   - Any failure (connect, send, timeout, FAILED, a dropped connection, a
//     cancelled context) rolls back every transaction not yet committed,
//     latest first, so each batch goes back to the head ahead of the ones
//     taken after it: the channel's order is what it was. The events of
//     batches that were answered OK but not yet committed are sent again.
//   - Process returns Backoff only with nothing in flight or being
//     committed, and a batch smaller than BatchSize (the channel ran dry) is
//     settled and committed with every batch before it before Process
//     returns: nothing is held open while the runner sleeps or the channel
//     waits for puts. A failure waits for the commits under way before it
//     rolls back the rest.
//
// It is run by the runner goroutine only (Stop comes after the runner has
// stopped). The runner holds every open transaction until it hands it to the
// committer, which alone uses it from then on; the channels allow that (a
// Txn belongs to the goroutine that uses it, not to the only one that may be
// open).

// inflight is one batch sent and not yet committed.
type inflight struct {
	taken
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
	b := &inflight{taken: taken{txn: txn, n: n}}
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
func (s *Avro) settleAnswered(ctx context.Context) error { return s.settle(ctx, 0) }

// settleAll waits for every batch in flight and for their commits.
func (s *Avro) settleAll(ctx context.Context) error {
	if err := s.settle(ctx, len(s.flight)); err != nil {
		return err
	}
	s.waitCommits()
	return nil
}

// settleOldest waits for the oldest batch's reply and commits it, with the
// batches after it that were answered meanwhile.
func (s *Avro) settleOldest(ctx context.Context) error { return s.settle(ctx, 1) }

// settle waits for the replies of the first wait batches in flight, then
// commits them and any answered after them, together: one commit of
// several takes costs the file channel one checkpoint sync, where one
// commit per batch would make that sync, not the collector, the limit of a
// drain. A failed reply fails the whole pipeline once the batches before it
// are committed.
func (s *Avro) settle(ctx context.Context, wait int) error {
	ready := 0
	var callErr error
	for ; ready < len(s.flight); ready++ {
		call := s.flight[ready].call
		if ready >= wait && !answered(call) {
			break
		}
		if callErr = call.Wait(ctx); callErr != nil {
			break
		}
	}
	if ready > 0 {
		s.commit(s.flight[:ready])
		clear(s.flight[:ready])
		s.flight = s.flight[ready:]
	}
	if callErr != nil {
		return s.failed(callErr)
	}
	return nil
}

func answered(call *avrorpc.Pending) bool {
	select {
	case <-call.Done():
		return true
	default:
		return false
	}
}

// commit commits answered batches, oldest first. With a pipeline the
// committer does it while the runner goes on taking and sending: the sync a
// durable channel makes for a commit then overlaps the next batches' round
// trips instead of stopping them. One batch at a time commits here, as Flume.
func (s *Avro) commit(flight []*inflight) {
	batches := make([]taken, len(flight))
	for i, b := range flight {
		batches[i] = b.taken
	}
	if s.opts.PipelineDepth == 1 {
		s.commitNow(batches)
		return
	}
	if s.committer == nil {
		s.committer = newCommitter(s.opts.PipelineDepth, s.commitNow)
	}
	s.committer.hand(batches)
}

// commitNow commits batches in one group.
func (s *Avro) commitNow(batches []taken) {
	for i, err := range commitAll(s.ch, batches) {
		if err != nil {
			// A failed commit leaves the transaction rolled back (channel
			// contract): the collector has the batch and the channel still
			// has it at the head, so it is sent again, after the next
			// Process backs off. Later batches carry on.
			s.channelFail("commit", err)
			s.commitFailed.Store(true)
			continue
		}
		s.counter.EventDrainSuccess.Add(int64(batches[i].n))
	}
}

// waitCommits returns once every batch handed to the committer is
// committed (or, its commit failed, rolled back).
func (s *Avro) waitCommits() {
	if s.committer != nil {
		s.committer.wait()
	}
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
	// Batches answered OK are committed first: the collector has them.
	s.waitCommits()
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
