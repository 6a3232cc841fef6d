package channel

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"
)

// The file channel's queue state: what is queued, taken, acknowledged and
// durable, in memory. Every field of queueState is guarded by f.mu, and every
// change to it is made in this file, by the methods below; the commit loops,
// the takers, the reclaimer and restart call them between their I/O and never
// lock f.mu themselves.
//
// Lock order. A goroutine holding a lock of this list takes only locks
// further down it, never one above:
//
//  1. f.sendMu (RW): commit senders hold R while they hand a commit to a
//     loop; Close and crash hold W to stop them (file_commit_loop.go).
//  2. f.readMu: one taker at a time reads records and moves the cursor; it
//     guards f.cur and f.rd (file_reader.go), which Close also closes,
//     holding f.walMu for writing.
//  3. f.walMu (RW) or f.mu, never both at once:
//     - f.walMu: users of f.wal outside the put loop hold R; the put loop
//     (which alone replaces f.wal, and reads it without the lock) and Close
//     hold W to replace or close it.
//     - f.mu: this file. Held only between I/O: no log, checkpoint or disk
//     call is made under it (a kick of the ack loop and a log line are).
//  4. leaf locks, held only around their own work: the disk floor's
//     (file_space.go) and the data log's own (wal.Log, entered with f.walMu
//     held or by the put loop, never under f.mu).
//
// closed is the one field read outside f.mu: it is written under both
// f.sendMu (W) and f.mu, so a commit sender holding f.sendMu (R) reads it
// too. The fields of fileTxn marked "under ch.mu" are part of this state.

// queueState is everything f.mu guards.
type queueState struct {
	mu        sync.Mutex
	acks      ackState // as durable as the mode promises; see the ack loop
	synced    ackState // the last ack state known synced to disk (reclaim obeys it)
	next      uint64   // sequence number for the next committed event
	visible   uint64   // last log index takers may read
	cursor    cursorPos
	redeliver []takenEvent          // rolled-back takes, head first
	takers    map[*fileTxn]struct{} // open take transactions holding events
	gaps      []seqRange            // sequence numbers that will never be delivered, not yet in acks
	reserved  int                   // events staged by open put transactions
	tail      tailCache             // recently committed records, so caught-up takers skip the disk
	freed     chan struct{}         // closed when capacity is released; nil until a put waits
	closed    bool
	dirty     bool   // acks changed since the last synced checkpoint (interval mode)
	syncedGen uint64 // counts changes of synced
	backedUp  uint64 // syncedGen at the last backup checkpoint
	// head is the commit time of a record at or just before the cursor,
	// for Stats' OldestAge (see oldestPutLocked).
	head headTime

	// The receiver's dedup state (dedup_put.go): which upstream numbers
	// the records through visible committed. dedupEnc caches its encoding
	// for the slots (nil: changed since); syncedDedup and syncedThrough are
	// the table and its last log index in the last slot known synced.
	dedup         *Origins
	dedupEnc      []byte
	syncedDedup   []byte
	syncedThrough uint64
}

// headTime is the commit time (unix ms) of the record at log index idx.
type headTime struct {
	known bool
	idx   uint64
	ms    int64
}

// dedupReplayBound is how many records past the last synced slot's table
// the put loop lets pass before it asks the ack loop for a slot write even
// without a take commit: restart replays the origin trailers of those
// records (file_recover.go), so this bounds its reads whatever the backlog.
const dedupReplayBound = 256

// --- Restart and close ---

// resume sets the state restart resolved: the ack state st (durable: restart
// writes it to a slot before the loops start), the next sequence number and
// the last log index takers may read.
func (f *File) resume(st ackState, next, visible uint64, dedup *Origins) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acks, f.synced, f.next = st, st.clone(), next
	f.visible = visible
	f.dedup, f.dedupEnc = dedup, nil
	f.cursor = cursorPos{pos: st.FloorPos, seq: st.Floor}
	f.takers = make(map[*fileTxn]struct{})
}

// markClosed marks the channel closed and wakes puts waiting for capacity
// (they fail with ErrClosed); it reports false when it was closed already.
// The caller holds f.sendMu.
func (f *File) markClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.closed = true
	f.notifyFreed()
	return true
}

