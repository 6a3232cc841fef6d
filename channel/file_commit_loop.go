package channel

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// The commit loop: one goroutine that owns writing to the data log and the
// checkpoint. tidwall/wal holds its lock through fsync, so commits issued
// concurrently would each pay a whole fsync; instead every Commit hands its
// work to this goroutine, which takes everything pending at once, appends the
// put records in one batch, syncs the log once while it writes and syncs the
// ack state to the checkpoint in parallel, and then answers them all.
//
// It owns: the next sequence number (assigned here, in log order), f.wal's
// replacement after a failure, and the checkpoint slots. Everything it shares
// with takers and putters is under f.mu, held only between I/O.

// commitReq is one transaction's commit.
type commitReq struct {
	rec   []byte   // put: the finished record, stamped here
	count int      // put: its events
	take  *fileTxn // take: the transaction whose events are acknowledged
	done  chan error
}

// maxCycleBytes bounds the put bytes one cycle appends, so one cycle's write
// cannot hold up the answers of the others for long.
const maxCycleBytes = 64 << 20

// reopenBackoff is how long the loop waits between attempts to reopen a
// failed data log when nothing else wakes it.
const reopenBackoff = time.Second

// send hands req to the commit loop and waits for its outcome.
func (f *File) send(req *commitReq) error {
	req.done = make(chan error, 1)
	f.sendMu.RLock()
	if f.closed {
		f.sendMu.RUnlock()
		if req.take != nil {
			// Not acknowledged: the events stay queued on disk for the
			// next open; this handle is closed for taking.
			return f.errClosed()
		}
		f.mu.Lock()
		f.unreserve(req.count)
		f.mu.Unlock()
		return f.errClosed()
	}
	f.commits <- req // the loop runs until Close holds sendMu
	f.sendMu.RUnlock()
	return <-req.done
}

func (f *File) commitLoop() {
	defer f.wg.Done()
	var tick <-chan time.Time
	if !f.opts.FsyncPerTransaction {
		t := time.NewTicker(f.opts.FsyncInterval)
		defer t.Stop()
		tick = t.C
	}
	retry := time.NewTicker(reopenBackoff)
	defer retry.Stop()
	batch := make([]*commitReq, 0, 64)
	for {
		select {
		case r := <-f.commits:
			batch = f.gather(append(batch[:0], r))
			f.cycle(batch)
		case <-tick:
			f.syncInterval()
		case <-retry.C:
			if f.wal == nil {
				f.reopenLog()
			}
		case <-f.stop:
			f.finish(batch[:0])
			return
		}
	}
}

// gather adds every commit already waiting, up to maxCycleBytes of puts.
func (f *File) gather(batch []*commitReq) []*commitReq {
	bytes := len(batch[0].rec)
	for bytes < maxCycleBytes {
		select {
		case r := <-f.commits:
			batch = append(batch, r)
			bytes += len(r.rec)
		default:
			return batch
		}
	}
	return batch
}

// finish runs the commits that reached the loop before Close, then makes
// interval mode's last state durable. After crash() it answers them with
// ErrClosed instead, writing nothing.
func (f *File) finish(batch []*commitReq) {
	for {
		select {
		case r := <-f.commits:
			if f.crashing.Load() {
				r.done <- f.errClosed()
				continue
			}
			f.cycle(f.gather(append(batch[:0], r)))
		default:
			if !f.crashing.Load() && !f.opts.FsyncPerTransaction {
				f.syncInterval()
			}
			return
		}
	}
}

