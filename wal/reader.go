package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// Record is one intact record as a Reader returns it.
type Record struct {
	Index   uint64
	Segment string // base name of the segment file holding it
	Offset  int64  // offset of its tidwall frame in that file
	// Payload aliases the Reader's buffer: it is valid until the next call to
	// Next or Close. Copy it to keep it.
	Payload []byte
}

// source is what a Reader reads: a live Log, or a directory read-only.
type source interface {
	// snapshot returns the live segments and, for a live log, the last index
	// (bounded false for a directory: read to EOF).
	snapshot() snapshot
	// open opens the file of the segment starting at first, wherever it is
	// now (a roll may have moved it into sealed/ since the snapshot). It
	// returns errRetry when the segment is no longer live.
	open(seg segFile) (*os.File, error)
	isClosed() bool
	noteCorrupt()
}

type snapshot struct {
	segs     []segFile
	first    uint64 // FirstIndex
	replaced uint64 // bumped when segment files are removed
	last     uint64
	bounded  bool
}

// Reader iterates records in index order. For every index from its start to
// the end of the log, Next returns exactly one of: the intact Record, or a
// *CorruptionError naming that index; then io.EOF. A Reader of a live Log
// returns io.EOF when it has caught up with LastIndex and picks up later
// appends on the next call. A Reader belongs to one goroutine.
type Reader struct {
	src      source
	next     uint64 // index Next delivers next
	file     *os.File
	sc       *segScanner
	seg      segFile
	segName  string // seg.name(), computed once per segment
	replaced uint64 // src's replacement counter when seg was opened
	segEnd   uint64 // first index of the segment after seg, if hasNext
	hasNext  bool
	buf      []byte // scanner buffer, kept across segments
	lost     lostRange
	tornDone bool
	err      error // sticky I/O error
}

// lostRange is a run of indexes a Reader still has to report as lost.
type lostRange struct {
	from, to uint64 // [from, to)
	seg      string
	off      int64
	first    error // cause reported for index first
	firstIdx uint64
}

// NewReader returns a Reader of l starting at index from (0 means
// FirstIndex). It fails with ErrTruncated when from is before FirstIndex.
// It opens no file: the first Next opens the segment holding from.
func (l *Log) NewReader(from uint64) (*Reader, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	first := l.FirstIndex()
	if from == 0 {
		from = first
	}
	if from < first {
		return nil, fmt.Errorf("read from %d (first is %d): %w", from, first, ErrTruncated)
	}
	return &Reader{src: (*logSource)(l), next: from}, nil
}

// OpenReader returns a read-only Reader of the log in dir starting at index
// from (0 means the first). It changes nothing, takes no lock and works on a
// copy of a directory or beside a running writer; a torn tail it meets is
// reported once as a *CorruptionError wrapping ErrTornTail.
func OpenReader(dir string, from uint64) (*Reader, error) {
	v, err := viewDir(dir)
	if err != nil {
		return nil, err
	}
	src := &dirSource{dir: dir, segs: v.segs, first: v.front}
	if len(src.segs) > 0 {
		if from == 0 {
			from = v.front
		} else if from < v.front {
			return nil, fmt.Errorf("read from %d (first is %d): %w", from, v.front, ErrTruncated)
		}
	}
	return &Reader{src: src, next: max(from, 1)}, nil
}

// Next returns the next record, a *CorruptionError for an index whose record
// is damaged (call Next again to go on past it), io.EOF at the end, or
// another error (ErrClosed, ErrTruncated, an I/O error) that ends the Reader.
func (r *Reader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	for {
		if r.src.isClosed() {
			return Record{}, ErrClosed
		}
		if r.lost.from < r.lost.to {
			return Record{}, r.reportLost()
		}
		sn := r.src.snapshot()
		if sn.bounded && r.next > sn.last {
			return Record{}, io.EOF
		}
		if r.sc != nil && sn.replaced != r.replaced {
			r.recheck(sn) // files were removed: is ours still live?
		}
		if r.sc == nil {
			if err := r.openSegment(sn); err != nil {
				if err == errRetry {
					continue
				}
				if err == io.EOF {
					return Record{}, err
				}
				r.err = err
				return Record{}, err
			}
		}
		maxIndex := ^uint64(0)
		if r.hasNext {
			maxIndex = r.segEnd - 1
		} else if sn.bounded {
			maxIndex = sn.last
		}
		st, err := r.sc.step(maxIndex)
		if err != nil {
			r.err = fmt.Errorf("read segment %s: %w", r.segName, err)
			return Record{}, r.err
		}
		if st.kind == stepRecord {
			if st.index < r.next {
				continue // still seeking to the start index
			}
			r.next++
			return Record{Index: st.index, Segment: r.segName, Offset: st.off, Payload: st.payload}, nil
		}
		sn = r.src.snapshot()
		if sn.replaced != r.replaced {
			// Release removed files while we read: if ours went, what looks
			// damaged may just be gone; find our place again.
			if r.recheck(sn); r.sc == nil {
				continue
			}
		}
		r.segEnd, r.hasNext = r.successor(sn.segs) // segments may have been added
		hasNext, segEnd := r.hasNext, r.segEnd
		switch st.kind {
		case stepLost:
			r.setLost(st.index, st.index+st.count, st.off, st.err)
			continue
		}
		// The segment's data ended (cleanly or in bytes that hold no record).
		if hasNext {
			if r.next < segEnd {
				cause := ErrMissing
				if st.kind == stepTorn {
					cause = st.err
				}
				r.setLost(r.next, segEnd, st.off, cause)
				continue
			}
			r.closeSegment()
			continue
		}
		if sn.bounded {
			// The tail of a live log holds every byte up to LastIndex, so
			// missing records there are damage, not a write in progress.
			cause := ErrMissing
			if st.kind == stepTorn {
				cause = st.err
			}
			r.setLost(r.next, sn.last+1, st.off, cause)
			continue
		}
		if st.kind == stepTorn && !r.tornDone {
			r.tornDone = true
			r.src.noteCorrupt()
			return Record{}, &CorruptionError{Segment: r.segName, Offset: st.off, Index: r.next, Err: ErrTornTail}
		}
		return Record{}, io.EOF
	}
}