// markCrashed marks the channel closed as SIGKILL would leave it: nothing
// is woken. The caller holds f.sendMu.
func (f *File) markCrashed() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
}

func (f *File) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// sizeAndOpen returns the number of committed events not yet acknowledged,
// whether the channel is open, and the commit time (unix ms) of the oldest
// of those events, or 0 when it holds none or the time is not known.
func (f *File) sizeAndOpen() (size uint64, open bool, oldestMs int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	size = f.queuedLocked()
	if size > 0 {
		oldestMs = f.oldestPutLocked()
	}
	return size, !f.closed, oldestMs
}

// oldestPutLocked returns the commit time (unix ms) of the oldest event not
// acknowledged, or 0 when it is not known. Such an event is in an open take
// transaction, in the redelivery queue, or at the cursor (all older events
// are acknowledged). Taken events carry their record's time; the cursor's
// record is known once a taker has loaded it, from the tail cache when it is
// recent, or from the header open read. Otherwise (a taker has just left a
// record, and the next is neither cached nor read yet) the time of the
// record before it stands in: a lower bound, so the age is over-stated by
// the time between those two puts until the next take reads the record.
// The caller holds f.mu.
func (f *File) oldestPutLocked() int64 {
	var oldest int64
	older := func(ms int64) {
		if ms > 0 && (oldest == 0 || ms < oldest) {
			oldest = ms
		}
	}
	for t := range f.takers {
		if len(t.taken) > 0 {
			older(t.minMs)
		}
	}
	for _, e := range f.redeliver {
		older(e.ms)
	}
	if idx := f.cursor.pos.Index; f.cursor.seq < f.next && idx <= f.visible {
		switch {
		case f.head.known && f.head.idx == idx:
			older(f.head.ms)
		case f.tail.get(idx) != nil:
			if h, err := decodeRecordHeader(f.tail.get(idx)); err == nil {
				older(h.CommitMs)
			}
		case f.head.known:
			older(f.head.ms)
		}
	}
	return oldest
}

// noteHead records the commit time of the record at log index idx, read
// at open: the oldest queued event's, until a taker loads a record.
func (f *File) noteHead(idx uint64, ms int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.head = headTime{known: true, idx: idx, ms: ms}
}

// queuedLocked is the number of committed events not yet acknowledged.
// The caller holds f.mu.
func (f *File) queuedLocked() uint64 {
	n := f.acks.queuedAt(f.next)
	for _, g := range f.gaps {
		n -= min(n, g.End-g.Start)
	}
	return n
}

// --- Capacity ---

// reserve takes n events of capacity for a put, waiting up to keep-alive.
func (f *File) reserve(n int) error {
	var keepAlive <-chan time.Time // started at the first wait
	expired := false
	f.mu.Lock()
	for {
		if f.closed {
			f.mu.Unlock()
			return f.errClosed()
		}
		held := f.queuedLocked() + uint64(f.reserved)
		if held+uint64(n) <= uint64(f.opts.Capacity) {
			f.reserved += n
			f.mu.Unlock()
			return nil
		}
		if expired || f.opts.KeepAlive <= 0 {
			f.mu.Unlock()
			return fmt.Errorf("channel %s: put %d events: capacity %d reached (%d events held); sinks are not keeping up: %w",
				f.name, n, f.opts.Capacity, held, ErrFull)
		}
		if keepAlive == nil {
			keepAlive = f.clock.After(f.opts.KeepAlive)
		}
		wake := f.freedChan()
		f.mu.Unlock()
		select {
		case <-wake:
		case <-keepAlive:
			expired = true // look once more: a take may have committed meanwhile
		}
		f.mu.Lock()
	}
}

// unreserve releases capacity taken by reserve, for a put that will not be
// written.
func (f *File) unreserve(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unreserveLocked(n)
}

// unreserveLocked is unreserve for a caller holding f.mu.
func (f *File) unreserveLocked(n int) {
	f.reserved -= n
	f.notifyFreed()
}

// freedChan returns a channel closed at the next release of capacity. It is
// made only when a put waits, so commits nobody waits for allocate nothing.
// The caller holds f.mu.
func (f *File) freedChan() <-chan struct{} {
	if f.freed == nil {
		f.freed = make(chan struct{})
	}
	return f.freed
}

