package channel

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"time"

	"github.com/flumed/flumed/internal/fsutil"
	"github.com/flumed/flumed/wal"
)

// Read-only inspection of a file channel's directories, for the
// "flumed wal inspect|verify|dump" commands. Nothing here writes, creates,
// locks or repairs anything: it works on a stopped channel, on a copy, and
// beside a running agent (whose lock it only tests). What it reports is what
// a restart would see: the same checkpoint choice and the same adjustments
// (resolveAckState), without applying them.

// FileReport describes a file channel as it is on disk.
type FileReport struct {
	CheckpointDir, DataDir string
	BackupCheckpointDir    string // "" when none was given
	// Locked is true when a running process holds the channel's directories;
	// LockPID is its process id when it wrote one.
	Locked  bool
	LockPID int
	// LogID is the data log's identity (hex), "" when the directory has none.
	LogID string
	// Log is the data log's segments, index range, size and torn tail.
	Log *wal.Info
	// Checkpoint is the ack state restart would start from, nil when there is
	// none usable (then every record present is delivered again).
	Checkpoint *FileCheckpoint
	// CheckpointSource says where it comes from: "checkpoint", "backup
	// checkpoint (...)", "new" (an empty channel), or "none
	// (missing|unreadable|from another data log)".
	CheckpointSource string
	// Slots are the two primary checkpoint slots as found.
	Slots [2]FileCheckpointSlot

	// Queued is the number of events a restart would deliver; Floor and Next
	// bound their sequence numbers, AckedRanges are the ones skipped.
	Queued      uint64
	Floor, Next uint64
	AckedRanges []SeqRange
	FloorIndex  uint64 // log index of the record holding Floor
	// QueuedBytes is the size of the segments from the one holding the floor
	// on: the disk the queue occupies (give or take a segment).
	QueuedBytes int64
	// OldestQueued and NewestQueued are the commit times of the record holding
	// the floor and of the last record; zero when nothing is queued.
	OldestQueued, NewestQueued time.Time
	// Durability is the mode that wrote the last record: "fsyncPerTransaction"
	// (durable at commit) or "fsyncInterval" (within a window of loss); ""
	// when the log is empty.
	Durability string
	// Damage lists what is broken: a torn tail the next open will cut,
	// unreadable checkpoint slots, a missing log id.
	Damage []string
	// Notes are what a restart would adjust (void sequence numbers, a floor
	// outside the log).
	Notes []string

	// Origin is the channel's own identity to the next hop (hex), "" when
	// the checkpoint has none.
	Origin string
	// Dedup is the receiver's dedup table a restart would rebuild: per
	// upstream origin, the sequence numbers committed here and when it was
	// last heard from; DedupThrough is the log index the checkpoint's table
	// was taken at, and DedupReplayed the records after it that restart
	// reads to complete it.
	Dedup         []OriginInfo
	DedupThrough  uint64
	DedupReplayed int

	state ackState
}

// FileCheckpoint is one checkpoint slot's content.
type FileCheckpoint struct {
	Generation  uint64
	Written     time.Time
	LogID       string
	Floor       uint64
	FloorIndex  uint64
	FloorOffset uint32
	Next        uint64
	AckedRanges []SeqRange
}

// FileCheckpointSlot is what one slot file holds.
type FileCheckpointSlot struct {
	Path  string
	State *FileCheckpoint // nil when missing or damaged
	Err   string          // why State is nil, "" when the file is missing
}

// SeqRange is the sequence numbers [Start, End).
type SeqRange struct{ Start, End uint64 }

func exportCheckpoint(c *checkpoint) *FileCheckpoint {
	if c == nil {
		return nil
	}
	return &FileCheckpoint{
		Generation: c.Generation, Written: time.UnixMilli(c.WrittenMs), LogID: hex.EncodeToString(c.LogID[:]),
		Floor: c.Floor, FloorIndex: c.FloorPos.Index, FloorOffset: c.FloorPos.Offset, Next: c.Next,
		AckedRanges: exportRanges(c.Ranges),
	}
}

