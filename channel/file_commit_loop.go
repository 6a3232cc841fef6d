package channel

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"time"
)

// The commit loops: group commit. tidwall/wal holds its lock through fsync,
// so commits issued concurrently would each pay a whole fsync; instead every
// Commit hands its work to one of two goroutines, each of which takes
// everything pending of its kind at once, writes it with one sync, and answers
// them all:
//
//   - the put loop owns the data log: it numbers the events (in log order),
//     appends every pending put record in one batch, syncs once, and publishes
//     the records to takers. It also reopens the log after a failure.
//   - the ack loop owns the checkpoint: it folds every pending take commit
//     into one new ack state, writes it to a slot and syncs it.
//
// The two never wait for each other, so a producer's put and a consumer's
// ack, which arrive together in a running agent, sync in parallel rather than
// one after the other. Nothing orders them: an ack only names events already durable, and a
// checkpoint that counts sequence numbers the log has not synced yet is
// harmless (restart voids the numbers the log does not hold).
//
// Everything they share with takers and putters is under f.mu, held only
// between I/O.

// commitReq is one transaction's commit.
type commitReq struct {
	rec   []byte     // put: the finished record, stamped by the put loop
	count int        // put: its events
	takes []*fileTxn // take: the transactions whose events are acknowledged, in the order taken
	done  chan error
}

// maxCycleBytes bounds the put bytes one cycle appends, so one cycle's write
// cannot hold up the answers of the others for long.
const maxCycleBytes = 64 << 20

// reopenBackoff is how long the put loop waits between attempts to reopen a
// failed data log when no commit wakes it.
const reopenBackoff = time.Second

// send hands req to its loop and waits for the outcome.
func (f *File) send(req *commitReq) error {
	req.done = make(chan error, 1)
	f.sendMu.RLock()
	if f.closed {
		f.sendMu.RUnlock()
		if req.takes == nil {
			f.mu.Lock()
			f.unreserve(req.count)
			f.mu.Unlock()
		}
		// A take not acknowledged stays queued on disk for the next open.
		return f.errClosed()
	}
	// The loops run until Close holds sendMu, so this send is received.
	if req.takes != nil {
		f.ackReqs <- req
	} else {
		f.putReqs <- req
	}
	f.sendMu.RUnlock()
	return <-req.done
}

// gather adds every request already waiting on ch, up to maxCycleBytes.
func gather(batch []*commitReq, ch chan *commitReq) []*commitReq {
	bytes := len(batch[0].rec)
	for bytes < maxCycleBytes {
		select {
		case r := <-ch:
			batch = append(batch, r)
			bytes += len(r.rec)
		default:
			return batch
		}
	}
	return batch
}

// drain runs the requests that reached a loop before Close. After crash() it
// answers them with ErrClosed instead, writing nothing.
func (f *File) drain(ch chan *commitReq, cycle func([]*commitReq)) {
	for {
		select {
		case r := <-ch:
			if f.crashing.Load() {
				r.done <- f.errClosed()
				continue
			}
			cycle(gather([]*commitReq{r}, ch))
		default:
			return
		}
	}
}

func (f *File) putLoop() {
	defer f.wg.Done()
	retry := time.NewTicker(reopenBackoff)
	defer retry.Stop()
	batch := make([]*commitReq, 0, 64)
	grouped := false // the last cycle answered more than one commit
	for {
		select {
		case r := <-f.putReqs:
			if grouped {
				// The committers the last cycle answered are runnable, on
				// their way to commit again; the first of them is here.
				// Without letting the others reach the queue, cycles
				// alternate between one commit and all the rest, which
				// costs a sync for one event: fewer commits per cycle
				// and less throughput (BenchmarkFileGroupCommit with 32
				// goroutines shows it).
				runtime.Gosched()
			}
			batch = gather(append(batch[:0], r), f.putReqs)
			grouped = len(batch) > 1
			f.putCycle(batch)
			clear(batch)
		case <-retry.C:
			if f.wal == nil {
				f.reopenLog()
			}
		case <-f.stop:
			f.drain(f.putReqs, f.putCycle)
			return
		}
	}
}

func (f *File) ackLoop() {
	defer f.wg.Done()
	var tick <-chan time.Time
	if !f.opts.FsyncPerTransaction {
		t := time.NewTicker(f.opts.FsyncInterval)
		defer t.Stop()
		tick = t.C
	}
	batch := make([]*commitReq, 0, 64)
	grouped := false
	for {
		select {
		case r := <-f.ackReqs:
			if grouped {
				runtime.Gosched() // as in putLoop; concurrent sinks draining a cold backlog gain most (BenchmarkFileDrain, sinks=4)
			}
			batch = gather(append(batch[:0], r), f.ackReqs)
			grouped = len(batch) > 1
			f.ackCycle(batch)
			clear(batch)
		case <-f.gapKick:
			f.ackCycle(nil) // make new gaps durable
		case <-tick:
			f.syncInterval()
		case <-f.stop:
			f.drain(f.ackReqs, f.ackCycle)
			if !f.crashing.Load() && !f.opts.FsyncPerTransaction {
				f.syncInterval()
			}
			return
		}
	}
}