func (r *Reader) setLost(from, to uint64, off int64, cause error) {
	r.lost = lostRange{from: max(from, r.next), to: to, seg: r.segName, off: off, first: cause, firstIdx: from}
}

func (r *Reader) reportLost() error {
	idx := r.lost.from
	cause := ErrMissing
	if idx == r.lost.firstIdx {
		cause = r.lost.first
	}
	r.lost.from++
	r.next = r.lost.from
	r.src.noteCorrupt()
	return &CorruptionError{Segment: r.lost.seg, Offset: r.lost.off, Index: idx, Err: cause}
}

// successor returns the first index of the segment after the open one.
func (r *Reader) successor(segs []segFile) (uint64, bool) {
	for i, s := range segs {
		if s.first == r.seg.first && i+1 < len(segs) {
			return segs[i+1].first, true
		}
	}
	return 0, false
}

// recheck keeps reading the open segment if it is still live, and
// otherwise closes it so that the next step finds r.next again.
func (r *Reader) recheck(sn snapshot) {
	r.replaced = sn.replaced
	if _, ok := findSeg(sn.segs, r.seg.first); !ok || r.next < sn.first {
		r.closeSegment()
	}
}

// findSeg returns the live segment starting at first.
func findSeg(segs []segFile, first uint64) (segFile, bool) {
	i, ok := slices.BinarySearchFunc(segs, first, func(s segFile, f uint64) int { return cmpUint(s.first, f) })
	if !ok {
		return segFile{}, false
	}
	return segs[i], true
}

// openSegment opens the segment holding r.next. A segment file that is gone
// although the log still lists it (deleted behind the log's back) is
// reported as lost records, up to the next segment.
func (r *Reader) openSegment(sn snapshot) error {
	segs := sn.segs
	if len(segs) == 0 {
		return io.EOF
	}
	if r.next < sn.first {
		return fmt.Errorf("read %d (first is %d): %w", r.next, sn.first, ErrTruncated)
	}
	i := segmentOf(segs, r.next)
	f, err := r.src.open(segs[i])
	if errors.Is(err, os.ErrNotExist) && i+1 < len(segs) {
		r.seg, r.segName = segs[i], segs[i].name()
		r.setLost(r.next, segs[i+1].first, 0, ErrMissing)
		return errRetry
	}
	if err != nil {
		return err
	}
	r.file, r.seg, r.segName, r.replaced = f, segs[i], segs[i].name(), sn.replaced
	r.segEnd, r.hasNext = r.successor(segs)
	r.sc = newSegScanner(f, fileSize(f), r.segName, segs[i].first)
	r.sc.buf = r.buf[:0]
	return nil
}

func (r *Reader) closeSegment() {
	if r.sc != nil {
		r.buf = r.sc.buf
	}
	if r.file != nil {
		r.file.Close()
	}
	r.file, r.sc = nil, nil
}

// Close releases the Reader's file. It is safe to call more than once.
func (r *Reader) Close() error {
	r.closeSegment()
	if r.err == nil {
		r.err = errReaderClosed
	}
	return nil
}

var (
	errReaderClosed = errors.New("reader closed")
	errRetry        = errors.New("segments changed, retry")
)

// logSource reads a live Log.
type logSource Log

func (s *logSource) snapshot() snapshot {
	// Load last before the segments: a segment holding an index up to last
	// is in the view by the time last is published.
	last := s.last.Load()
	s.view.RLock()
	defer s.view.RUnlock()
	return snapshot{segs: s.view.segs, first: s.view.first, replaced: s.view.replaced, last: last, bounded: true}
}

func (s *logSource) open(seg segFile) (*os.File, error) {
	// Under files, the view and the names on disk agree: a roll moves a
	// file and publishes its new place in one step, and Release removes
	// files only after hiding them, under the lock.
	s.files.RLock()
	defer s.files.RUnlock()
	s.view.RLock()
	cur, ok := findSeg(s.view.segs, seg.first)
	s.view.RUnlock()
	if !ok {
		return nil, errRetry
	}
	return os.Open(cur.path(s.dir))
}

func (s *logSource) isClosed() bool { return s.closed.Load() }
func (s *logSource) noteCorrupt()   { s.corrupt.Add(1) }

// dirSource reads a directory as it was listed.
type dirSource struct {
	dir   string
	segs  []segFile
	first uint64
}

func (s *dirSource) snapshot() snapshot { return snapshot{segs: s.segs, first: s.first} }

// open tries the other place too: a writer beside us may have moved the
// file into sealed/ (or Open moved it back) since the listing.
func (s *dirSource) open(seg segFile) (*os.File, error) {
	f, err := os.Open(seg.path(s.dir))
	if errors.Is(err, os.ErrNotExist) {
		seg.sealed = !seg.sealed
		if g, err2 := os.Open(seg.path(s.dir)); err2 == nil {
			return g, nil
		}
	}
	return f, err
}
func (s *dirSource) isClosed() bool { return false }
func (s *dirSource) noteCorrupt()   {}
