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
// Everything they share with takers and putters is the queue state
// (file_state.go), changed between their I/O.

// commitReq is one transaction's commit.
type commitReq struct {
	rec   []byte // put: the finished record, stamped by the put loop
	count int    // put: its events
	// put: the upstream numbers the record holds (its origin trailer),
	// which the dedup table learns once the record is durable
	origins originStage
	takes   []*fileTxn // take: the transactions whose events are acknowledged, in the order taken
	done    chan error
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
			f.unreserve(req.count)
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
	recs := make([][]byte, len(puts))
	now := f.clock.Now().UnixMilli()
	firstSeq, events := f.stampPuts(puts, recs, now)

	first, last, err := f.wal.Append(recs...)
	if err == nil && synced {
		// The commits answered below are durable because of this sync.
		t := time.Now()
		err = f.wal.Sync()
		f.stats.LogSyncSeconds.Observe(secondsSince(t))
	}
	f.stats.PutGroup.Observe(float64(len(puts)))
	if err == nil {
		var n int64
		for _, r := range recs {
			n += int64(len(r))
		}
		f.space.wrote(n)
	}

	f.putsWritten(puts, recs, firstSeq, first, last, events, now, err)
	var putErr error
	if err != nil {
		putErr = fmt.Errorf("channel %s: commit: %w", f.name, err)
		if errors.Is(err, syscall.ENOSPC) {
			putErr = fmt.Errorf("channel %s: commit: disk full: %w (%w)", f.name, ErrFull, err)
		}
	}
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
			f.unreserve(p.count)
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
	cand, gapsUsed, plan := f.prepareAcks(takes, f.opts.FsyncPerTransaction, time.Now().UnixMilli())
	switch plan {
	case ackNothing:
		return
	case ackInstalled:
		for _, r := range takes {
			r.done <- nil
		}
		return
	}

	// The take commits answered below are durable because of this write.
	t := time.Now()
	err := f.ckpt.write(cand, true)
	f.stats.CheckpointSyncSeconds.Observe(secondsSince(t))
	f.stats.TakeGroup.Observe(float64(len(takes)))

	var takeErr error
	if err != nil {
		f.checkpointErrors.Add(1)
		takeErr = fmt.Errorf("channel %s: commit: checkpoint: %w", f.name, err)
	}
	f.acksWritten(cand, takes, gapsUsed, err)
	f.ckptFailed.Store(err != nil)
	for _, r := range takes {
		r.done <- takeErr
	}
	if err != nil {
		f.log.Error("file channel: checkpoint write failed; take commits rolled back", "err", err)
	}
}

// syncInterval is interval mode's sync: the log first, then the ack state
// that may refer to it. The ack loop runs it.
func (f *File) syncInterval() {
	f.walMu.RLock()
	var err error
	if f.wal != nil {
		t := time.Now()
		err = f.wal.Sync()
		f.stats.LogSyncSeconds.Observe(secondsSince(t))
	}
	f.walMu.RUnlock()
	if err != nil {
		// The put loop finds the handle dead at its next append and reopens it.
		f.log.Error("file channel: interval sync of the data log failed", "err", err)
		f.logFailed.Store(true)
		return
	}
	c := f.intervalCandidate(time.Now().UnixMilli())
	if c == nil {
		return
	}
	err = f.ckpt.write(c, true)
	f.ckptFailed.Store(err != nil)
	if err != nil {
		f.checkpointErrors.Add(1)
		f.log.Error("file channel: checkpoint write failed", "err", err)
	}
	f.intervalWritten(c, err)
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
	last := wl.LastIndex()
	f.logReopened(last)
	f.walMu.Lock()
	f.wal = wl
	f.walMu.Unlock()
	f.log.Info("file channel: data log reopened; healthy again at the next successful commit", "lastIndex", last)
}