// notifyFreed wakes puts waiting for capacity. The caller holds f.mu.
func (f *File) notifyFreed() {
	if f.freed != nil {
		close(f.freed)
		f.freed = nil
	}
}

// --- The put loop's cycle ---

// stampPuts gives the records of a put cycle their sequence numbers and
// commit time, in log order, and returns the first number given.
func (f *File) stampPuts(puts []*commitReq, recs [][]byte, now int64) (firstSeq uint64, events int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	firstSeq = f.next
	for i, p := range puts {
		stampRecord(p.rec, f.next, now)
		f.next += uint64(p.count)
		recs[i] = p.rec
		events += int64(p.count)
	}
	return firstSeq, events
}

// putsWritten settles a put cycle stamped from firstSeq: its capacity
// reservations become queued events, and the records [first, last] become
// visible to takers, or, when err says the append or sync failed, their
// numbers are burnt (the records may or may not be on disk, and must never
// be delivered; the sources retry them) and waiting puts look again.
func (f *File) putsWritten(puts []*commitReq, recs [][]byte, firstSeq, first, last uint64, events int64, now int64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range puts {
		f.reserved -= p.count
	}
	if err != nil {
		f.addGap(seqRange{firstSeq, f.next})
		f.notifyFreed()
		return
	}
	f.visible = last
	f.tail.add(first, recs)
	f.putSuccesses.Add(events)
	// The records are as durable as the mode makes them: their origins'
	// numbers are committed here from now on, together with visible.
	for _, p := range puts {
		if len(p.origins) > 0 {
			p.origins.commitTo(f.dedup, now)
			f.dedupEnc = nil
		}
	}
	if f.visible-f.syncedThrough > dedupReplayBound {
		f.kickGaps()
	}
}

// notCommitted returns, of one PutFrom's events, those to stage: not
// committed here and not staged in st (dedupFilter).
func (f *File) notCommitted(st originStage, origin OriginID, seqs []uint64, events []Event) ([]uint64, []Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return dedupFilter(st, origin, seqs, events, func(q uint64) bool { return f.dedup.Committed(origin, q) })
}

// dedupSnapshot puts the dedup table, with the last log index whose records
// it includes, into a slot to write, forgetting origins silent too long
// first. The caller holds f.mu.
func (f *File) dedupSnapshot(c *checkpoint, now int64) {
	if f.dedup.Expire(time.UnixMilli(now)) > 0 {
		f.dedupEnc = nil
	}
	if f.dedupEnc == nil {
		f.dedupEnc = f.dedup.AppendBinary(nil)
	}
	c.Dedup, c.DedupThrough = f.dedupEnc, f.visible
}

// dedupSynced records that c, with its dedup table, is durable. The caller
// holds f.mu.
func (f *File) dedupSynced(c *checkpoint) {
	f.syncedDedup, f.syncedThrough = c.Dedup, c.DedupThrough
}

// dedupWritten records that c, written by restart, is durable with its
// dedup table.
func (f *File) dedupWritten(c *checkpoint) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dedupSynced(c)
}

// DedupCommitted reports whether number seq of origin is committed here:
// a PutFrom of it would be left out. Any goroutine may call it.
func (f *File) DedupCommitted(origin OriginID, seq uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dedup != nil && f.dedup.Committed(origin, seq)
}

// DedupInfo lists the dedup table's origins (for inspection and tests).
func (f *File) DedupInfo() []OriginInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dedup == nil {
		return nil
	}
	return f.dedup.Info()
}

// logReopened adjusts the take side to a data log reopened after a failure
// whose last index is last.
func (f *File) logReopened(last uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
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
}

// --- The take side ---

// takeStep is what a taker does after handing out what memory holds.
type takeStep int

const (
	takeDone  takeStep = iota // out is full, or the cursor caught up with the committed records
	takeAgain                 // events came from the cursor's record: look again
	takeRead                  // the cursor needs the record at idx
)

