package channel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/flumed/flumed/internal/fsutil"
)

// The file channel's ack state and its checkpoint.
//
// The ack state says which committed events are gone for good: every sequence
// number below Floor, plus a few ranges above it (left by concurrent take
// transactions committing out of order). It is made durable before a take's
// Commit returns by writing it to one of two slot files, checkpoint-0 and
// checkpoint-1, alternately, each overwritten in place and fdatasynced. Each
// slot carries a generation counter and a CRC32C; restart reads both and keeps
// the newest valid one. The crash argument:
//
//   - A slot is only written after the previous write (to the other slot) was
//     synced, so at any moment at least one slot holds a complete, durable
//     state: the newest one whose write returned.
//   - A crash during a write can tear only the slot being written (a separate
//     file, so no shared page or sector with the other); its CRC then fails and
//     restart uses the other slot, which is the state before the interrupted
//     commit, whose Commit had not returned. Nothing is assumed about sector
//     atomicity.
//   - After a failed write or sync the same slot is written again next time,
//     never the other one, which still holds the last durable state.
//
// So restart costs two small reads, whatever the backlog, and there is no ack
// log to fold or truncate.

const (
	checkpointMagic = "flck"
	// checkpointVersion is what encodeCheckpoint writes. Version 2 added the
	// origin identity and its flags; version 3 the dedup table after the
	// ranges. Versions 1 and 2 are still read (with no origin, so the
	// channel draws a new one; with no dedup table, so it starts empty).
	checkpointVersion = 3
	// checkpointHeader is magic, version, 3 zero bytes, payload length, CRC32C.
	checkpointHeader = 16
	// checkpointFixedV1 and checkpointFixed are the fixed part of a version 1
	// and a version 2 payload (see encodeCheckpoint).
	checkpointFixedV1 = 8 + 16 + 8 + 8 + 8 + 4 + 8 + 8 + 4
	checkpointFixed   = checkpointFixedV1 + 16 + 1
	// checkpointOriginDurable is the origin flags' bit 0: the run that wrote
	// the slot handed out sequence numbers only in synced records.
	checkpointOriginDurable = 1
	// maxCheckpointSize bounds a slot: tens of thousands of acked ranges, far
	// more than concurrent take transactions can leave behind. A commit that
	// would need more fails (its take is rolled back) rather than lose ranges.
	maxCheckpointSize = 1 << 20
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// errTooFragmented fails a take commit whose acked ranges would not fit a slot.
var errTooFragmented = errors.New("too many acknowledged ranges above the floor for one checkpoint")

// logPos is where an event is in the data log: the wal index of its record
// and its position among the record's events.
type logPos struct {
	Index  uint64
	Offset uint32
}

// seqRange is the sequence numbers [Start, End).
type seqRange struct{ Start, End uint64 }

// ackState is what has been taken and committed for good.
type ackState struct {
	Floor    uint64     // every sequence number below it is acknowledged (Floor itself may be, in Ranges[0])
	FloorPos logPos     // where event Floor is, or will be, in the log
	Ranges   []seqRange // acknowledged at or above Floor: sorted, disjoint, not touching
	Next     uint64     // sequence number the next committed event gets (at least)
}

// acked counts the events acknowledged above the floor.
func (a *ackState) acked() uint64 {
	var n uint64
	for _, r := range a.Ranges {
		n += r.End - r.Start
	}
	return n
}

// queuedAt is the number of events not acknowledged when next is the next
// sequence number.
func (a *ackState) queuedAt(next uint64) uint64 {
	if next <= a.Floor {
		return 0
	}
	return next - a.Floor - min(a.acked(), next-a.Floor)
}

// isAcked reports whether seq is acknowledged.
func (a *ackState) isAcked(seq uint64) bool {
	if seq < a.Floor {
		return true
	}
	_, found := slices.BinarySearchFunc(a.Ranges, seq, func(r seqRange, s uint64) int {
		switch {
		case r.End <= s:
			return -1
		case r.Start > s:
			return 1
		}
		return 0
	})
	return found
}

// clone returns a deep copy.
func (a ackState) clone() ackState {
	a.Ranges = slices.Clone(a.Ranges)
	return a
}

// addRanges merges more acknowledged ranges (sorted or not) into a.Ranges.
// It does not move the floor; see settleFloor.
func (a *ackState) addRanges(more []seqRange) {
	if len(more) == 0 {
		return
	}
	all := append(slices.Clone(a.Ranges), more...)
	slices.SortFunc(all, func(x, y seqRange) int {
		switch {
		case x.Start < y.Start:
			return -1
		case x.Start > y.Start:
			return 1
		}
		return 0
	})
	out := all[:0]
	for _, r := range all {
		if r.End <= r.Start || r.End <= a.Floor {
			continue
		}
		r.Start = max(r.Start, a.Floor)
		if n := len(out); n > 0 && r.Start <= out[n-1].End {
			out[n-1].End = max(out[n-1].End, r.End)
			continue
		}
		out = append(out, r)
	}
	a.Ranges = out
}

// setFloor moves the floor up to floor at pos and drops the ranges it passed.
// The caller guarantees everything below floor is acknowledged.
func (a *ackState) setFloor(floor uint64, pos logPos) {
	if floor < a.Floor {
		return
	}
	a.Floor, a.FloorPos = floor, pos
	i := 0
	for i < len(a.Ranges) && a.Ranges[i].End <= floor {
		i++
	}
	a.Ranges = a.Ranges[i:]
	if len(a.Ranges) > 0 && a.Ranges[0].Start < floor {
		// The floor is inside a range: the floor is where the cursor stands,
		// and it skips the range's rest when it gets there.
		a.Ranges[0].Start = floor
	}
}

// checkpoint is one slot's content.
type checkpoint struct {
	ackState
	Generation uint64   // incremented at every write; the newer valid slot wins
	LogID      [16]byte // the data log this state belongs to (see file_log.go)
	WrittenMs  int64    // unix ms, for inspection
	// EndIndex, when not zero, is the log's last index when Next was the
	// next sequence number to give out, with no commit in flight (written at
	// open). A restart finding the log still ending there need not read the
	// last record to know where the numbers end.
	EndIndex uint64
	// Origin is the channel's identity as an origin of events to the next
	// hop (file_origin.go); zero in a version 1 slot. OriginDurable says the
	// run that wrote the slot made every record durable before a taker
	// could see it (fsyncPerTransaction), so no sequence number it handed
	// out can be given again after a crash.
	Origin        OriginID
	OriginDurable bool
	// Dedup is the receiver's dedup table (Origins.AppendBinary) as of the
	// records through log index DedupThrough; restart adds the origin
	// trailers of the records after it. HasDedup is false for a version 1
	// or 2 slot, written before records had trailers.
	Dedup        []byte
	DedupThrough uint64
	HasDedup     bool
}

// encodeCheckpoint renders c as a slot. Ranges are varints relative to the
// previous range's end (the floor for the first one).
func encodeCheckpoint(c *checkpoint) ([]byte, error) {
	b := make([]byte, checkpointHeader, checkpointHeader+checkpointFixed+len(c.Ranges)*4)
	b = binary.LittleEndian.AppendUint64(b, c.Generation)
	b = append(b, c.LogID[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(c.WrittenMs))
	b = binary.LittleEndian.AppendUint64(b, c.Floor)
	b = binary.LittleEndian.AppendUint64(b, c.FloorPos.Index)
	b = binary.LittleEndian.AppendUint32(b, c.FloorPos.Offset)
	b = binary.LittleEndian.AppendUint64(b, c.Next)
	b = binary.LittleEndian.AppendUint64(b, c.EndIndex)
	b = append(b, c.Origin[:]...)
	var flags byte
	if c.OriginDurable {
		flags |= checkpointOriginDurable
	}
	b = append(b, flags)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(c.Ranges)))
	prev := c.Floor
	for _, r := range c.Ranges {
		b = binary.AppendUvarint(b, r.Start-prev)
		b = binary.AppendUvarint(b, r.End-r.Start)
		prev = r.End
	}
	b = binary.LittleEndian.AppendUint64(b, c.DedupThrough)
	if c.Dedup == nil {
		b = binary.AppendUvarint(b, 0) // an empty table
	}
	b = append(b, c.Dedup...)
	if len(b) > maxCheckpointSize {
		return nil, fmt.Errorf("%w: %d ranges need %d bytes, the limit is %d", errTooFragmented, len(c.Ranges), len(b), maxCheckpointSize)
	}
	copy(b, checkpointMagic)
	b[4] = checkpointVersion
	payload := b[checkpointHeader:]
	binary.LittleEndian.PutUint32(b[8:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[12:], crc32.Checksum(payload, crc32c))
	return b, nil
}

// decodeCheckpoint parses a slot. Any damage (torn write, zeroes, bit rot) is
// an error: the slot is then ignored.
func decodeCheckpoint(b []byte) (*checkpoint, error) {
	if len(b) < checkpointHeader {
		return nil, fmt.Errorf("slot is %d bytes, shorter than its header", len(b))
	}
	version := b[4]
	if string(b[:4]) != checkpointMagic || version < 1 || version > checkpointVersion || b[5]|b[6]|b[7] != 0 {
		return nil, fmt.Errorf("slot has no valid header (magic %q, version %d)", b[:4], b[4])
	}
	fixed := checkpointFixed
	if version == 1 {
		fixed = checkpointFixedV1
	}
	n := binary.LittleEndian.Uint32(b[8:])
	if n < uint32(fixed) || uint64(n) > uint64(len(b)-checkpointHeader) {
		return nil, fmt.Errorf("slot payload length %d out of range (%d bytes present)", n, len(b)-checkpointHeader)
	}
	p := b[checkpointHeader : checkpointHeader+int(n)]
	if got, want := crc32.Checksum(p, crc32c), binary.LittleEndian.Uint32(b[12:]); got != want {
		return nil, fmt.Errorf("slot checksum %08x, want %08x", got, want)
	}
	c := &checkpoint{}
	c.Generation = binary.LittleEndian.Uint64(p)
	copy(c.LogID[:], p[8:24])
	c.WrittenMs = int64(binary.LittleEndian.Uint64(p[24:]))
	c.Floor = binary.LittleEndian.Uint64(p[32:])
	c.FloorPos.Index = binary.LittleEndian.Uint64(p[40:])
	c.FloorPos.Offset = binary.LittleEndian.Uint32(p[48:])
	c.Next = binary.LittleEndian.Uint64(p[52:])
	c.EndIndex = binary.LittleEndian.Uint64(p[60:])
	at := 68
	if version >= 2 {
		copy(c.Origin[:], p[at:at+16])
		flags := p[at+16]
		if flags&^checkpointOriginDurable != 0 {
			return nil, fmt.Errorf("slot has unknown origin flags %#x", flags)
		}
		c.OriginDurable = flags&checkpointOriginDurable != 0
		at += 17
	}
	count := binary.LittleEndian.Uint32(p[at:])
	rest := p[fixed:]
	if uint64(count) > uint64(len(rest))/2 { // each range takes at least two bytes
		return nil, fmt.Errorf("slot claims %d ranges in %d bytes", count, len(rest))
	}
	prev := c.Floor
	for i := range count {
		gap, n1 := binary.Uvarint(rest)
		if n1 <= 0 {
			return nil, fmt.Errorf("range %d: bad start", i)
		}
		size, n2 := binary.Uvarint(rest[n1:])
		// Ranges never touch: a zero gap (but before the first) or size is damage.
		if n2 <= 0 || size == 0 || gap == 0 && i > 0 {
			return nil, fmt.Errorf("range %d: bad length or overlap", i)
		}
		start := prev + gap
		if start < prev || start+size < start || start+size > c.Next {
			return nil, fmt.Errorf("range %d: out of bounds", i)
		}
		c.Ranges = append(c.Ranges, seqRange{start, start + size})
		prev = start + size
		rest = rest[n1+n2:]
	}
	if version >= 3 {
		if len(rest) < 8 {
			return nil, fmt.Errorf("slot has no dedup table")
		}
		c.DedupThrough = binary.LittleEndian.Uint64(rest)
		_, n, err := DecodeOrigins(rest[8:], OriginsOptions{})
		if err != nil {
			return nil, fmt.Errorf("slot dedup table: %w", err)
		}
		c.Dedup, c.HasDedup = rest[8:8+n], true
		rest = rest[8+n:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("slot has %d bytes after its ranges", len(rest))
	}
	if c.Floor > c.Next {
		return nil, fmt.Errorf("slot floor %d is past next %d", c.Floor, c.Next)
	}
	return c, nil
}

// checkpointSlots is the two slot files of one checkpoint directory.
type checkpointSlots struct {
	fs    fsutil.FS
	dir   string
	last  uint64         // generation of the newest durable slot (0: none)
	ready bool           // both files exist and their names are durable
	files [2]fsutil.File // open handles, when the FS allows writing at an offset
}

func slotPath(dir string, i uint64) string {
	return filepath.Join(dir, fmt.Sprintf("checkpoint-%d", i%2))
}

// slotReport says what one slot file holds, for restart and inspection.
type slotReport struct {
	Path  string
	State *checkpoint // nil when missing or damaged
	Err   error       // why State is nil; nil when the file is missing
}

// readCheckpoint reads both slots of dir without modifying anything and
// returns the newest valid one (nil if none) and what each slot held.
func readCheckpoint(dir string) (*checkpoint, [2]slotReport) {
	var rep [2]slotReport
	var best *checkpoint
	for i := range rep {
		rep[i].Path = slotPath(dir, uint64(i))
		b, err := readAtMost(rep[i].Path, checkpointHeader+maxCheckpointSize)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			rep[i].Err = err
			continue
		}
		c, err := decodeCheckpoint(b)
		if err != nil {
			rep[i].Err = fmt.Errorf("%s: %w", rep[i].Path, err)
			continue
		}
		rep[i].State = c
		if best == nil || c.Generation > best.Generation {
			best = c
		}
	}
	return best, rep
}

func readAtMost(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

// write makes c the newest slot: it overwrites the slot that does not hold
// the newest durable state and, when sync is set, fdatasyncs it. c.Generation
// is assigned here. On error nothing changes: the next write goes to the same
// slot again, through a fresh handle.
func (s *checkpointSlots) write(c *checkpoint, sync bool) error {
	if !s.ready {
		if err := s.create(); err != nil {
			return err
		}
	}
	c.Generation = s.last + 1
	b, err := encodeCheckpoint(c)
	if err != nil {
		return err
	}
	i := c.Generation % 2
	path := slotPath(s.dir, c.Generation)
	if err := s.overwrite(i, path, b, sync); err != nil {
		return err
	}
	s.last = c.Generation
	return nil
}

// overwrite writes b at the start of slot i. In place, no O_TRUNC: a shorter
// slot leaves stale bytes after its length, which decoding ignores, and the
// file's size rarely changes, so the sync has no metadata to write. The
// handle stays open when the file system's files can write at an offset;
// otherwise (a test's fault-injecting FS) each write opens the file anew.
func (s *checkpointSlots) overwrite(i uint64, path string, b []byte, sync bool) error {
	f := s.files[i]
	if f == nil {
		var err error
		if f, err = s.fs.OpenFile(path, os.O_WRONLY, 0o644); err != nil {
			return fmt.Errorf("open checkpoint: %w", err)
		}
	}
	wa, keep := f.(io.WriterAt)
	var err error
	if keep {
		_, err = wa.WriteAt(b, 0)
	} else {
		_, err = f.Write(b)
	}
	if err == nil && sync {
		// The take commits waiting on this state return only after it is on
		// disk: this fdatasync is their durability.
		err = f.Sync()
	}
	if err != nil {
		f.Close() // a handle that failed is never trusted again
		s.files[i] = nil
		return fmt.Errorf("write %s: %w", path, err)
	}
	if !keep {
		return f.Close()
	}
	s.files[i] = f
	return nil
}

// close releases the slot files' handles.
func (s *checkpointSlots) close() {
	for i, f := range s.files {
		if f != nil {
			f.Close()
			s.files[i] = nil
		}
	}
}

// create makes both slot files exist durably, so later writes change no
// directory entry and need only an fdatasync.
func (s *checkpointSlots) create() error {
	for i := range uint64(2) {
		f, err := s.fs.OpenFile(slotPath(s.dir, i), os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("create checkpoint: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("create checkpoint: %w", err)
		}
	}
	// The new names must survive a crash before any state relies on them.
	if err := s.fs.SyncDir(s.dir); err != nil {
		return fmt.Errorf("create checkpoint: %w", err)
	}
	s.ready = true
	return nil
}
