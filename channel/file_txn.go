package channel

import (
	"fmt"
	"slices"
)

// fileTxn is one file channel transaction. It belongs to one goroutine; the
// fields marked "under ch.mu" are also read by the ack loop.
type fileTxn struct {
	ch     *File
	done   bool
	taking bool
	rec    recordBuilder // staged puts, already encoded
	// origins are the upstream numbers of the staged puts that came with
	// PutFrom, written as the record's origin trailer (dedup_put.go).
	origins originStage

	taken      []takenEvent // in the order taken, for a rollback to restore
	minSeq     uint64       // lowest sequence number in taken; under ch.mu
	minPos     logPos       // its position; under ch.mu
	minMs      int64        // earliest put commit time in taken, unix ms; under ch.mu
	committing bool         // its ack is in the ack loop's current batch; under ch.mu
}

// takenEvent is an event handed to a take transaction with what the ack
// state needs: its sequence number and where it is in the log.
type takenEvent struct {
	Event
	seq uint64
	pos logPos
	ms  int64 // its record's commit time, unix ms: when it was put (Stats' OldestAge)
}

func (t *fileTxn) check() error {
	if t.done {
		return ErrTxnDone
	}
	if t.ch.isClosed() {
		return t.ch.errClosed()
	}
	return nil
}

// Put encodes events into the transaction's record. Like Flume's file
// channel it takes capacity at Put, waiting up to keep-alive, and refuses
// puts below the disk floor.
func (t *fileTxn) Put(events ...Event) error {
	if err := t.check(); err != nil {
		return err
	}
	if t.taking {
		return ErrMixed
	}
	if len(events) == 0 {
		return nil
	}
	f := t.ch
	n := len(events)
	f.putAttempts.Add(int64(n))
	if limit := f.opts.TransactionCapacity; t.rec.count+n > limit {
		return fmt.Errorf("channel %s: put %d events: transaction holds %d of transactionCapacity %d: %w",
			f.name, n, t.rec.count, limit, ErrTxnFull)
	}
	size := 0
	for _, e := range events {
		size += avroEventSize(e)
	}
	if t.rec.bodyLen()+size > maxRecordBody {
		return fmt.Errorf("channel %s: put %d events: the transaction would hold %d bytes, over the %d a record holds: %w",
			f.name, n, t.rec.bodyLen()+size, maxRecordBody, ErrTxnFull)
	}
	if reason := f.space.refuse(int64(t.rec.bodyLen() + size)); reason != "" {
		f.putErrors.Add(1)
		return fmt.Errorf("channel %s: put %d events: %s: %w", f.name, n, reason, ErrFull)
	}
	if err := f.reserve(n); err != nil {
		return err
	}
	t.rec.grow(size)
	for _, e := range events {
		t.rec.add(e)
	}
	return nil
}

var _ OriginPutter = (*fileTxn)(nil)

// PutFrom implements OriginPutter: it stages the events whose numbers of
// origin this channel has not committed (nor this transaction staged), and
// the commit writes their numbers in the same record as the events.
func (t *fileTxn) PutFrom(origin OriginID, seqs []uint64, events []Event) (int, error) {
	if err := t.check(); err != nil {
		return 0, err
	}
	if len(seqs) != len(events) {
		return 0, fmt.Errorf("channel %s: put %d events with %d sequence numbers", t.ch.name, len(events), len(seqs))
	}
	keepSeqs, keep := t.ch.notCommitted(t.origins, origin, seqs, events)
	if err := t.Put(keep...); err != nil {
		return 0, err
	}
	t.origins.addSeqs(origin, keepSeqs)
	return len(events) - len(keep), nil
}

// Take hands out up to max events from the head: rolled-back events first,
// then the log. It never waits: an empty channel answers at once, as Flume's
// file channel does.
func (t *fileTxn) Take(max int) ([]Event, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	if t.rec.count > 0 {
		return nil, ErrMixed
	}
	if max <= 0 {
		return nil, nil
	}
	f := t.ch
	t.taking = true
	if limit := f.opts.TransactionCapacity; len(t.taken)+max > limit {
		f.takeAttempts.Add(1)
		return nil, fmt.Errorf("channel %s: take %d events: transaction holds %d of transactionCapacity %d: %w",
			f.name, max, len(t.taken), limit, ErrTxnFull)
	}
	out, err := f.take(t, max)
	// Attempts as Flume counts its one-event take() calls in a sink's batch
	// loop: one per event returned, plus one for the call that came back empty.
	attempts := len(out)
	if len(out) < max {
		attempts++
	}
	f.takeAttempts.Add(int64(attempts))
	if err != nil {
		f.takeErrors.Add(1)
	}
	return out, err
}