func exportRanges(rs []seqRange) []SeqRange {
	out := make([]SeqRange, len(rs))
	for i, r := range rs {
		out[i] = SeqRange(r)
	}
	return out
}

// InspectFile reads a file channel's checkpoint and data directories without
// changing anything. It costs a few reads of the last segment and of the
// segment holding the floor, whatever the backlog.
func InspectFile(checkpointDir, dataDir string) (*FileReport, error) {
	return InspectFileDirs(FileDirs{Checkpoint: checkpointDir, Data: dataDir})
}

// FileDirs are a file channel's directories: checkpointDir, the first of
// dataDirs, and backupCheckpointDir ("" unless useDualCheckpoints).
type FileDirs struct {
	Checkpoint, BackupCheckpoint, Data string
	// DataDirs is every directory of dataDirs (empty: Data alone), where a
	// Flume file channel's data files are looked for.
	DataDirs []string
	// SkipCorrupt is fsyncPerTransaction = false: a Flume backlog's corrupt
	// records are skipped, as Flume skips them, rather than refused.
	SkipCorrupt bool
}

// InspectFileDirs is InspectFile for a channel that may keep a backup
// checkpoint: like a restart, it falls back to the backup when the primary
// checkpoint is unusable.
func InspectFileDirs(d FileDirs) (*FileReport, error) {
	checkpointDir, dataDir := d.Checkpoint, d.Data
	rep := &FileReport{CheckpointDir: checkpointDir, BackupCheckpointDir: d.BackupCheckpoint, DataDir: dataDir}
	for _, d := range []string{checkpointDir, dataDir} {
		locked, pid, err := fsutil.Probe(d)
		if err != nil {
			return nil, fmt.Errorf("probe lock: %w", err)
		}
		if locked {
			rep.Locked, rep.LockPID = true, pid
		}
	}
	info, err := wal.Inspect(dataDir)
	if err != nil {
		return nil, fmt.Errorf("inspect data log: %w", err)
	}
	rep.Log = info
	if info.TornTail != nil {
		rep.Damage = append(rep.Damage, fmt.Sprintf("torn tail of %d bytes (the next open cuts it): %v", info.TornBytes, info.TornTail))
	}
	id, hasID, err := readLogID(dataDir)
	switch {
	case err != nil:
		rep.Damage = append(rep.Damage, "log id: "+err.Error())
	case hasID:
		rep.LogID = hex.EncodeToString(id[:])
	case info.LastIndex >= info.FirstIndex:
		rep.Damage = append(rep.Damage, "the data directory has records but no log id")
	}

	ck, slots := readCheckpoint(checkpointDir)
	for i, s := range slots {
		rep.Slots[i] = FileCheckpointSlot{Path: s.Path, State: exportCheckpoint(s.State)}
		if s.Err != nil {
			rep.Slots[i].Err = s.Err.Error()
			rep.Damage = append(rep.Damage, "checkpoint slot: "+s.Err.Error())
		}
	}
	// The choice loadCheckpoint makes at restart.
	empty := info.LastIndex < info.FirstIndex
	c := chooseCheckpoint(ck, slots, d.BackupCheckpoint, id, hasID, empty)
	ck, rep.CheckpointSource = c.ck, c.source
	if c.source == "backup checkpoint" {
		rep.CheckpointSource = "backup checkpoint (the primary is " + c.why + "; events taken since it are delivered again)"
	}
	rep.Checkpoint = exportCheckpoint(ck)
	if ck != nil && ck.Origin != (OriginID{}) {
		rep.Origin = ck.Origin.String()
	}
	o, replayed, _ := replayDedup(ck, info.FirstIndex, info.LastIndex, OriginsOptions{}, func(i uint64) ([]byte, error) {
		return readRecordAt(dataDir, i)
	})
	rep.Dedup, rep.DedupReplayed = o.Info(), replayed
	if ck != nil {
		rep.DedupThrough = ck.DedupThrough
	}

	st, notes := resolveAckState(ck, info.FirstIndex, info.LastIndex, dirHeaderProbe(dataDir))
	for _, n := range notes {
		rep.Notes = append(rep.Notes, fmt.Sprint(append([]any{n.msg, " "}, n.attrs...)...))
	}
	rep.state = st
	rep.Floor, rep.Next, rep.FloorIndex = st.Floor, st.Next, st.FloorPos.Index
	rep.AckedRanges = exportRanges(st.Ranges)
	rep.Queued = st.queuedAt(st.Next)
	for _, s := range info.Segments {
		if s.Last >= st.FloorPos.Index || s.Last < s.First {
			rep.QueuedBytes += s.Size
		}
	}
	if !empty {
		if h, ok := readHeaderAt(dataDir, info.LastIndex); ok {
			rep.NewestQueued = time.UnixMilli(h.CommitMs)
			rep.Durability = "fsyncInterval"
			if h.Synced() {
				rep.Durability = "fsyncPerTransaction"
			}
		}
		if rep.Queued > 0 {
			if h, ok := readHeaderAt(dataDir, st.FloorPos.Index); ok {
				rep.OldestQueued = time.UnixMilli(h.CommitMs)
			}
		} else {
			rep.NewestQueued = time.Time{}
		}
	}
	return rep, nil
}

