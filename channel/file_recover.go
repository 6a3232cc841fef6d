package channel

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Restart. The data log has been opened (its torn tail repaired); what is left
// is to find the ack state and check it against the log, without reading the
// backlog: two checkpoint slots, and the headers of the first record (only
// when there is no usable checkpoint) and of the last one.

// maxHeaderProbe bounds how many damaged records restart steps over looking
// for a readable first or last record.
const maxHeaderProbe = 64

// recover sets the in-memory state from the checkpoint and the log, and
// writes the result back as a fresh checkpoint.
func (f *File) recover(hasID bool) error {
	began := time.Now()
	first, last := f.wal.FirstIndex(), f.wal.LastIndex()
	empty := last < first
	ck, source := f.loadCheckpoint(hasID, empty)
	f.chooseOrigin(ck, source)
	st, notes := resolveAckState(ck, first, last, f.probeHeader)
	for _, n := range notes {
		f.log.Log(context.Background(), n.level, "file channel: "+n.msg, n.attrs...)
	}
	next := st.Next

	visible := last
	if empty {
		visible = first - 1
	}
	dedup := f.rebuildDedup(ck, first, last)
	f.resume(st, next, visible, dedup)

	// A fresh checkpoint makes the adjustments above durable and creates the
	// slot files of a new channel.
	c := &checkpoint{ackState: st.clone(), LogID: f.logID, Origin: f.origin, OriginDurable: f.originDurable, WrittenMs: time.Now().UnixMilli(), EndIndex: last,
		Dedup: dedup.AppendBinary(nil), DedupThrough: visible}
	if err := f.ckpt.write(c, true); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	f.dedupWritten(c)
	f.log.Info("file channel open", "queued", st.queuedAt(next), "floor", st.Floor, "next", next,
		"firstIndex", first, "lastIndex", last, "ackState", source, "took", time.Since(began))
	return nil
}

// rebuildDedup returns the dedup table restart resumes with (replayDedup).
// The put loop has not started: reading f.wal needs no lock.
func (f *File) rebuildDedup(ck *checkpoint, first, last uint64) *Origins {
	opts := f.opts.Dedup
	if opts.Log == nil {
		opts.Log = f.log
	}
	o, read, counted := replayDedup(ck, first, last, opts, func(i uint64) ([]byte, error) { return f.wal.Read(i) })
	if read > 0 {
		f.log.Debug("file channel: dedup table rebuilt", "origins", o.Len(), "through", ck.DedupThrough,
			"recordsRead", read, "withOrigins", counted)
	}
	return o
}

// replayDedup rebuilds the dedup table of a log whose records run from first
// to last: the one in the checkpoint ck, plus the origin trailers of the
// records after the index it was taken at, which the put loop keeps to a few
// hundred (dedupReplayBound) whatever the backlog. A record past that index
// whose numbers the same checkpoint acknowledges was voided (a commit that
// failed after its record reached the disk: its sender was told so and
// resends), so it does not count; any other record there is delivered after
// restart, so its numbers are committed. Without a checkpoint, or with one
// from before dedup, the table starts empty: forgetting costs duplicates of
// what is resent, never a loss. It returns how many records it read and how
// many of them counted.
func replayDedup(ck *checkpoint, first, last uint64, opts OriginsOptions, read func(uint64) ([]byte, error)) (o *Origins, records, counted int) {
	if ck == nil || !ck.HasDedup {
		return NewOrigins(opts), 0, 0
	}
	o, _, err := DecodeOrigins(ck.Dedup, opts)
	if err != nil { // decodeCheckpoint parsed it already
		return NewOrigins(opts), 0, 0
	}
	for i := max(ck.DedupThrough+1, first); i <= last; i++ {
		records++
		rec, err := read(i)
		if err != nil {
			continue // damaged: restart and takes report it; forgetting costs duplicates only
		}
		h, err := decodeRecordHeader(rec)
		if err != nil || h.Flags&recordFlagOrigins == 0 || ck.isAcked(h.FirstSeq) {
			continue
		}
		if _, st, err := splitOriginTrailer(rec, h); err == nil {
			st.commitTo(o, h.CommitMs)
			counted++
		}
	}
	return o, records, counted
}

// loadCheckpoint reads the primary checkpoint, falling back to the backup,
// and returns it (nil when neither is usable) and where it came from.
func (f *File) loadCheckpoint(hasID, emptyLog bool) (*checkpoint, string) {
	ck, slots := readCheckpoint(f.opts.CheckpointDir)
	if ck != nil {
		f.ckpt.last = ck.Generation // the next write must go to the other slot
	}
	for _, s := range slots {
		if s.Err != nil {
			f.log.Warn("file channel: checkpoint slot unreadable", "err", s.Err)
		}
	}
	backupDir := ""
	if f.backup != nil {
		backupDir = f.opts.BackupCheckpointDir
	}
	c := chooseCheckpoint(ck, slots, backupDir, f.logID, hasID, emptyLog)
	if c.backup != nil {
		f.backup.last = c.backup.Generation
	}
	switch c.source {
	case "backup checkpoint":
		f.log.Warn("file channel: primary checkpoint "+c.why+"; using the backup (events taken since it are delivered again)",
			"backupWritten", time.UnixMilli(c.ck.WrittenMs))
	case "checkpoint", "new":
	default:
		f.log.Warn("file channel: checkpoint "+c.why+"; delivering every record in the log again (duplicates, never loss)",
			"dir", f.opts.CheckpointDir)
	}
	return c.ck, c.source
}