// handOutHeld hands out to t, up to max events in out, what needs no read:
// rolled-back events first, then the rest of the cursor's record. When the
// cursor needs the next record, it returns takeRead with the record's index
// and its bytes when the tail cache holds them (nil otherwise). The caller
// holds f.readMu.
func (f *File) handOutHeld(t *fileTxn, out *[]Event, max int) (step takeStep, idx uint64, cached []byte, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return takeDone, 0, nil, f.errClosed()
	}
	f.popRedeliver(t, out, max)
	if len(*out) == max {
		return takeDone, 0, nil, nil
	}
	if f.cur.loaded {
		f.handOut(t, out, max)
		return takeAgain, 0, nil, nil
	}
	idx = f.cursor.pos.Index
	if idx > f.visible {
		return takeDone, 0, nil, nil
	}
	return takeRead, idx, f.tail.get(idx), nil
}

// popRedeliver moves rolled-back events to out and t. The caller holds f.mu.
func (f *File) popRedeliver(t *fileTxn, out *[]Event, max int) {
	n := min(max-len(*out), len(f.redeliver))
	for _, e := range f.redeliver[:n] {
		*out = append(*out, e.Event)
		f.giveTo(t, e)
	}
	clear(f.redeliver[:n])
	f.redeliver = f.redeliver[n:]
	if len(f.redeliver) == 0 {
		f.redeliver = nil
	}
}

// loadCursor makes the decoded record at idx the cursor's, placing the cursor
// by sequence number. The caller holds f.readMu.
func (f *File) loadCursor(idx uint64, h recordHeader, events []Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	want := f.cursor.seq
	switch {
	case h.FirstSeq > want:
		// Numbers the log does not hold: a skipped damaged record, a commit
		// that failed after its numbers were given out, or a crash between a
		// checkpoint and the log's sync. None can ever be delivered.
		f.addGap(seqRange{want, h.FirstSeq})
		f.kickGaps()
		want = h.FirstSeq
	case want >= h.EndSeq():
		// The whole record is below the cursor (acknowledged already).
		f.cursor.pos = logPos{Index: idx + 1}
		return
	}
	off := uint32(want - h.FirstSeq)
	if off != f.cursor.pos.Offset && f.cursor.pos.Offset != 0 {
		f.log.Warn("file channel: checkpoint position disagrees with the log; following sequence numbers",
			"index", idx, "offset", f.cursor.pos.Offset, "seq", want, "recordFirst", h.FirstSeq)
	}
	f.cur = cursorRecord{loaded: true, index: idx, first: h.FirstSeq, ms: h.CommitMs, events: events}
	f.cursor = cursorPos{pos: logPos{Index: idx, Offset: off}, seq: want}
	f.head = headTime{known: true, idx: idx, ms: h.CommitMs}
}

// handOut moves events from the cursor's record to out and t, skipping those
// already acknowledged. The caller holds f.readMu and f.mu.
func (f *File) handOut(t *fileTxn, out *[]Event, max int) {
	c := &f.cur
	off := f.cursor.pos.Offset
	// Ranges and gaps usually lie below the cursor (taken events): only one
	// reaching past it (a restart's, or a failed commit's) needs a look.
	check := f.skipsFrom(c.first + uint64(off))
	if n := min(max-len(*out), len(c.events)-int(off)); cap(*out)-len(*out) < n {
		*out = slices.Grow(*out, n)
		t.taken = slices.Grow(t.taken, n)
	}
	for len(*out) < max && int(off) < len(c.events) {
		seq := c.first + uint64(off)
		if check && f.skipped(seq) {
			off++
			continue
		}
		e := c.events[off]
		*out = append(*out, e)
		f.giveTo(t, takenEvent{Event: e, seq: seq, pos: logPos{Index: c.index, Offset: off}, ms: c.ms})
		off++
	}
	if int(off) >= len(c.events) {
		f.cursor = cursorPos{pos: logPos{Index: c.index + 1}, seq: c.first + uint64(len(c.events))}
		f.cur = cursorRecord{}
		return
	}
	f.cursor = cursorPos{pos: logPos{Index: c.index, Offset: off}, seq: c.first + uint64(off)}
}

// skipDamaged moves the cursor past a record that cannot be delivered. Its
// sequence numbers are acknowledged as a gap once the next good record shows
// where they end.
func (f *File) skipDamaged(idx uint64, err error) {
	f.damagedRecords.Add(1)
	f.log.Error("file channel: skipping a damaged record; its events are lost", "index", idx, "err", err)
	f.mu.Lock()
	if f.cursor.pos.Index == idx {
		f.cursor.pos = logPos{Index: idx + 1}
	}
	f.mu.Unlock()
}