// cycle commits one batch: stamp, append, sync, write the ack state, answer.
func (f *File) cycle(batch []*commitReq) {
	var puts, takes []*commitReq
	for _, r := range batch {
		if r.take != nil {
			takes = append(takes, r)
		} else {
			puts = append(puts, r)
		}
	}
	puts = f.admitPuts(puts)
	synced := f.opts.FsyncPerTransaction

	// Number the events and decide the new ack state, under f.mu.
	now := time.Now().UnixMilli()
	f.mu.Lock()
	firstSeq := f.next
	recs := make([][]byte, len(puts))
	for i, p := range puts {
		stampRecord(p.rec, f.next, now)
		f.next += uint64(p.count)
		recs[i] = p.rec
	}
	var cand *checkpoint
	var gapsUsed int
	if len(takes) > 0 || len(f.gaps) > 0 {
		cand, gapsUsed = f.candidate(takes, now)
	}
	f.mu.Unlock()

	// The I/O: the log's append and sync here, the checkpoint beside it.
	var ckErr error
	var wg sync.WaitGroup
	if cand != nil && synced {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ckErr = f.ckpt.write(cand, true)
		}()
	}
	var walErr error
	var first, last uint64
	if len(recs) > 0 {
		first, last, walErr = f.wal.Append(recs...)
		if walErr == nil && synced {
			// The commits answered below are durable because of this sync.
			walErr = f.wal.Sync()
		}
		if walErr == nil {
			var n int64
			for _, r := range recs {
				n += int64(len(r))
			}
			f.space.wrote(n)
		}
	}
	wg.Wait()

	// Publish and answer.
	f.mu.Lock()
	var putErr error
	for _, p := range puts {
		f.reserved -= p.count
	}
	if len(puts) > 0 {
		if walErr != nil {
			// Their numbers are burnt: the records may or may not be on disk,
			// and must never be delivered (the sources retry them).
			f.addGap(seqRange{firstSeq, f.next})
			putErr = fmt.Errorf("channel %s: commit: %w", f.name, walErr)
			if errors.Is(walErr, syscall.ENOSPC) {
				putErr = fmt.Errorf("channel %s: commit: disk full: %w (%w)", f.name, ErrFull, walErr)
			}
			f.notifyFreed()
		} else {
			f.visible = last
			f.tail.add(first, recs)
			var n int64
			for _, p := range puts {
				n += int64(p.count)
			}
			f.putSuccesses.Add(n)
		}
	}
	var takeErr error
	if cand != nil {
		if ckErr != nil {
			f.checkpointErrors.Add(1)
			takeErr = fmt.Errorf("channel %s: commit: checkpoint: %w", f.name, ckErr)
			for _, r := range takes {
				r.take.committing = false
				f.requeue(r.take)
			}
		} else {
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
				n += int64(len(r.take.taken))
				r.take.taken = nil
				delete(f.takers, r.take)
			}
			f.takeSuccesses.Add(n)
			f.notifyFreed()
		}
	}
	f.mu.Unlock()
	// Health changes before the answers: a caller who saw its commit fail
	// sees the channel unhealthy.
	if len(puts) > 0 {
		f.logFailed.Store(walErr != nil)
	}
	if cand != nil {
		f.ckptFailed.Store(ckErr != nil)
	}
	for _, p := range puts {
		p.done <- putErr
	}
	for _, r := range takes {
		r.done <- takeErr
	}
	if ckErr != nil {
		f.log.Error("file channel: checkpoint write failed; take commits rolled back", "err", ckErr)
	}
	if walErr != nil {
		f.failLog(walErr)
	}
}

// admitPuts fails the puts that cannot be written now (no log, disk floor)
// and returns the rest.
func (f *File) admitPuts(puts []*commitReq) []*commitReq {
	if len(puts) == 0 {
		return puts
	}
	if f.wal == nil {
		f.reopenLog()
	}
	ok := puts[:0]
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
			p.done <- err
			continue
		}
		bytes += int64(len(p.rec))
		ok = append(ok, p)
	}
	return ok
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
		r.take.committing = true
		more = append(more, r.take.runs()...)
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
// that may refer to it.
func (f *File) syncInterval() {
	if f.wal == nil {
		return
	}
	if err := f.wal.Sync(); err != nil {
		f.failLog(err)
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
	err := f.ckpt.write(c, true)
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
// tail. Only the commit loop calls it.
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
// gaps already, so they are skipped. Only the commit loop calls it.
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
