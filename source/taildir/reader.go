package taildir

import (
	"bytes"
	"crypto/sha256"
	"io"
	"time"
)

// This file holds one tailed file: its identity (device, inode, fingerprint),
// its committed position, and the reader that cuts its bytes into lines. It is
// used only by the source's goroutine.

const (
	// tailFPMax is how many leading bytes a full fingerprint covers. A file's
	// fingerprint grows with the file up to this size.
	tailFPMax = 1024
	// tailCopyMinFP is the shortest fingerprint that may call a new file a copy
	// of a known one: a shorter common prefix (a banner line) is too weak.
	tailCopyMinFP = 256
	// tailKeep is how many bytes before the position are kept to confirm that
	// a copy really holds the same bytes there.
	tailKeep = 32
	// tailReadSize is the read buffer size of an active file.
	tailReadSize = 64 << 10
)

// fingerprint is a hash of a file's first n bytes.
type fingerprint struct {
	n   int
	sum [16]byte
}

func fingerprintOf(b []byte) fingerprint {
	s := sha256.Sum256(b)
	fp := fingerprint{n: len(b)}
	copy(fp.sum[:], s[:])
	return fp
}

// matches reports whether prefix starts with the fingerprinted bytes. An
// empty fingerprint matches anything.
func (fp fingerprint) matches(prefix []byte) bool {
	if fp.n == 0 {
		return true
	}
	return len(prefix) >= fp.n && fingerprintOf(prefix[:fp.n]).sum == fp.sum
}

func (fp fingerprint) hex() string {
	if fp.n == 0 {
		return ""
	}
	return hexBytes(fp.sum[:])
}

func parseFingerprint(n int, h string) fingerprint {
	b := unhex(h)
	if n <= 0 || len(b) != 16 {
		return fingerprint{}
	}
	fp := fingerprint{n: n}
	copy(fp.sum[:], b)
	return fp
}

// tailFile is one file being tailed.
type tailFile struct {
	id     fileID
	birth  int64  // creation time in ns, 0 where unknown: tells a reused inode apart
	path   string // where it was last seen (the file header's value)
	group  *taildirGroup
	f      tailHandle // nil while closed (idle)
	pos    int64      // committed: every line before pos is in the channel
	fp     fingerprint
	head   []byte    // the fp.n bytes fingerprinted, kept to recognise a copy still being written
	tail   []byte    // up to tailKeep bytes just before pos
	mtime  time.Time // at the last scan; files are read oldest first
	active time.Time // last time lines were committed (or the file was opened)
	idle   bool      // idle too long: flush the partial line, then close
	gone   bool      // no longer at a watched path: read to its end, then forget
	missed bool      // closed, and not found by the last listing of its directory
	copyOf *tailFile // a copy of a live file: not read until that one is truncated or gone
	// fresh is set while nothing was read from a file admitted shorter than
	// tailFPMax: until it has content it may yet turn out to be a copy.
	fresh bool
	rd    tailReader
	// checked is the size and mtime at the last fingerprint check.
	checked [2]int64
	// closed is the size and mtime when it was closed while idle.
	closed [2]int64
}

func (t *tailFile) persisted() tailPos {
	return tailPos{Dev: t.id.dev, Inode: t.id.ino, Pos: t.pos, File: t.path,
		FPN: t.fp.n, FP: t.fp.hex(), Tail: hexBytes(t.tail), Birth: t.birth, HasDev: true}
}

// reset drops everything read past the committed position; the next read
// starts at pos again.
func (t *tailFile) reset() {
	t.rd.r, t.rd.w, t.rd.off = 0, 0, t.pos
	t.rd.held, t.rd.skipping = t.rd.held[:0], false
}

// check compares the open file with what is known about it. A file now
// shorter than what was read, or whose first bytes changed, was truncated
// (copytruncate) or rewritten. It also grows the fingerprint.
func (t *tailFile) check(scratch []byte) (size int64, truncated bool, err error) {
	st, err := t.f.Stat()
	if err != nil {
		return 0, false, err
	}
	size = st.size
	if size < t.pos || size < t.rd.readEnd() {
		return size, true, nil
	}
	stamp := [2]int64{size, st.mtime.UnixNano()}
	if stamp == t.checked {
		return size, false, nil // untouched since the last check: an idle poll stays cheap
	}
	// Reading and hashing at most 1 KiB per batch is cheap next to the batch,
	// and catches a copytruncate whose new content already outgrew the position.
	n := int(min(size, tailFPMax))
	if n == 0 {
		return size, false, nil
	}
	k, err := readAtMost(t.f, scratch[:n], 0)
	if err != nil {
		return size, false, err
	}
	if !t.fp.matches(scratch[:k]) {
		return size, true, nil
	}
	if k > t.fp.n {
		t.setHead(scratch[:k])
	}
	t.checked = stamp
	return size, false, nil
}

