package wal

import (
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// tidwall/wal names a segment by the index of its first entry, as 20 decimal
// digits. Repair keeps evidence as "<name>.broken[.N]", and a file rewritten
// atomically (a repaired segment, the manifest) is first written as
// "<name>.tmp". tidwall looks at 20-digit names only.
const (
	nameLen      = 20
	suffixTmp    = ".tmp"
	suffixBroken = ".broken"
)

// parseSegmentName splits a file name into the first index its 20 digits
// name and the suffix after them; ok is false for any other name.
func parseSegmentName(name string) (first uint64, rest string, ok bool) {
	if len(name) < nameLen {
		return 0, "", false
	}
	first, err := strconv.ParseUint(name[:nameLen], 10, 64)
	if err != nil || first == 0 {
		return 0, "", false
	}
	return first, name[nameLen:], true
}

// splitTail returns the segments before the last one, and the last one (nil
// when there are none).
func splitTail(segs []segFile) ([]segFile, *segFile) {
	n := len(segs)
	if n == 0 {
		return segs, nil
	}
	t := segs[n-1]
	return segs[:n-1], &t
}

// segmentName formats first as 20 decimal digits (enough for any uint64),
// without fmt: Open names every sealed segment only when it is needed, but
// Segments names them all.
func segmentName(first uint64) string {
	var b [nameLen]byte
	for i := nameLen - 1; i >= 0; i-- {
		b[i] = byte('0' + first%10)
		first /= 10
	}
	return string(b[:])
}

// segFile is one segment of a log.
type segFile struct {
	first  uint64 // index of its first entry, from its name
	size   int64
	sealed bool // in sealed/ rather than in the log directory
}

// name is the segment's file name. It is computed when needed rather than
// kept: Open lists sealed segments from the manifest without naming them.
func (s segFile) name() string { return segmentName(s.first) }

// path is where the segment's file is in the log directory dir.
func (s segFile) path(dir string) string {
	if s.sealed {
		return filepath.Join(dir, sealedDirName, s.name())
	}
	return filepath.Join(dir, s.name())
}

// dirState is what the log directory holds, read without changing anything.
type dirState struct {
	segs   []segFile // segment files in index order: the tail last, and any a crash left before it
	temps  []string  // .tmp leftovers of interrupted atomic writes
	broken []string  // evidence kept by earlier repairs
	sealed bool      // the directory has a sealed/ subdirectory
}

// readDirState lists dir. It fails only on I/O errors.
func readDirState(dir string) (dirState, error) {
	var st dirState
	ents, err := os.ReadDir(dir)
	if err != nil {
		return st, err
	}
	for _, e := range ents {
		name := e.Name()
		if name == manifestName+suffixTmp {
			st.temps = append(st.temps, name)
		}
		if e.IsDir() && name == sealedDirName {
			st.sealed = true
		}
		first, rest, ok := parseSegmentName(name)
		if e.IsDir() || !ok {
			continue
		}
		switch {
		case rest == "":
			info, err := e.Info()
			if err != nil {
				return st, err
			}
			st.segs = append(st.segs, segFile{first: first, size: info.Size()})
		case rest == suffixTmp:
			st.temps = append(st.temps, name)
		case strings.HasPrefix(rest, suffixBroken):
			st.broken = append(st.broken, name)
		}
	}
	return st, nil
}

// stepKind says what segScanner.step found.
type stepKind int

const (
	stepRecord stepKind = iota // an intact record at the expected index
	stepLost                   // indexes [index, index+count) are lost; a later record was found
	stepEnd                    // the data ends cleanly at a frame boundary
	stepTorn                   // no intact record from off to the end of the file
)

type step struct {
	kind    stepKind
	index   uint64 // the record's index, or the first lost index
	count   uint64 // stepLost: how many indexes are lost
	off     int64  // offset of the frame, or of the damage
	end     int64  // offset just past the frame, or where scanning resumes
	payload []byte // stepRecord: aliases the scanner's buffer until the next step
	err     error  // stepLost: why the first lost index is lost
}

const (
	readChunk = 256 << 10
	maxEntry  = headerSize + MaxPayload
)

// segScanner walks the frames of one segment file through a window buffer and
// yields, index by index, an intact record or the damage that replaces it.
// It never writes. The file may grow while it reads (the live tail).
type segScanner struct {
	f      io.ReaderAt
	size   func() (int64, error)
	name   string
	next   uint64 // index expected next
	off    int64  // offset of the next frame
	buf    []byte // bytes [bufOff, bufOff+len(buf)) of the file
	bufOff int64
	known  int64 // a size the file is known to have reached
}

func newSegScanner(f io.ReaderAt, size func() (int64, error), name string, first uint64) *segScanner {
	return &segScanner{f: f, size: size, name: name, next: first}
}

// window returns the bytes [off, off+n) of the file, or fewer when it ends first.
func (s *segScanner) window(off int64, n int) ([]byte, error) {
	if off >= s.bufOff && off+int64(n) <= s.bufOff+int64(len(s.buf)) {
		return s.buf[off-s.bufOff : off-s.bufOff+int64(n)], nil
	}
	want := max(n, readChunk)
	var keep int
	nb := s.buf[:cap(s.buf)]
	if cap(s.buf) < want {
		nb = make([]byte, want)
	}
	if off >= s.bufOff && off < s.bufOff+int64(len(s.buf)) {
		keep = copy(nb, s.buf[off-s.bufOff:])
	}
	m, err := s.f.ReadAt(nb[keep:want], off+int64(keep))
	if err != nil && err != io.EOF {
		return nil, err
	}
	s.buf, s.bufOff = nb[:keep+m], off
	s.known = max(s.known, off+int64(keep+m))
	return s.buf[:min(n, len(s.buf))], nil
}

// fits reports whether the file holds at least end bytes, without reading them.
func (s *segScanner) fits(end int64) (bool, error) {
	if end <= s.known {
		return true, nil
	}
	size, err := s.size()
	if err != nil {
		return false, err
	}
	s.known = max(s.known, size)
	return end <= s.known, nil
}

// step decodes the next frame. maxIndex bounds the indexes a record found
// after damage may carry (the segment's last index when it is known).
func (s *segScanner) step(maxIndex uint64) (step, error) {
	for {
		head, err := s.window(s.off, binary.MaxVarintLen64)
		if err != nil {
			return step{}, err
		}
		if len(head) == 0 {
			return step{kind: stepEnd, index: s.next, off: s.off, end: s.off}, nil
		}
		cause := ErrLength
		l, n := binary.Uvarint(head)
		if n > 0 && l <= maxEntry {
			end := s.off + int64(n) + int64(l)
			ok, err := s.fits(end)
			if err != nil {
				return step{}, err
			}
			if ok {
				frame, err := s.window(s.off, n+int(l))
				if err != nil {
					return step{}, err
				}
				index, payload, derr := decodeRecord(frame[n:])
				if derr == nil && index == s.next {
					st := step{kind: stepRecord, index: index, off: s.off, end: end, payload: payload}
					s.off, s.next = end, s.next+1
					return st, nil
				}
				cause = derr
				if derr == nil {
					cause = ErrIndex
				}
			}
		}
		at, index, found, err := s.search(s.off+1, maxIndex)
		if err != nil {
			return step{}, err
		}
		if !found {
			size, err := s.size()
			if err != nil {
				return step{}, err
			}
			return step{kind: stepTorn, index: s.next, off: s.off, end: max(size, s.off), err: cause}, nil
		}
		damage := s.off
		s.off = at
		if index == s.next {
			// Junk in front of an intact record: no index is lost.
			continue
		}
		st := step{kind: stepLost, index: s.next, count: index - s.next, off: damage, end: at, err: cause}
		s.next = index
		return st, nil
	}
}

// search looks for the first offset at or after from where an intact record
// with an index in [s.next, maxIndex] starts. A candidate must also be
// plausible: every index it skips took at least one of the bytes it skips
// (an empty entry, such as a repair placeholder, is one byte). It reads the
// rest of the file into memory: damage is rare and a segment is bounded.
func (s *segScanner) search(from int64, maxIndex uint64) (at int64, index uint64, found bool, err error) {
	size, err := s.size()
	if err != nil || size <= from {
		return 0, 0, false, err
	}
	data := make([]byte, size-from)
	n, err := s.f.ReadAt(data, from)
	if err != nil && err != io.EOF {
		return 0, 0, false, err
	}
	data = data[:n]
	damage := from - 1
	for q := 0; q < len(data); q++ {
		l, n := binary.Uvarint(data[q:])
		if n <= 0 || l < headerSize || l > maxEntry || uint64(len(data)-q-n) < l {
			continue
		}
		e := data[q+n : q+n+int(l)]
		if e[0] != recordVersion || uint64(binary.LittleEndian.Uint32(e[9:13])) != l-headerSize {
			continue
		}
		idx := binary.LittleEndian.Uint64(e[1:9])
		skipped := from + int64(q) - damage
		if idx < s.next || idx > maxIndex || idx-s.next > uint64(skipped) {
			continue
		}
		if got, _, err := decodeRecord(e); err == nil && got == idx {
			return from + int64(q), idx, true, nil
		}
	}
	return 0, 0, false, nil
}

// fileSize returns a size function for an open file.
func fileSize(f *os.File) func() (int64, error) {
	return func() (int64, error) {
		fi, err := f.Stat()
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
}

// countFrames counts the tidwall frames of data the way tidwall's loader does.
// ok is false where tidwall would refuse the bytes (ErrCorrupt).
func countFrames(data []byte) (count uint64, ok bool) {
	for len(data) > 0 {
		l, n := binary.Uvarint(data)
		if n <= 0 || uint64(len(data)-n) < l {
			return count, false
		}
		data = data[n+int(l):]
		count++
	}
	return count, true
}
