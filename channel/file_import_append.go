package channel

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/flumed/flumed/channel/flumefile"
)

// The import's copy of a Flume backlog into the log, in two goroutines so
// that reading Flume's files overlaps compressing, writing and syncing the
// log (a segment roll syncs the segment it seals):
//
//   - the reader (a goroutine this file starts and waits for) owns the
//     Backlog and its files: it reads the events in Flume's order and
//     encodes them into records of about importRecordBytes, handing them
//     over in batches of about importAppendBytes, at most importQueue ahead;
//   - the caller (open's goroutine, which owns the log until the commit
//     loops start) finishes each record (compression), numbers it from the
//     next sequence number, appends each batch, then syncs once at the end,
//     and hands the batch's buffers back to the reader (the log copied
//     them), so that the reader does not allocate and zero a megabyte per
//     record.
//
// Either side stopping (an error, or the end) stops the other; the reader
// has exited before appendBacklog returns.

// How the import stops trying to compress what does not compress: a
// backlog is mostly alike, so after importMisses records in a row that
// compression did not shrink, the next importSkips are written without
// trying (a try costs a pass over the record).
const (
	importMisses = 4
	importSkips  = 64
)

// importBatch is records to finish and append, or the reader's error.
type importBatch struct {
	recs []recordBuilder
	size int64
	err  error // from Flume's side: a *flumeSideError
}

// appendBacklog appends the events of b after the first skip ones, syncs the
// log and makes them visible. It returns how many events it appended and
// the log's last index, also on error (the records appended are in the log).
func (f *File) appendBacklog(b *flumefile.Backlog, skip uint64) (n, last uint64, err error) {
	recordBytes, appendBytes := importRecordBytes, int64(importAppendBytes)
	if t := f.opts.importTest; t != nil && t.recordBytes > 0 {
		recordBytes, appendBytes = t.recordBytes, int64(t.appendBytes)
	}
	var flags byte
	if f.opts.FsyncPerTransaction {
		flags |= recordFlagSynced
	}
	batches := make(chan importBatch, importQueue)
	spare := make(chan [][]byte, 1) // one batch's buffers, back to the reader
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(batches)
		encodeBacklog(b, skip, recordBytes, appendBytes, batches, spare, stop)
	}()
	defer func() {
		close(stop)
		for range batches { // let the reader see stop and exit
		}
		wg.Wait()
	}()

	last = f.wal.LastIndex()
	seq, now := f.importNext(), time.Now().UnixMilli()
	var misses, skips int
	recs := make([][]byte, 0, 64)
	for bt := range batches {
		if bt.err != nil {
			return n, last, bt.err
		}
		recs, bt.size = recs[:0], 0
		var events uint64
		for i := range bt.recs {
			rb := &bt.recs[i]
			try := f.opts.Compress && skips == 0
			rec := rb.finish(flags, try, f.opts.CompressAbove)
			switch {
			case skips > 0:
				skips--
			case !try:
			case rec[2]&recordFlagS2 != 0:
				misses = 0
			default:
				if misses++; misses >= importMisses {
					misses, skips = 0, importSkips
				}
			}
			rec = f.opts.Keys.seal(rec) // a Flume backlog lands encrypted too
			stampRecord(rec, seq+events, now)
			events += uint64(rb.count)
			recs = append(recs, rec)
			bt.size += int64(len(rec))
		}
		if reason := f.space.refuse(bt.size); reason != "" {
			return n, last, fmt.Errorf("%s: %w", reason, ErrFull)
		}
		_, l, err := f.wal.Append(recs...)
		if err != nil {
			return n, last, err
		}
		// The log holds copies: the builders' buffers can be filled again.
		bufs := make([][]byte, len(bt.recs))
		for i := range bt.recs {
			bufs[i] = bt.recs[i].buf
		}
		select {
		case spare <- bufs:
		default: // the reader has not taken the last ones yet: let these go
		}
		f.space.wrote(bt.size)
		last, n, seq = l, n+events, seq+events
		f.importStep("appended")
	}
	// The records are durable before the marker says "imported".
	if err := f.wal.Sync(); err != nil {
		return n, last, err
	}
	f.imported(n, last)
	return n, last, nil
}

// encodeBacklog is the reader's side: it sends batches of records holding
// the events of b after the first skip, building them in the buffers spare
// hands back when there are some.
func encodeBacklog(b *flumefile.Backlog, skip uint64, recordBytes int, appendBytes int64,
	out chan<- importBatch, spare <-chan [][]byte, stop <-chan struct{}) {
	send := func(bt importBatch) bool {
		select {
		case out <- bt:
			return true
		case <-stop:
			return false
		}
	}
	var (
		rb   recordBuilder
		bt   importBatch
		seen uint64
		free [][]byte
	)
	// newRecord starts rb in a spare buffer, or a new one.
	newRecord := func() {
		if len(free) == 0 {
			select {
			case free = <-spare:
			default:
			}
		}
		for len(free) > 0 {
			buf := free[len(free)-1]
			free = free[:len(free)-1]
			if cap(buf) >= recordBytes {
				rb.buf = buf[:0]
				break
			}
		}
		if rb.buf == nil {
			rb.grow(recordBytes + 64<<10)
		}
		rb.reset()
	}
	closeRecord := func() {
		if rb.count == 0 {
			return
		}
		bt.recs = append(bt.recs, rb)
		bt.size += int64(len(rb.buf))
		rb = recordBuilder{} // the batch keeps the buffer
	}
	for ev, err := range b.Events(nil) {
		if err != nil {
			closeRecord()
			if len(bt.recs) > 0 && !send(bt) {
				return
			}
			send(importBatch{err: &flumeSideError{err}})
			return
		}
		if seen++; seen <= skip {
			continue
		}
		if rb.buf == nil {
			newRecord()
		}
		rb.buf = appendFlumeEvent(rb.buf, ev)
		rb.count++
		if rb.bodyLen() >= recordBytes {
			closeRecord()
			if bt.size >= appendBytes {
				if !send(bt) {
					return
				}
				bt = importBatch{}
			}
		}
	}
	closeRecord()
	if len(bt.recs) > 0 {
		send(bt)
	}
}

// appendFlumeEvent encodes a Flume event as appendAvroEvent encodes an
// Event, straight from the headers as Flume stored them: a key stored twice
// counts once, with its last value, as in the HashMap Flume builds.
func appendFlumeEvent(dst []byte, ev flumefile.Event) []byte {
	hs := ev.Headers
	if dup(hs) {
		return appendAvroEvent(dst, Event{Headers: ev.HeaderMap(), Body: ev.Body})
	}
	if len(hs) > 0 {
		dst = binary.AppendVarint(dst, int64(len(hs)))
		for _, h := range hs {
			dst = binary.AppendVarint(dst, int64(len(h.Key)))
			dst = append(dst, h.Key...)
			dst = binary.AppendVarint(dst, int64(len(h.Value)))
			dst = append(dst, h.Value...)
		}
	}
	dst = append(dst, 0) // end of map
	dst = binary.AppendVarint(dst, int64(len(ev.Body)))
	return append(dst, ev.Body...)
}

// dup reports whether a key appears twice.
func dup(hs []flumefile.Header) bool {
	if len(hs) > 16 {
		seen := make(map[string]struct{}, len(hs))
		for _, h := range hs {
			if _, ok := seen[h.Key]; ok {
				return true
			}
			seen[h.Key] = struct{}{}
		}
		return false
	}
	for i := range hs {
		for j := i + 1; j < len(hs); j++ {
			if hs[i].Key == hs[j].Key {
				return true
			}
		}
	}
	return false
}
