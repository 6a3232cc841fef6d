package channel

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"

	"github.com/flumed/flumed/wal"
)

// The take side of the file channel: the redelivery queue and the cursor.
//
// Events come out in this order: rolled-back events first (f.redeliver, head
// first), then the cursor's record, then the next records of the log up to
// f.visible, the last record whose commit has returned. The cursor holds one
// decoded record at a time (f.cur, owned by the goroutine holding f.readMu),
// and its position (f.cursor, under f.mu, because the ack loop needs it to
// place the floor).
//
// Sequence numbers are the authority, positions only hints: a record whose
// first sequence number is past the cursor's leaves a gap (a damaged record
// was skipped, or a failed commit burnt its numbers), which is acknowledged
// as never deliverable; events the ack state already holds (ranges left by
// concurrent takes before a restart) are skipped.

// cursorPos is where the cursor stands: the next event to hand out.
type cursorPos struct {
	pos logPos // its log position
	seq uint64 // its sequence number, or the one expected next
}

// cursorRecord is the decoded record the cursor is in.
type cursorRecord struct {
	loaded bool
	index  uint64
	first  uint64 // sequence number of events[0]
	events []Event
}

// tailCache keeps the records of the last commits, so that takers keeping up
// with producers decode them from memory instead of reading the log. It holds
// consecutive indexes [first, first+len(recs)) and at most tailCacheBytes.
type tailCache struct {
	first uint64
	recs  [][]byte
	bytes int
}

const tailCacheBytes = 4 << 20

func (c *tailCache) add(first uint64, recs [][]byte) {
	if len(c.recs) == 0 || c.first+uint64(len(c.recs)) != first {
		c.recs, c.bytes, c.first = c.recs[:0], 0, first
	}
	// Memory held is what counts: a record's capacity, not its length.
	for _, r := range recs {
		c.recs = append(c.recs, r)
		c.bytes += cap(r)
	}
	drop := 0
	for c.bytes > tailCacheBytes && drop < len(c.recs) {
		c.bytes -= cap(c.recs[drop])
		c.recs[drop] = nil
		drop++
	}
	if drop > 0 {
		c.recs = append(c.recs[:0], c.recs[drop:]...)
		c.first += uint64(drop)
	}
}

func (c *tailCache) get(i uint64) []byte {
	if i < c.first || i >= c.first+uint64(len(c.recs)) {
		return nil
	}
	return c.recs[i-c.first]
}

func (c *tailCache) reset() { c.recs, c.bytes = nil, 0 }

// take hands out up to max events to t.
func (f *File) take(t *fileTxn, max int) ([]Event, error) {
	f.readMu.Lock()
	defer f.readMu.Unlock()
	var out []Event
	for len(out) < max {
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			return nil, f.errClosed()
		}
		f.popRedeliver(t, &out, max)
		if len(out) == max {
			f.mu.Unlock()
			break
		}
		if f.cur.loaded {
			f.handOut(t, &out, max)
			f.mu.Unlock()
			continue
		}
		idx := f.cursor.pos.Index
		if idx > f.visible {
			f.mu.Unlock()
			break
		}
		rec := f.tail.get(idx)
		f.mu.Unlock()
		var d decoded
		if rec != nil {
			d.h, d.events, d.err = decodeRecord(rec)
		} else {
			d = f.readRecord(idx)
		}
		h, events, err := d.h, d.events, d.err
		if err != nil {
			if errors.Is(err, wal.ErrTruncated) && f.jumpToFirst(idx) {
				continue
			}
			if !isDamaged(err) {
				if len(out) > 0 {
					break // hand out what we have; the next Take meets the error again
				}
				return nil, fmt.Errorf("channel %s: take: %w", f.name, err)
			}
			f.skipDamaged(idx, err)
			continue
		}
		f.mu.Lock()
		f.loadCursor(idx, h, events)
		f.mu.Unlock()
	}
	return out, nil
}

// readRecord reads record i from the log, sequentially when it can: the
// reader stays open between calls and is only re-created when the cursor
// jumped (the tail cache served the records in between, or a failure
// replaced the log). The caller holds f.readMu.
func (f *File) readRecord(i uint64) decoded {
	f.walMu.RLock()
	defer f.walMu.RUnlock()
	if f.wal == nil {
		return decoded{err: errors.New("data log unavailable (reopening after a failure)")}
	}
	return f.rd.read(f.wal, i)
}

// decoded is a record read from the log and decoded, or why it could not be.
type decoded struct {
	h      recordHeader
	events []Event
	err    error
}

// decode decodes a record read from the log; its events alias payload, so
// payload must be the caller's own copy.
func decode(payload []byte) decoded {
	var d decoded
	d.h, d.events, d.err = decodeRecord(payload)
	return d
}

// logReader is a sequential reader of the data log and the index it returns
// next. Once a read has come from the files (not the tail cache), it reads
// ahead in a goroutine of its own, so that the next records are read and
// copied while the taker waits for its commit's fsync: a sink draining a cold
// backlog otherwise spends every batch first reading, then syncing.
type logReader struct {
	log   *wal.Log
	r     *wal.Reader // nil while ahead holds it
	next  uint64
	ahead *readAhead
}

