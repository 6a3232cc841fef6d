package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flumed/flumed/internal/fsutil"
)

// Recovered reports what repair changed in a directory before tidwall/wal
// opened it. The zero value means nothing was changed.
type Recovered struct {
	// Segment names the last segment when its tail was cut or it was rewritten.
	Segment string
	// Offset is where the last intact record of that segment ends: the cut point.
	Offset int64
	// Records counts the entries cut from the tail, whole or partial.
	Records int
	// Bytes counts the bytes cut from the tail.
	Bytes int64
	// Damaged lists indexes of the last segment, before its last intact record,
	// that hold no intact record. Where tidwall could no longer frame them,
	// repair rewrote them as empty placeholder entries so that later records
	// keep their indexes. Reading any of them returns a *CorruptionError.
	Damaged []uint64
	// Rewritten is true when the segment was rewritten rather than cut.
	Rewritten bool
	// Broken is the evidence copy of the segment as it was before repair.
	Broken string
	// Removed lists files deleted: leftovers of interrupted atomic writes,
	// and released segments a crash during Release left in sealed/.
	Removed []string
	// Moved lists segment files moved between the log directory and sealed/
	// ("from -> to"): a roll a crash interrupted finished, a tail moved back,
	// a stray set aside.
	Moved []string
	// Rebuilt is true when the list of sealed segments was rebuilt by
	// listing sealed/, because the manifest was missing, damaged or behind.
	Rebuilt bool
	// Rewrote is true when the manifest was rewritten (rebuilt, or cut after
	// a torn last entry, or tidied after an interrupted Release).
	Rewrote bool
	// Created names an empty tail segment created because a crash lost it.
	Created string
}

// Changed reports whether repair touched the directory.
func (r Recovered) Changed() bool {
	return r.Bytes > 0 || r.Rewritten || len(r.Removed) > 0 || len(r.Moved) > 0 ||
		r.Rebuilt || r.Rewrote || r.Created != ""
}

// opened is what repair hands to Open: the live segments (the last is the
// tail, in the log directory; none for a new log), the manifest as it is on
// disk, and whether sealed/ exists durably.
type opened struct {
	segs        []segFile
	man         manifestState
	sealedReady bool
}

// repair brings dir into the shape Open expects (FORMAT.md, "Repair"): it
// finishes or discards what a crash interrupted, finds the sealed segments, and cuts a torn tail, keeping a .broken copy of
// whatever it cuts. It is idempotent: a crash in the middle leaves a
// directory that the next repair finishes. On a directory a clean Close left,
// it lists the log directory, reads the manifest and scans the tail: nothing
// in sealed/ is touched.
func repair(dir string, fsys fsutil.FS) (Recovered, opened, error) {
	var rec Recovered
	st, err := tidyDir(dir, fsys, &rec)
	if err != nil {
		return rec, opened{}, err
	}
	segs, man, ready, err := resolveLayout(dir, fsys, st, &rec)
	if err != nil {
		return rec, opened{}, err
	}
	if len(segs) > 0 {
		if err := repairTail(dir, fsys, segs[len(segs)-1], &rec); err != nil {
			return rec, opened{}, err
		}
	}
	return rec, opened{segs: segs, man: man, sealedReady: ready}, nil
}

// tidyDir removes the leftovers of interrupted atomic writes from the log
// directory: a .tmp file was never renamed, so the operation that wrote it
// did not happen and the file it would have replaced is intact. It returns
// the directory as it then is.
func tidyDir(dir string, fsys fsutil.FS, rec *Recovered) (dirState, error) {
	st, err := readDirState(dir)
	if err != nil {
		return st, fmt.Errorf("list %s: %w", dir, err)
	}
	for _, name := range st.temps {
		if err := fsys.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return st, fmt.Errorf("remove %s: %w", name, err)
		}
		rec.Removed = append(rec.Removed, name)
	}
	if len(st.temps) > 0 {
		// Make the removals durable before anything is appended on top of
		// them.
		if err := fsys.SyncDir(dir); err != nil {
			return st, err
		}
	}
	st.temps = nil
	return st, nil
}

// repairTail scans the last segment. Every byte after its last intact record
// is a torn write (a crash mid-append, zeros from an extended but unwritten
// block, garbage) and is cut. Damage before the last intact record stays
// damage: if tidwall can still frame it, the segment is only cut; if not,
// the segment is rewritten with one empty entry per lost index.
func repairTail(dir string, fsys fsutil.FS, seg segFile, rec *Recovered) error {
	path := seg.path(dir)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read tail segment: %w", err)
	}
	type span struct{ off, end int64 } // a record's frame; end 0 for a lost index
	var spans []span
	var damaged []uint64
	validEnd, last := int64(0), seg.first-1
	sc := newSegScanner(bytesReaderAt(data), constSize(len(data)), seg.name(), seg.first)