// jumpToFirst moves the cursor to the log's first record when it stands
// below it, which only a lost or foreign checkpoint can cause: what lay below
// is gone. It reports whether the cursor moved.
func (f *File) jumpToFirst(idx uint64) bool {
	f.walMu.RLock()
	first := uint64(0)
	if f.wal != nil {
		first = f.wal.FirstIndex()
	}
	f.walMu.RUnlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cursor.pos.Index != idx || first <= idx {
		return false
	}
	f.log.Warn("file channel: cursor below the log's first record; moving to it", "index", idx, "first", first)
	f.cursor.pos = logPos{Index: first}
	return true
}

// giveTo records an event handed to t. The caller holds f.mu: t joins the
// open take transactions in the same critical section, so the ack loop never
// sees its events as neither queued nor taken.
func (f *File) giveTo(t *fileTxn, e takenEvent) {
	if len(t.taken) == 0 {
		f.takers[t] = struct{}{}
		t.minSeq, t.minPos, t.minMs = e.seq, e.pos, e.ms
	} else {
		if e.seq < t.minSeq {
			t.minSeq, t.minPos = e.seq, e.pos
		}
		t.minMs = min(t.minMs, e.ms)
	}
	t.taken = append(t.taken, e)
}

// rollback drops t's staged puts (releasing their capacity) or returns its
// taken events to the head in their original order.
func (f *File) rollback(t *fileTxn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.rec.count > 0 {
		f.unreserveLocked(t.rec.count)
	}
	if len(t.taken) > 0 {
		f.requeue(t)
	}
}

// requeue puts t's taken events back at the head, in order, and forgets t.
// The caller holds f.mu.
func (f *File) requeue(t *fileTxn) {
	f.redeliver = append(slices.Clone(t.taken), f.redeliver...)
	t.taken = nil
	delete(f.takers, t)
}

// skipsFrom reports whether any sequence number at or above seq is
// acknowledged or burnt. The caller holds f.mu.
func (f *File) skipsFrom(seq uint64) bool {
	if n := len(f.acks.Ranges); n > 0 && f.acks.Ranges[n-1].End > seq {
		return true
	}
	for _, g := range f.gaps {
		if g.End > seq {
			return true
		}
	}
	return false
}

// skipped reports whether seq must not be delivered: acknowledged already,
// or burnt by a failed commit. The caller holds f.mu.
func (f *File) skipped(seq uint64) bool {
	if f.acks.isAcked(seq) {
		return true
	}
	for _, g := range f.gaps {
		if seq >= g.Start && seq < g.End {
			return true
		}
	}
	return false
}

// addGap records sequence numbers that will never be delivered, leaving out
// those already acknowledged or recorded. The caller holds f.mu.
func (f *File) addGap(g seqRange) {
	if g.Start < f.acks.Floor {
		g.Start = f.acks.Floor
	}
	covered := append(slices.Clone(f.acks.Ranges), f.gaps...)
	slices.SortFunc(covered, func(a, b seqRange) int { return cmp.Compare(a.Start, b.Start) })
	for _, c := range covered {
		if g.Start >= g.End {
			return
		}
		if c.End <= g.Start || c.Start >= g.End {
			continue
		}
		if c.Start > g.Start {
			f.gaps = append(f.gaps, seqRange{g.Start, c.Start})
		}
		g.Start = max(g.Start, c.End)
	}
	if g.Start < g.End {
		f.gaps = append(f.gaps, g)
	}
}

// --- The ack loop's cycle ---

// ackPlan is what an ack cycle does after prepareAcks.
type ackPlan int

const (
	ackNothing   ackPlan = iota // no take commit and no gap: nothing to write
	ackInstalled                // interval mode: installed in memory, written later
	ackWrite                    // write the candidate, then call acksWritten
)

// prepareAcks computes the ack state after takes commit (and the pending
// gaps are recorded). With synced (fsyncPerTransaction) the candidate is to
// be written and then settled by acksWritten; otherwise it is installed at
// once and syncInterval writes it later.
func (f *File) prepareAcks(takes []*commitReq, synced bool, now int64) (cand *checkpoint, gapsUsed int, plan ackPlan) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(takes) == 0 && len(f.gaps) == 0 && f.visible-f.syncedThrough <= dedupReplayBound {
		return nil, 0, ackNothing
	}
	cand, gapsUsed = f.candidate(takes, now)
	if !synced {
		f.install(cand, takes, gapsUsed, false)
		return cand, gapsUsed, ackInstalled
	}
	return cand, gapsUsed, ackWrite
}