// checkpointChoice is what a restart resumes from.
type checkpointChoice struct {
	ck     *checkpoint // nil: none usable, every record is delivered again
	source string      // "checkpoint", "backup checkpoint", "new" or "none (why)"
	why    string      // why the primary is not used; "" when it is
	backup *checkpoint // the backup as read, usable or not; nil when none
}

// chooseCheckpoint is restart's choice, shared with inspection: the primary
// checkpoint ck (read from slots) when it belongs to the log id, else the
// backup in backupDir ("" when none) when it does, else none; "new" when
// the primary is simply missing and the log is empty.
func chooseCheckpoint(ck *checkpoint, slots [2]slotReport, backupDir string, id [16]byte, hasID, emptyLog bool) checkpointChoice {
	usable := func(c *checkpoint) bool { return c != nil && hasID && c.LogID == id }
	if usable(ck) {
		return checkpointChoice{ck: ck, source: "checkpoint"}
	}
	c := checkpointChoice{why: "missing"}
	switch {
	case ck != nil:
		c.why = "from another data log (the data directory was replaced)"
	case slots[0].Err != nil || slots[1].Err != nil:
		c.why = "unreadable"
	}
	if backupDir != "" {
		c.backup, _ = readCheckpoint(backupDir)
		if usable(c.backup) {
			c.ck, c.source = c.backup, "backup checkpoint"
			return c
		}
	}
	c.source = "none (" + c.why + ")"
	if emptyLog && c.why == "missing" {
		c.source = "new"
	}
	return c
}

// probeHeader reads the header of the first readable record from index from
// toward to (step +1 or -1), stepping over at most maxHeaderProbe damaged ones.
func (f *File) probeHeader(from, to uint64, step int) (recordHeader, uint64, bool) {
	if f.wal.LastIndex() < f.wal.FirstIndex() {
		return recordHeader{}, 0, false
	}
	i := from
	for n := 0; n < maxHeaderProbe; n++ {
		rec, err := f.wal.Read(i)
		if err == nil {
			h, herr := decodeRecordHeader(rec)
			if herr == nil {
				return h, i, true
			}
			err = herr
		}
		if !isDamaged(err) {
			f.log.Warn("file channel: read record header", "index", i, "err", err)
		}
		if i == to {
			break
		}
		if step > 0 {
			i++
		} else {
			i--
		}
	}
	return recordHeader{}, 0, false
}

// resolveNote is something restart adjusted, for the log or an inspection.
type resolveNote struct {
	level slog.Level
	msg   string
	attrs []any
}

// headerProbe returns the header of the first readable record from index
// from toward to (step +1 or -1), and its index.
type headerProbe func(from, to uint64, step int) (recordHeader, uint64, bool)

// resolveAckState decides the ack state a restart uses, from the checkpoint
// (nil when none is usable: then every record present is queued) and the
// log's bounds, reading at most the first and last records' headers. It never
// loses an event the log holds above the checkpoint's floor; what the
// checkpoint knew and the log no longer holds is made void.
func resolveAckState(ck *checkpoint, first, last uint64, probe headerProbe) (ackState, []resolveNote) {
	var notes []resolveNote
	note := func(level slog.Level, msg string, attrs ...any) {
		notes = append(notes, resolveNote{level, msg, attrs})
	}
	empty := last < first
	var st ackState
	if ck != nil {
		st = ck.ackState.clone()
	} else {
		st.FloorPos = logPos{Index: first}
		if h, _, ok := probe(first, last, +1); ok {
			st.Floor = h.FirstSeq
		}
		st.Next = st.Floor
	}

	// Where the log ends, in sequence numbers: known without a read when the
	// log still ends where the checkpoint saw it end (a clean shutdown).
	end := st.Next
	if ck == nil || ck.EndIndex == 0 || ck.EndIndex != last || empty {
		if h, _, ok := probe(last, first, -1); ok {
			end = h.EndSeq()
		}
	}
	next := max(st.Next, end)
	if st.Next > end && end >= st.Floor {
		// The checkpoint knew numbers the log does not hold: commits that were
		// being synced when the process died (the checkpoint is written beside
		// the log's sync), or, in interval mode, the window of loss.
		note(slog.LevelInfo, "sequence numbers in the checkpoint past the end of the log are void", "from", end, "to", st.Next)
		st.addRanges([]seqRange{{end, st.Next}})
	}
	st.Next = next

	switch {
	case st.FloorPos.Index < first && !empty:
		// The records below the log's first were released (an older backup
		// checkpoint) or lost: nothing below the first record can be had.
		h, _, ok := probe(first, last, +1)
		if ok && h.FirstSeq > st.Floor {
			note(slog.LevelWarn, "checkpoint floor is below the log's first record", "floor", st.Floor, "firstSeq", h.FirstSeq)
			st.setFloor(h.FirstSeq, logPos{Index: first})
		} else {
			st.FloorPos = logPos{Index: first}
		}
	case st.FloorPos.Index > last+1 || empty && st.Floor < st.Next:
		note(slog.LevelError, "checkpoint floor is past the end of the log; the missing events are lost",
			"floorIndex", st.FloorPos.Index, "lastIndex", last, "lost", st.queuedAt(st.Next))
		st.Ranges = nil
		st.Floor, st.FloorPos = st.Next, logPos{Index: last + 1}
	}
	if len(st.Ranges) > 0 && st.Ranges[0].Start <= st.Floor && st.Ranges[0].End == st.Next {
		// Everything from the floor on is void: the floor is the log's end.
		st.Floor, st.FloorPos, st.Ranges = st.Next, logPos{Index: last + 1}, nil
	}
	return st, notes
}
