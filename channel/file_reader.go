package channel

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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
// place the floor). This file reads the records; the state they move
// through, and every change to it, is in file_state.go.
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
	ms     int64  // the record's commit time, unix ms
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
		step, idx, rec, err := f.handOutHeld(t, &out, max)
		if err != nil {
			return nil, err
		}
		if step == takeDone {
			break
		}
		if step == takeAgain {
			continue
		}
		var d decoded
		if rec != nil {
			d.h, d.events, d.err = decodeRecord(rec, f.opts.Keys)
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
		f.loadCursor(idx, h, events)
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
	return f.rd.read(f.wal, i, f.opts.Keys)
}

// decoded is a record read from the log and decoded, or why it could not be.
type decoded struct {
	h      recordHeader
	events []Event
	err    error
}

// decode decodes a record read from the log; its events alias payload, so
// payload must be the caller's own copy.
func decode(payload []byte, keys *Keyring) decoded {
	var d decoded
	d.h, d.events, d.err = decodeRecord(payload, keys)
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
	keys  *Keyring // opens sealed records
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
			it.rec, it.bytes = decode(bytes.Clone(rec.Payload), a.keys), int64(len(rec.Payload))
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

func (lr *logReader) read(l *wal.Log, i uint64, keys *Keyring) decoded {
	if lr.log != l {
		lr.close()
	}
	if a := lr.ahead; a != nil {
		select {
		case it := <-a.items:
			return lr.took(it, i, keys)
		case <-a.done:
			// Stopped at the end or on an error; maybe with items left.
			select {
			case it := <-a.items:
				return lr.took(it, i, keys)
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
		lr.readAhead(keys)
		return decode(payload, keys)
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
func (lr *logReader) took(it aheadItem, i uint64, keys *Keyring) decoded {
	a := lr.ahead
	a.bytes.Add(-it.bytes)
	select {
	case a.space <- struct{}{}:
	default:
	}
	if it.want != i {
		l := lr.log
		lr.close()
		return lr.read(l, i, keys)
	}
	return it.rec
}

// readAhead hands the reader to a read-ahead goroutine.
func (lr *logReader) readAhead(keys *Keyring) {
	a := &readAhead{
		r:     lr.r,
		keys:  keys,
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