// acksWritten settles the take commits whose candidate ack state was written
// (err nil: it becomes the state, durable) or failed to be (their events go
// back to the head, in order).
func (f *File) acksWritten(cand *checkpoint, takes []*commitReq, gapsUsed int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		f.install(cand, takes, gapsUsed, true)
		return
	}
	// Latest first, so that each goes back ahead of the ones taken after
	// it and the head is in its original order again.
	for i := len(takes) - 1; i >= 0; i-- {
		ts := takes[i].takes
		for j := len(ts) - 1; j >= 0; j-- {
			ts[j].committing = false
			f.requeue(ts[j])
		}
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
		f.dedupSynced(cand)
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
	c := &checkpoint{ackState: f.acks.clone(), LogID: f.logID, Origin: f.origin, OriginDurable: f.originDurable, WrittenMs: now}
	c.Next = f.next
	f.dedupSnapshot(c, now)
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

// intervalCandidate returns the ack state for interval mode's checkpoint
// write, or nil when it has not changed since the last one written. The
// state counts as clean from now on; intervalWritten says how the write went.
func (f *File) intervalCandidate(now int64) *checkpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.dirty {
		return nil
	}
	c := &checkpoint{ackState: f.acks.clone(), LogID: f.logID, Origin: f.origin, OriginDurable: f.originDurable, WrittenMs: now}
	c.Next = f.next
	f.dedupSnapshot(c, now)
	f.dirty = false
	return c
}

// intervalWritten settles interval mode's checkpoint write of c: it becomes
// the synced state, or (err not nil) the state is dirty again.
func (f *File) intervalWritten(c *checkpoint, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.dirty = true
		return
	}
	f.synced = c.ackState
	f.syncedGen++
	f.dedupSynced(c)
}

// --- Reclaim and the backup checkpoint ---

// syncedFloorIndex is the log index of the durable floor: every record
// before it is acknowledged on disk.
func (f *File) syncedFloorIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.synced.FloorPos.Index
}

// backupCandidate returns the durable ack state for the backup checkpoint
// and its generation, or nil when the last backup already holds it.
func (f *File) backupCandidate(now int64) (*checkpoint, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.syncedGen == f.backedUp {
		return nil, 0
	}
	return &checkpoint{ackState: f.synced.clone(), LogID: f.logID, Origin: f.origin, OriginDurable: f.originDurable, WrittenMs: now,
		Dedup: f.syncedDedup, DedupThrough: f.syncedThrough}, f.syncedGen
}

// backedUpTo records that the backup holds generation gen of the durable
// state.
func (f *File) backedUpTo(gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.backedUp = gen
}

// --- A Flume import (file_import.go), before the loops start ---

// importNext returns the sequence number the next imported event gets.
func (f *File) importNext() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.next
}

// importVoided reports whether seq is acknowledged: a partial import that
// was voided.
func (f *File) importVoided(seq uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.acks.isAcked(seq)
}

// imported makes n more events, numbered from f.next in records ending at
// log index last, committed and visible to takers. The records are synced.
func (f *File) imported(n, last uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next += n
	f.visible = last
	f.putSuccesses.Add(int64(n))
}

// importCheckpoint returns the ack state to write after an import, with
// the log ending at last; void, when not empty, acknowledges the numbers of
// an import that failed, so that its records are never delivered.
func (f *File) importCheckpoint(last uint64, void seqRange, now int64) *checkpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := &checkpoint{ackState: f.acks.clone(), LogID: f.logID, Origin: f.origin, OriginDurable: f.originDurable, WrittenMs: now, EndIndex: last}
	c.Next = f.next
	f.dedupSnapshot(c, now)
	// The imported records carry no origins: the table holds through last.
	c.DedupThrough = last
	c.addRanges([]seqRange{void})
	return c
}

// importCheckpointWritten installs c, written and synced, as the ack state.
func (f *File) importCheckpointWritten(c *checkpoint) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acks, f.synced = c.ackState.clone(), c.ackState.clone()
	f.dedupSynced(c)
}