// readRecordAt reads record i, read-only.
func readRecordAt(dataDir string, i uint64) ([]byte, error) {
	r, err := wal.OpenReader(dataDir, i)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	rec, err := r.Next()
	if err != nil {
		return nil, err
	}
	if rec.Index != i {
		return nil, fmt.Errorf("record %d: found %d", i, rec.Index)
	}
	return slices.Clone(rec.Payload), nil // the reader's buffer goes with it
}

// readHeaderAt reads the header of record i, read-only.
func readHeaderAt(dataDir string, i uint64) (recordHeader, bool) {
	r, err := wal.OpenReader(dataDir, i)
	if err != nil {
		return recordHeader{}, false
	}
	defer r.Close()
	rec, err := r.Next()
	if err != nil || rec.Index != i {
		return recordHeader{}, false
	}
	h, err := decodeRecordHeader(rec.Payload)
	return h, err == nil
}

// dirHeaderProbe is restart's header probe over a directory, read-only.
func dirHeaderProbe(dataDir string) headerProbe {
	return func(from, to uint64, step int) (recordHeader, uint64, bool) {
		if step > 0 {
			r, err := wal.OpenReader(dataDir, from)
			if err != nil {
				return recordHeader{}, 0, false
			}
			defer r.Close()
			for n := 0; n < maxHeaderProbe; n++ {
				rec, err := r.Next()
				if err != nil && !isDamaged(err) {
					break
				}
				if err == nil {
					if h, herr := decodeRecordHeader(rec.Payload); herr == nil {
						return h, rec.Index, true
					}
				}
			}
			return recordHeader{}, 0, false
		}
		for i, n := from, 0; n < maxHeaderProbe && i >= to && i > 0; i, n = i-1, n+1 {
			if h, ok := readHeaderAt(dataDir, i); ok {
				return h, i, true
			}
		}
		return recordHeader{}, 0, false
	}
}

// QueuedEvent is an event a restart would deliver, as Events yields it.
type QueuedEvent struct {
	Event
	Seq       uint64    // its sequence number
	Index     uint64    // the log index of its record
	Committed time.Time // when its put transaction committed
	Synced    bool      // written in fsyncPerTransaction mode
}