// Commit makes staged puts durable and visible, or taken events gone for
// good, through the commit loops. When it returns nil the outcome is on disk
// (with fsyncPerTransaction; else within fsyncInterval). A failed Commit
// leaves the transaction rolled back.
func (t *fileTxn) Commit() error {
	if err := t.check(); err != nil {
		return err
	}
	t.done = true
	f := t.ch
	switch {
	case t.rec.count > 0:
		flags := byte(0)
		if f.opts.FsyncPerTransaction {
			flags |= recordFlagSynced
		}
		if len(t.origins) > 0 {
			flags |= recordFlagOrigins
		}
		rec := f.opts.Keys.seal(t.rec.finish(flags, f.opts.Compress, f.opts.CompressAbove))
		if len(t.origins) > 0 {
			// After the seal, in the clear: restart reads the origins of
			// records without keys, and the flag in the sealed header
			// says the trailer is there.
			rec = appendOriginTrailer(rec, t.origins)
		}
		req := &commitReq{rec: rec, count: t.rec.count, origins: t.origins}
		err := f.send(req)
		if err != nil {
			f.putErrors.Add(1)
		}
		return err
	case len(t.taken) > 0:
		return f.commitTakes([]*fileTxn{t})
	}
	return nil
}

// commitTakes acknowledges the events of take transactions with one
// checkpoint write: all of them are durable, or all are rolled back (in
// reverse, so the head keeps its order). The transactions are open, of f,
// and hold no puts.
func (f *File) commitTakes(ts []*fileTxn) error {
	req := &commitReq{takes: make([]*fileTxn, 0, len(ts))}
	for _, t := range ts {
		t.done = true
		if len(t.taken) > 0 {
			req.takes = append(req.takes, t)
		}
	}
	if len(req.takes) == 0 {
		return nil
	}
	err := f.send(req)
	if err != nil {
		f.takeErrors.Add(int64(len(req.takes)))
	}
	return err
}

// CommitAll implements GroupCommitter: open take transactions of f commit
// together, made durable by one checkpoint sync (with
// fsyncPerTransaction); anything else commits one by one.
func (f *File) CommitAll(txns []Txn) []error {
	ts := f.openTakes(txns)
	if len(ts) < 2 {
		return commitEach(txns)
	}
	errs := make([]error, len(txns))
	if err := f.commitTakes(ts); err != nil {
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
}

// openTakes returns txns as f's transactions when they are all open take
// (or empty) transactions of f, and nil otherwise.
func (f *File) openTakes(txns []Txn) []*fileTxn {
	ts := make([]*fileTxn, len(txns))
	for i, x := range txns {
		t, ok := x.(*fileTxn)
		if !ok || t.done || t.rec.count > 0 || t.ch != f {
			return nil
		}
		ts[i] = t
	}
	return ts
}

// Rollback drops staged puts (releasing their capacity) or returns taken
// events to the head in their original order.
func (t *fileTxn) Rollback() error {
	if err := t.check(); err != nil {
		return err
	}
	t.done = true
	t.origins = nil
	t.ch.rollback(t)
	return nil
}

var _ Sequenced = (*fileTxn)(nil)

// Seqs implements Sequenced: the numbers of the events taken, in the order
// Take returned them. Only the owning goroutine writes t.taken before the
// commit, so it reads it without f.mu.
func (t *fileTxn) Seqs() []uint64 {
	out := make([]uint64, len(t.taken))
	for i, e := range t.taken {
		out[i] = e.seq
	}
	return out
}

// runs returns the transaction's sequence numbers as sorted ranges.
func (t *fileTxn) runs() []seqRange {
	seqs := make([]uint64, len(t.taken))
	for i, e := range t.taken {
		seqs[i] = e.seq
	}
	if !slices.IsSorted(seqs) {
		slices.Sort(seqs)
	}
	var out []seqRange
	for _, s := range seqs {
		if n := len(out); n > 0 && out[n-1].End == s {
			out[n-1].End++
			continue
		}
		out = append(out, seqRange{s, s + 1})
	}
	return out
}
