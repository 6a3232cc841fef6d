package flumefile

import (
	"errors"
	"fmt"
	"iter"
	"os"
)

// Backlog is a Flume file channel's queue as Flume would restart with it:
// the events it would deliver, in the order it would deliver them.
type Backlog struct {
	Report Report
	strict bool
	ptrs   []int64
	refs   map[int32]int32   // Flume's per-file reference counts after replay
	logs   map[int32]logFile // data files by the id in their name
	rd     map[int32]*randReader
}

// Open reads the Flume file channel in o's directories without changing
// them: checkpoint, inflight transactions and a replay of the records
// written after the checkpoint. Every record replay reads is decoded and
// checked; the queued events themselves are read by Events. It fails where
// Flume's own restart fails (a *CorruptError names the file and offset),
// and on encrypted data files (*EncryptedError).
func Open(o Options) (*Backlog, error) {
	logs, err := listLogs(o.DataDirs)
	if err != nil {
		return nil, err
	}
	b := &Backlog{strict: o.FsyncPerTransaction, logs: make(map[int32]logFile), rd: make(map[int32]*randReader)}
	for _, lf := range logs {
		b.Report.Logs = append(b.Report.Logs, lf.path)
		b.logs[lf.id] = lf // a later directory's file of the same id wins, as in Flume's map
	}
	q, err := replay(o, logs, &b.Report)
	if err != nil {
		return nil, err
	}
	b.ptrs, b.refs = q.pointers(), q.refs
	return b, nil
}

// Len is the number of events queued. Events yields fewer when some are
// records Flume skips at take time (blanked by its integrity tool, or
// corrupt with fsyncPerTransaction=false).
func (b *Backlog) Len() int { return len(b.ptrs) }

// Event is one queued event. Headers are in the order Flume stored them;
// a key stored twice counts once, with its last value, as in Flume's event.
type Event struct {
	Headers []Header
	Body    []byte
}

// HeaderMap returns the headers as Flume's event holds them.
func (e Event) HeaderMap() map[string]string {
	m := make(map[string]string, len(e.Headers))
	for _, h := range e.Headers {
		m[h.Key] = h.Value
	}
	return m
}

// Position says where an event is in Flume's files.
type Position struct {
	Index  int // place in the queue, from 0
	File   string
	Offset int64
}

// Events reads the queued events in delivery order, as Flume's takes would:
// a blanked record is skipped; a corrupt one is skipped without
// fsyncPerTransaction and fails the iteration with it (Flume's take fails on
// it forever). at, when not nil, is set to each yielded event's position.
// Event.Body and the Event.Headers slice are reused by the next iteration:
// clone what is kept (the header strings themselves are not reused). Events
// may be called again to read from the start.
func (b *Backlog) Events(at *Position) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		refs := make(map[int32]int32, len(b.refs))
		for k, v := range b.refs {
			refs[k] = v
		}
		var rec record
		for i, p := range b.ptrs {
			ev, ok, err := b.read(p, refs, &rec)
			if err != nil {
				yield(Event{}, err)
				return
			}
			if !ok {
				continue
			}
			if at != nil {
				*at = Position{Index: i, File: b.logs[pointerFile(p)].path, Offset: int64(pointerOffset(p))}
			}
			if !yield(ev, nil) {
				return
			}
		}
	}
}

// read is one of Flume's takes: FlumeEventQueue.removeHead then
// Log.get. ok is false for a record Flume skips.
func (b *Backlog) read(p int64, refs map[int32]int32, rec *record) (ev Event, ok bool, err error) {
	if err := checkPointer(p); err != nil {
		return ev, false, fmt.Errorf("queued event: %w", err)
	}
	id, off := pointerFile(p), pointerOffset(p)
	switch n, has := refs[id]; {
	case !has:
		return ev, false, fmt.Errorf("queued event in log-%d: the file has no reference count, which fails Flume's take", id)
	case n <= 1:
		delete(refs, id)
	default:
		refs[id] = n - 1
	}
	r, err := b.reader(id)
	if err != nil {
		return ev, false, err
	}
	err = r.get(int64(off), rec)
	var ce *corruptErr
	switch {
	case err == nil:
		return Event{Headers: rec.put.Headers, Body: rec.put.Body}, true, nil
	case errors.Is(err, errNoop):
		return ev, false, nil
	case errors.As(err, &ce) && !b.strict:
		return ev, false, nil
	}
	return ev, false, &CorruptError{File: r.file.path, Offset: int64(off), Err: err}
}

func (b *Backlog) reader(id int32) (*randReader, error) {
	if r := b.rd[id]; r != nil {
		return r, nil
	}
	lf, ok := b.logs[id]
	if !ok {
		return nil, fmt.Errorf("an event is queued in log-%d, which is in none of the data directories", id)
	}
	// Flume reads the metadata before the first event of a file.
	if _, err := readLogMetaAt(lf.path); err != nil {
		return nil, err
	}
	w, err := openWindow(lf.path)
	if err != nil {
		return nil, err
	}
	r := &randReader{file: lf, w: w}
	b.rd[id] = r
	return r, nil
}

func readLogMetaAt(log string) (logMeta, error) {
	mp := log + metaSuffix
	if _, err := os.Stat(mp); err != nil {
		return logMeta{}, fmt.Errorf("%s: %w", log, err)
	}
	return readLogMeta(log, mp)
}

// Close releases the open files. The Backlog can be read again after it.
func (b *Backlog) Close() error {
	var errs []error
	for id, r := range b.rd {
		errs = append(errs, r.w.close())
		delete(b.rd, id)
	}
	return errors.Join(errs...)
}

// randReader is LogFile.RandomReader: it reads the event of a put record.
type randReader struct {
	file logFile
	w    *window
}

// errNoop: the record was blanked by Flume's integrity tool (OP_NOOP).
var errNoop = errors.New("record blanked (OP_NOOP)")

func (r *randReader) get(off int64, rec *record) error {
	op, err := r.w.at(off, 1)
	if err != nil {
		return err
	}
	switch {
	case len(op) == 0:
		return fmt.Errorf("offset past the end of the file (%d bytes)", r.w.size)
	case op[0] == opNoop:
		return errNoop
	case op[0] != opRecord:
		return &corruptErr{fmt.Errorf("op code %#x where a record should start", op[0])}
	}
	payload, err := readPayload(r.w, off)
	if errors.Is(err, errLengthCut) {
		return fmt.Errorf("the file ends inside the record's length")
	}
	if err != nil {
		return err
	}
	*rec = record{put: putEvent{Headers: rec.put.Headers[:0]}} // the headers' slice is reused
	if err := decodeRecord(payload, rec); err != nil {
		return err
	}
	if rec.typ != typePut {
		return fmt.Errorf("a queued pointer leads to a record of type %d, not a put", rec.typ)
	}
	return nil
}