// kickGaps asks the ack loop to record new gaps. The caller may hold f.mu.
func (f *File) kickGaps() {
	select {
	case f.gapKick <- struct{}{}:
	default: // a kick is pending already
	}
}

// putCycle commits a batch of puts: stamp, append, sync, publish, answer.
func (f *File) putCycle(batch []*commitReq) {
	puts := f.admitPuts(batch)
	if len(puts) == 0 {
		return
	}
	synced := f.opts.FsyncPerTransaction
	now := time.Now().UnixMilli()
	f.mu.Lock()
	firstSeq := f.next
	recs := make([][]byte, len(puts))
	var events int64
	for i, p := range puts {
		stampRecord(p.rec, f.next, now)
		f.next += uint64(p.count)
		recs[i] = p.rec
		events += int64(p.count)
	}
	f.mu.Unlock()

	first, last, err := f.wal.Append(recs...)
	if err == nil && synced {
		// The commits answered below are durable because of this sync.
		err = f.wal.Sync()
	}
	if err == nil {
		var n int64
		for _, r := range recs {
			n += int64(len(r))
		}
		f.space.wrote(n)
	}

	f.mu.Lock()
	for _, p := range puts {
		f.reserved -= p.count
	}
	var putErr error
	if err != nil {
		// Their numbers are burnt: the records may or may not be on disk,
		// and must never be delivered (the sources retry them).
		f.addGap(seqRange{firstSeq, f.next})
		putErr = fmt.Errorf("channel %s: commit: %w", f.name, err)
		if errors.Is(err, syscall.ENOSPC) {
			putErr = fmt.Errorf("channel %s: commit: disk full: %w (%w)", f.name, ErrFull, err)
		}
		f.notifyFreed()
	} else {
		f.visible = last
		f.tail.add(first, recs)
		f.putSuccesses.Add(events)
	}
	f.mu.Unlock()
	// Health changes before the answers: a caller who saw its commit fail
	// sees the channel unhealthy.
	f.logFailed.Store(err != nil)
	for _, p := range puts {
		p.done <- putErr
	}
	if err != nil {
		f.kickGaps()
		f.failLog(err)
	}
}

// admitPuts fails the puts that cannot be written now (no log, disk floor)
// and returns the rest.
func (f *File) admitPuts(puts []*commitReq) []*commitReq {
	if f.wal == nil {
		f.reopenLog()
	}
	ok := puts[:0:0]
	var bytes int64
	for _, p := range puts {
		var err error
		switch {
		case f.wal == nil:
			err = fmt.Errorf("channel %s: commit: data log unavailable after a failure: %w", f.name, ErrFull)
		default:
			if reason := f.space.refuse(bytes + int64(len(p.rec))); reason != "" {
				err = fmt.Errorf("channel %s: commit: %s: %w", f.name, reason, ErrFull)
			}
		}
		if err != nil {
			f.mu.Lock()
			f.unreserve(p.count)
			f.mu.Unlock()
			f.putErrors.Add(1)
			p.done <- err
			continue
		}
		bytes += int64(len(p.rec))
		ok = append(ok, p)
	}
	return ok
}

// ackCycle acknowledges a batch of take commits (and any pending gaps) with
// one checkpoint write. In interval mode the state only changes in memory;
// syncInterval writes it.
func (f *File) ackCycle(takes []*commitReq) {
	synced := f.opts.FsyncPerTransaction
	f.mu.Lock()
	if len(takes) == 0 && len(f.gaps) == 0 {
		f.mu.Unlock()
		return
	}
	cand, gapsUsed := f.candidate(takes, time.Now().UnixMilli())
	if !synced {
		f.install(cand, takes, gapsUsed, false)
		f.mu.Unlock()
		for _, r := range takes {
			r.done <- nil
		}
		return
	}
	f.mu.Unlock()

	// The take commits answered below are durable because of this write.
	err := f.ckpt.write(cand, true)

	f.mu.Lock()
	var takeErr error
	if err != nil {
		f.checkpointErrors.Add(1)
		takeErr = fmt.Errorf("channel %s: commit: checkpoint: %w", f.name, err)
		// Latest first, so that each goes back ahead of the ones taken
		// after it and the head is in its original order again.
		for i := len(takes) - 1; i >= 0; i-- {
			ts := takes[i].takes
			for j := len(ts) - 1; j >= 0; j-- {
				ts[j].committing = false
				f.requeue(ts[j])
			}
		}
	} else {
		f.install(cand, takes, gapsUsed, true)
	}
	f.mu.Unlock()
	f.ckptFailed.Store(err != nil)
	for _, r := range takes {
		r.done <- takeErr
	}
	if err != nil {
		f.log.Error("file channel: checkpoint write failed; take commits rolled back", "err", err)
	}
}