scan:
	for {
		st, err := sc.step(^uint64(0))
		if err != nil {
			return err
		}
		switch st.kind {
		case stepRecord:
			spans = append(spans, span{st.off, st.end})
			validEnd, last = st.end, st.index
		case stepLost:
			for i := uint64(0); i < st.count; i++ {
				spans = append(spans, span{})
				damaged = append(damaged, st.index+i)
			}
		default:
			break scan
		}
	}
	count, framed := countFrames(data[:validEnd])
	framed = framed && count == last-seg.first+1
	cut := int64(len(data)) - validEnd
	if len(damaged) > 0 {
		// Intact framing around a record with a bad CRC needs no rewrite:
		// tidwall still counts right, and readers report the record.
		rec.Segment, rec.Damaged = seg.name(), damaged
	}
	if cut == 0 && framed {
		return nil
	}
	rec.Segment, rec.Offset, rec.Bytes = seg.name(), validEnd, cut
	if cut > 0 {
		n, whole := countFrames(data[validEnd:])
		rec.Records = int(n)
		if !whole {
			rec.Records++
		}
	}
	broken, err := keepBroken(dir, fsys, seg.name(), data)
	if err != nil {
		return err
	}
	rec.Broken = broken
	if framed {
		f, err := fsys.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("open tail segment: %w", err)
		}
		defer f.Close()
		if err := f.Truncate(validEnd); err != nil {
			return fmt.Errorf("cut tail segment: %w", err)
		}
		// The cut must be durable before new records are appended after it,
		// or a crash could bring the torn bytes back in front of them.
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync tail segment: %w", err)
		}
		return fsys.SyncDir(dir)
	}
	out := make([]byte, 0, validEnd)
	for _, s := range spans {
		if s.end == 0 {
			out = append(out, 0) // uvarint 0: an empty entry, read back as ErrEmpty
			continue
		}
		out = append(out, data[s.off:s.end]...)
	}
	rec.Rewritten = true
	return fsutil.WriteFileAtomic(fsys, path, out, 0o640)
}

// keepBroken writes data to the first free "<name>.broken[.N]" and syncs it
// and its directory entry, so the evidence survives whatever repair does
// next.
func keepBroken(dir string, fsys fsutil.FS, name string, data []byte) (string, error) {
	base := name + suffixBroken
	for i := 0; ; i++ {
		cand := base
		if i > 0 {
			cand = base + "." + strconv.Itoa(i)
		}
		f, err := fsys.OpenFile(filepath.Join(dir, cand), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("keep broken copy: %w", err)
		}
		_, werr := f.Write(data)
		if werr == nil {
			werr = f.Sync()
		}
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr == nil {
			// The name too: the cut that follows may reach the disk before
			// a later directory sync would.
			werr = fsys.SyncDir(dir)
		}
		if werr != nil {
			return "", fmt.Errorf("keep broken copy %s: %w", cand, werr)
		}
		return cand, nil
	}
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func constSize(n int) func() (int64, error) {
	return func() (int64, error) { return int64(n), nil }
}

func (r Recovered) String() string {
	var parts []string
	if r.Bytes > 0 {
		parts = append(parts, fmt.Sprintf("cut %d bytes (%d entries) from %s at offset %d", r.Bytes, r.Records, r.Segment, r.Offset))
	}
	if r.Rewritten {
		parts = append(parts, fmt.Sprintf("rewrote %s with placeholders for %d lost records", r.Segment, len(r.Damaged)))
	} else if len(r.Damaged) > 0 {
		parts = append(parts, fmt.Sprintf("%d damaged records left in %s", len(r.Damaged), r.Segment))
	}
	if r.Broken != "" {
		parts = append(parts, "kept "+r.Broken)
	}
	if len(r.Moved) > 0 {
		parts = append(parts, fmt.Sprintf("moved %d segment files (%s)", len(r.Moved), r.Moved[0]))
	}
	if r.Rebuilt {
		parts = append(parts, "rebuilt the list of sealed segments from "+sealedDirName+"/")
	} else if r.Rewrote {
		parts = append(parts, "rewrote the manifest")
	}
	if r.Created != "" {
		parts = append(parts, "created the missing tail "+r.Created)
	}
	if len(r.Removed) > 0 {
		parts = append(parts, fmt.Sprintf("removed %d leftover files", len(r.Removed)))
	}
	if len(parts) == 0 {
		return "nothing to repair"
	}
	return strings.Join(parts, "; ")
}