// Read-ahead bounds: what the goroutine may hold that nobody took yet.
const (
	aheadRecords = 64
	aheadBytes   = 4 << 20
)

// readAhead is the goroutine reading on from a wal.Reader. It owns r and
// next until done is closed; then they are the logReader's again.
type readAhead struct {
	r     *wal.Reader
	next  uint64
	items chan aheadItem
	bytes atomic.Int64 // payload bytes in items
	space chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

// aheadItem is what Next returned when the reader stood at want, decoded:
// a record, or a *wal.CorruptionError (other errors end the goroutine).
type aheadItem struct {
	want  uint64
	rec   decoded
	bytes int64
}

func (a *readAhead) run() {
	defer close(a.done)
	for {
		for a.bytes.Load() >= aheadBytes {
			select {
			case <-a.space:
			case <-a.stop:
				return
			}
		}
		select {
		case <-a.stop:
			return
		default:
		}
		want := a.next
		rec, err := a.r.Next()
		it := aheadItem{want: want}
		var ce *wal.CorruptionError
		switch {
		case err == nil:
			it.rec, it.bytes = decode(bytes.Clone(rec.Payload)), int64(len(rec.Payload))
			a.next = rec.Index + 1
		case errors.As(err, &ce):
			it.rec.err = err
			a.next = ce.Index + 1
		default:
			// io.EOF (caught up with the writer) or an error ending the
			// reader: the taker's own read meets it again.
			return
		}
		a.bytes.Add(it.bytes)
		select {
		case a.items <- it:
		case <-a.stop:
			return
		}
	}
}

func (lr *logReader) read(l *wal.Log, i uint64) decoded {
	if lr.log != l {
		lr.close()
	}
	if a := lr.ahead; a != nil {
		select {
		case it := <-a.items:
			return lr.took(it, i)
		case <-a.done:
			// Stopped at the end or on an error; maybe with items left.
			select {
			case it := <-a.items:
				return lr.took(it, i)
			default:
			}
			lr.r, lr.next, lr.ahead = a.r, a.next, nil
		}
	}
	if lr.r == nil || lr.next != i {
		lr.close()
		r, err := l.NewReader(i)
		if err != nil {
			return decoded{err: err}
		}
		lr.log, lr.r, lr.next = l, r, i
	}
	rec, err := lr.r.Next()
	if err == nil {
		lr.next = rec.Index + 1
		// The payload aliases the reader's buffer; the events decoded from
		// it must outlive the next read, which starts now.
		payload := bytes.Clone(rec.Payload)
		lr.readAhead()
		return decode(payload)
	}
	var ce *wal.CorruptionError
	if errors.As(err, &ce) {
		lr.next = ce.Index + 1
		return decoded{err: err}
	}
	lr.close()
	if err == io.EOF {
		return decoded{err: fmt.Errorf("read %d: %w", i, wal.ErrNotFound)}
	}
	return decoded{err: err}
}

// took returns an item read ahead if it is the answer to a read at i, and
// otherwise (the cursor jumped) drops the read-ahead and reads i afresh.
func (lr *logReader) took(it aheadItem, i uint64) decoded {
	a := lr.ahead
	a.bytes.Add(-it.bytes)
	select {
	case a.space <- struct{}{}:
	default:
	}
	if it.want != i {
		l := lr.log
		lr.close()
		return lr.read(l, i)
	}
	return it.rec
}

// readAhead hands the reader to a read-ahead goroutine.
func (lr *logReader) readAhead() {
	a := &readAhead{
		r:     lr.r,
		next:  lr.next,
		items: make(chan aheadItem, aheadRecords),
		space: make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	lr.r, lr.ahead = nil, a
	go a.run()
}

func (lr *logReader) close() {
	if a := lr.ahead; a != nil {
		close(a.stop)
		<-a.done
		a.r.Close()
	}
	if lr.r != nil {
		lr.r.Close()
	}
	*lr = logReader{}
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
// by sequence number. The caller holds f.readMu and f.mu.
func (f *File) loadCursor(idx uint64, h recordHeader, events []Event) {
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
	f.cur = cursorRecord{loaded: true, index: idx, first: h.FirstSeq, events: events}
	f.cursor = cursorPos{pos: logPos{Index: idx, Offset: off}, seq: want}
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
		f.giveTo(t, takenEvent{Event: e, seq: seq, pos: logPos{Index: c.index, Offset: off}})
		off++
	}
	if int(off) >= len(c.events) {
		f.cursor = cursorPos{pos: logPos{Index: c.index + 1}, seq: c.first + uint64(len(c.events))}
		f.cur = cursorRecord{}
		return
	}
	f.cursor = cursorPos{pos: logPos{Index: c.index, Offset: off}, seq: c.first + uint64(off)}
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