// install makes cand the ack state and forgets the committed takes. The
// caller holds f.mu.
func (f *File) install(cand *checkpoint, takes []*commitReq, gapsUsed int, synced bool) {
	f.acks = cand.ackState
	f.gaps = f.gaps[gapsUsed:]
	if len(f.gaps) == 0 {
		f.gaps = nil
	}
	if synced {
		f.synced = cand.ackState
		f.syncedGen++
	} else {
		f.dirty = true
	}
	var n int64
	for _, r := range takes {
		for _, t := range r.takes {
			n += int64(len(t.taken))
			t.taken = nil
			delete(f.takers, t)
		}
	}
	f.takeSuccesses.Add(n)
	f.notifyFreed()
}

// candidate computes the ack state after takes commit: the current one plus
// their events and the pending gaps, with the floor raised to the lowest
// event still not acknowledged. The caller holds f.mu. It returns how many
// of f.gaps it included.
func (f *File) candidate(takes []*commitReq, now int64) (*checkpoint, int) {
	c := &checkpoint{ackState: f.acks.clone(), LogID: f.logID, WrittenMs: now}
	c.Next = f.next
	var more []seqRange
	for _, r := range takes {
		for _, t := range r.takes {
			t.committing = true
			more = append(more, t.runs()...)
		}
	}
	more = append(more, f.gaps...)
	c.addRanges(more)
	// Everything below the cursor is acknowledged except the events of open
	// take transactions and the redelivery queue: the floor is the lowest of
	// those, or the cursor.
	floor, pos := f.cursor.seq, f.cursor.pos
	for t := range f.takers {
		if !t.committing && len(t.taken) > 0 && t.minSeq < floor {
			floor, pos = t.minSeq, t.minPos
		}
	}
	for _, e := range f.redeliver {
		if e.seq < floor {
			floor, pos = e.seq, e.pos
		}
	}
	c.setFloor(floor, pos)
	return c, len(f.gaps)
}

// syncInterval is interval mode's sync: the log first, then the ack state
// that may refer to it. The ack loop runs it.
func (f *File) syncInterval() {
	f.walMu.RLock()
	var err error
	if f.wal != nil {
		err = f.wal.Sync()
	}
	f.walMu.RUnlock()
	if err != nil {
		// The put loop finds the handle dead at its next append and reopens it.
		f.log.Error("file channel: interval sync of the data log failed", "err", err)
		f.logFailed.Store(true)
		return
	}
	f.mu.Lock()
	if !f.dirty {
		f.mu.Unlock()
		return
	}
	c := &checkpoint{ackState: f.acks.clone(), LogID: f.logID, WrittenMs: time.Now().UnixMilli()}
	c.Next = f.next
	f.dirty = false
	f.mu.Unlock()
	err = f.ckpt.write(c, true)
	f.ckptFailed.Store(err != nil)
	if err != nil {
		f.checkpointErrors.Add(1)
		f.log.Error("file channel: checkpoint write failed", "err", err)
		f.mu.Lock()
		f.dirty = true
		f.mu.Unlock()
		return
	}
	f.mu.Lock()
	f.synced = c.ackState
	f.syncedGen++
	f.mu.Unlock()
}

// failLog handles a failed write or sync: the handle is dead (its view and the
// file may disagree, and a later fsync would prove nothing), so the channel is
// marked unhealthy, the handle closed and the log reopened, which repairs the
// tail. Only the put loop calls it.
func (f *File) failLog(err error) {
	f.logFailed.Store(true)
	if errors.Is(err, syscall.ENOSPC) {
		f.space.markFull()
	}
	f.log.Error("file channel: data log write failed; reopening it", "err", err)
	f.walMu.Lock()
	old := f.wal
	f.wal = nil
	f.walMu.Unlock()
	if old != nil {
		// Closing a failed handle syncs nothing: a sync after a failure
		// proves nothing.
		if cerr := old.Close(); cerr != nil {
			f.log.Debug("file channel: close failed data log", "err", cerr)
		}
	}
	f.reopenLog()
}

// reopenLog opens the data log again after a failure. Records past f.visible
// that reached the disk belong to failed commits; their sequence numbers are
// gaps already, so they are skipped. Only the put loop calls it.
func (f *File) reopenLog() {
	wl, err := openDataLog(f.fs, f.opts.DataDir, f.opts.SegmentSize, f.log)
	if err != nil {
		f.log.Error("file channel: reopen data log failed; retrying", "err", err)
		return
	}
	f.mu.Lock()
	last := wl.LastIndex()
	if last < f.visible {
		// Committed records are gone: the disk lost synced data. Their
		// numbers become gaps when the cursor meets the next record.
		f.log.Error("file channel: records acknowledged earlier are missing after reopening the log",
			"lastIndex", last, "committedThrough", f.visible)
		f.visible = last
		if f.cursor.pos.Index > last+1 {
			f.cursor.pos = logPos{Index: last + 1}
		}
	}
	f.tail.reset()
	f.mu.Unlock()
	f.walMu.Lock()
	f.wal = wl
	f.walMu.Unlock()
	f.log.Info("file channel: data log reopened; healthy again at the next successful commit", "lastIndex", last)
}