// Events yields the queued events in delivery order, read-only. A damaged
// record yields one error (a *wal.CorruptionError, or a record the codec
// refuses) and the iteration goes on past it; an I/O error ends it.
func (r *FileReport) Events() iter.Seq2[QueuedEvent, error] {
	return func(yield func(QueuedEvent, error) bool) {
		st := r.state
		if st.queuedAt(st.Next) == 0 || r.Log.LastIndex < st.FloorPos.Index {
			return
		}
		rd, err := wal.OpenReader(r.DataDir, st.FloorPos.Index)
		if err != nil {
			yield(QueuedEvent{}, err)
			return
		}
		defer rd.Close()
		for {
			rec, err := rd.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				if !yield(QueuedEvent{}, err) || !isDamaged(err) {
					return
				}
				continue
			}
			// Without the channel's keys: a sealed record yields its
			// ErrRecordKey (its events are not readable here).
			h, events, err := decodeRecord(rec.Payload, nil)
			if err != nil {
				if !yield(QueuedEvent{}, fmt.Errorf("record %d: %w", rec.Index, err)) {
					return
				}
				continue
			}
			for i, e := range events {
				seq := h.FirstSeq + uint64(i)
				if seq < st.Floor || st.isAcked(seq) {
					continue
				}
				q := QueuedEvent{Event: e, Seq: seq, Index: rec.Index, Committed: time.UnixMilli(h.CommitMs), Synced: h.Synced()}
				if !yield(q, nil) {
					return
				}
			}
		}
	}
}

// FileVerifyReport is the result of VerifyFile.
type FileVerifyReport struct {
	Records, Events uint64
	Bytes           int64
	SyncedRecords   uint64 // written in fsyncPerTransaction mode
	IntervalRecords uint64 // written in fsyncInterval mode
	// Damaged lists the first wal.MaxReported damaged records, DamagedCount
	// counts them all: CRC or framing damage, and records the codec refuses.
	Damaged      []error
	DamagedCount uint64
}

// OK reports whether every record was intact.
func (v *FileVerifyReport) OK() bool { return v.DamagedCount == 0 }

// VerifyFile reads every record of the data log, checks its CRC and decodes
// its events, read-only. progress, if not nil, is called now and then with
// the bytes scanned and the total.
func VerifyFile(dataDir string, progress func(done, total int64)) (*FileVerifyReport, error) {
	info, err := wal.Inspect(dataDir)
	if err != nil {
		return nil, fmt.Errorf("inspect data log: %w", err)
	}
	before := map[string]int64{}
	rep := &FileVerifyReport{}
	for _, s := range info.Segments {
		before[s.Name] = rep.Bytes
		rep.Bytes += s.Size
	}
	damaged := func(err error) {
		rep.DamagedCount++
		if len(rep.Damaged) < wal.MaxReported {
			rep.Damaged = append(rep.Damaged, err)
		}
	}
	r, err := wal.OpenReader(dataDir, 0)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var last int64
	for {
		rec, err := r.Next()
		switch {
		case errors.Is(err, io.EOF):
			if progress != nil {
				progress(rep.Bytes, rep.Bytes)
			}
			return rep, nil
		case isDamaged(err):
			damaged(err)
			continue
		case err != nil:
			return nil, err
		}
		h, events, err := decodeRecord(rec.Payload, nil)
		n := uint64(len(events))
		if errors.Is(err, ErrRecordKey) {
			// Sealed: intact as far as the wal's CRC and the header tell;
			// its tag is checked when the channel, holding the key, reads it.
			err, n = nil, uint64(h.Count)
		}
		if err != nil {
			damaged(fmt.Errorf("record %d in %s at offset %d: %w", rec.Index, rec.Segment, rec.Offset, err))
			continue
		}
		rep.Records++
		rep.Events += n
		if h.Synced() {
			rep.SyncedRecords++
		} else {
			rep.IntervalRecords++
		}
		if done := before[rec.Segment] + rec.Offset; progress != nil && done-last >= 4<<20 {
			progress(done, rep.Bytes)
			last = done
		}
	}
}