// growHead extends the fingerprint with the bytes data, read at off, where
// they continue the fingerprinted head. The head then comes from the same
// read as the lines: fingerprinted by a read of its own, before or after,
// it might be another content's (copytruncate in between), whose truncation
// would then go unnoticed.
func (t *tailFile) growHead(off int64, data []byte) {
	n := int64(t.fp.n)
	if n >= tailFPMax || off > n || off+int64(len(data)) <= n || len(t.head) != t.fp.n {
		return
	}
	end := min(off+int64(len(data)), tailFPMax)
	t.head = append(t.head, data[n-off:end-off]...)
	t.fp = fingerprintOf(t.head)
}

// setHead fingerprints the file's first bytes.
func (t *tailFile) setHead(prefix []byte) {
	t.fp = fingerprintOf(prefix)
	t.head = append(t.head[:0], prefix...)
}

// startsLike reports whether a file starting with prefix may be a copy of
// t: prefix holds t's fingerprinted bytes, or is the start of them (a copy
// still being written).
func (t *tailFile) startsLike(prefix []byte) bool {
	if len(prefix) >= t.fp.n {
		return t.fp.matches(prefix)
	}
	return len(prefix) > 0 && len(t.head) == t.fp.n && bytes.HasPrefix(t.head, prefix)
}

// keepTail remembers the bytes just before the new position end.
func (t *tailFile) keepTail(end int64) { t.tail = t.tailBefore(t.tail, end) }

// tailBefore reads the up to tailKeep bytes just before end into buf's
// storage.
func (t *tailFile) tailBefore(buf []byte, end int64) []byte {
	n := int(min(end, tailKeep))
	if n == 0 || t.f == nil {
		return buf[:0]
	}
	if cap(buf) < tailKeep {
		buf = make([]byte, 0, tailKeep)
	}
	k, err := readAtMost(t.f, buf[:n], end-int64(n))
	if err != nil || k != n {
		k = 0
	}
	return buf[:k]
}

// unchanged reports whether the open file still holds what check saw: the
// fingerprinted first bytes, and at least the bytes read. Lines are t's only
// if this still holds after they were read: a truncation (copytruncate)
// between the check and the read hands the reader the new content at the
// old offsets, which must neither be counted against t's position nor let a
// copy of the old content resume after it.
func (t *tailFile) unchanged(scratch []byte) (bool, error) {
	st, err := t.f.Stat()
	if err != nil {
		return false, err
	}
	if st.size < t.rd.readEnd() {
		return false, nil
	}
	if t.fp.n == 0 {
		return true, nil // empty when checked: there was nothing to lose
	}
	k, err := readAtMost(t.f, scratch[:t.fp.n], 0)
	if err != nil {
		return false, err
	}
	if len(t.head) == t.fp.n {
		return k == t.fp.n && bytes.Equal(scratch[:k], t.head), nil
	}
	return t.fp.matches(scratch[:k]), nil
}

// tailReader cuts a file's bytes into lines. buf[r:w] holds the bytes of the
// file from offset off on that were read but not yet cut.
type tailReader struct {
	buf  []byte
	r, w int
	off  int64
	// With lineOverflow=truncate, the first maxLineLength bytes of an
	// overlong line wait in held while the rest of it is skipped.
	held      []byte
	heldStart int64
	skipping  bool
}

// readEnd is the file offset up to which bytes were read.
func (rd *tailReader) readEnd() int64 { return rd.off + int64(rd.w-rd.r) }

func (rd *tailReader) consume(n int) {
	rd.r += n
	rd.off += int64(n)
}

// empty reports whether the reader holds nothing but its position, so its
// buffer can go back to the pool.
func (rd *tailReader) empty() bool { return rd.r == rd.w && !rd.skipping }

// fill reads more of f after what the buffer holds. It returns 0 at the end of
// the file.
func (rd *tailReader) fill(f io.ReaderAt, maxLine int) (int, error) {
	if rd.r == rd.w {
		rd.r, rd.w = 0, 0
	}
	if free := len(rd.buf) - rd.w; free < len(rd.buf)/4 {
		if rd.r > 0 {
			rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
			rd.r = 0
		}
		if len(rd.buf)-rd.w < len(rd.buf)/4 {
			// An unfinished line fills the buffer: grow it, up to what the
			// longest allowed line needs.
			size := max(2*len(rd.buf), tailReadSize)
			size = min(size, maxLine+2+tailReadSize)
			if size > len(rd.buf) {
				nb := make([]byte, size)
				rd.w = copy(nb, rd.buf[rd.r:rd.w])
				rd.r = 0
				rd.buf = nb
			}
		}
	}
	n, err := readAtMost(f, rd.buf[rd.w:], rd.readEnd())
	rd.w += n
	return n, err
}

// tailLine is one line of a batch: its body and where it starts in the file.
type tailLine struct {
	body  []byte
	start int64
}

// tailBatch is the lines read from one file for one Poll call.
type tailBatch struct {
	lines     []tailLine
	end       int64  // the position after the last line: the new pos once committed
	tail      []byte // up to tailKeep bytes just before end, read with the lines
	split     int    // lines cut at maxLineLength (lineOverflow=split)
	truncated int    // lines cut short (lineOverflow=truncate)
	arena     []byte
	reserved  int // bytes of arena chunks allocated for this batch
	used      int // bytes of bodies
}

func (b *tailBatch) reset() {
	b.lines = b.lines[:0]
	b.end, b.split, b.truncated = 0, 0, 0
	b.arena, b.reserved, b.used = nil, 0, 0 // the previous batch's bodies now belong to the channel
}

// add copies body into the batch; bodies of one batch share a few large
// allocations instead of one each.
func (b *tailBatch) add(body []byte, start, end int64) {
	if cap(b.arena)-len(b.arena) < len(body) {
		b.arena = make([]byte, 0, max(len(body), 16<<10))
		b.reserved += cap(b.arena)
	}
	n := len(b.arena)
	b.arena = append(b.arena, body...)
	b.used += len(body)
	b.lines = append(b.lines, tailLine{body: b.arena[n:len(b.arena):len(b.arena)], start: start})
	b.end = end
}

// fit copies the bodies into one allocation of their exact size when the
// chunks are mostly empty (a batch of a few short lines): a channel keeps the
// bodies, and each would otherwise pin a 16 KiB chunk.
func (b *tailBatch) fit() {
	if b.reserved <= 2*b.used+4096 {
		return
	}
	buf := make([]byte, 0, b.used)
	for i := range b.lines {
		n := len(buf)
		buf = append(buf, b.lines[i].body...)
		b.lines[i].body = buf[n:len(buf):len(buf)]
	}
	b.arena, b.reserved = nil, b.used
}

// readBatch cuts up to max lines from t, reading the file as needed. A
// trailing line without a newline waits for it unless flush is set (the file
// went idle). Lines longer than maxLine bytes are split into pieces of maxLine
// bytes, or with truncate cut to maxLine bytes and the rest skipped.
func (t *tailFile) readBatch(b *tailBatch, max, maxLine int, truncate, flush bool) error {
	b.reset()
	rd := &t.rd
	for len(b.lines) < max {
		data := rd.buf[rd.r:rd.w]
		i := bytes.IndexByte(data, '\n')
		switch {
		case rd.skipping && i < 0:
			rd.consume(len(data))
		case rd.skipping:
			rd.consume(i + 1)
			b.add(rd.held, rd.heldStart, rd.off)
			b.truncated++
			rd.held, rd.skipping = rd.held[:0], false
			continue
		case i >= 0:
			line := data[:i]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			switch {
			case len(line) <= maxLine:
				b.add(line, rd.off, rd.off+int64(i+1))
				rd.consume(i + 1)
			case truncate:
				b.add(line[:maxLine], rd.off, rd.off+int64(i+1))
				b.truncated++
				rd.consume(i + 1)
			default:
				b.add(line[:maxLine], rd.off, rd.off+int64(maxLine))
				b.split++
				rd.consume(maxLine)
			}
			continue
		case len(data) > maxLine+1:
			// More than maxLine+1 bytes and no newline: too long whatever
			// ends it (at most a "\r" would be dropped).
			if truncate {
				rd.held = append(rd.held[:0], data[:maxLine]...)
				rd.heldStart, rd.skipping = rd.off, true
				rd.consume(len(data))
			} else {
				b.add(data[:maxLine], rd.off, rd.off+int64(maxLine))
				b.split++
				rd.consume(maxLine)
			}
			continue
		}
		from := rd.readEnd()
		n, err := rd.fill(t.f, maxLine)
		if err != nil {
			return err
		}
		t.growHead(from, rd.buf[rd.w-n:rd.w])
		if n > 0 {
			continue
		}
		// End of the file.
		if flush {
			if rd.skipping {
				b.add(rd.held, rd.heldStart, rd.off)
				b.truncated++
				rd.held, rd.skipping = rd.held[:0], false
			} else if rest := rd.buf[rd.r:rd.w]; len(rest) > 0 {
				b.add(rest, rd.off, rd.readEnd())
				rd.consume(len(rest))
			}
		}
		break
	}
	b.fit()
	return nil
}
