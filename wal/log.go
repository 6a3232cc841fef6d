package wal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"

	"github.com/flumed/flumed/internal/fsutil"
	tidwall "github.com/tidwall/wal"
)

// Errors callers branch on (errors.Is).
var (
	// ErrClosed: the Log (or the Reader's Log) was closed.
	ErrClosed = errors.New("wal closed")
	// ErrFailed: a write or sync failed and the handle is dead. Every later
	// call returns the same error, which also wraps the cause (e.g.
	// syscall.ENOSPC). Close the Log and Open it again: Open repairs.
	ErrFailed = errors.New("wal failed, close and reopen")
	// ErrNotFound: the index is past LastIndex.
	ErrNotFound = errors.New("index not found")
	// ErrTruncated: the index is before FirstIndex (released or truncated).
	ErrTruncated = errors.New("index truncated")
	// ErrTooLarge: a payload is larger than MaxPayload.
	ErrTooLarge = errors.New("payload too large")
)

// DefaultSegmentSize is the segment size when Options.SegmentSize is zero.
const DefaultSegmentSize = 16 << 20

// Options configure Open. The zero value is usable.
type Options struct {
	// SegmentSize is the size at which the log seals the tail segment and
	// starts a new one (the record that reaches it is the segment's last, so
	// one record may overshoot it). tidwall holds the whole tail segment in
	// memory, so this bounds the log's memory: about 2×SegmentSize for the
	// tail buffer as it grows, plus the batch being appended. Sealed segments
	// are never cached (reads go to the files). Default 16 MiB, minimum 4 KiB.
	SegmentSize int64
	// FS is the seam every write, sync, rename and removal goes through.
	// Default fsutil.OS{}.
	FS fsutil.FS
	// Logger receives the one-line repair report and the fatal error of a
	// failed handle. Default: discard.
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.SegmentSize < 4<<10 || o.SegmentSize > 1<<30 {
		return o, fmt.Errorf("segment size %d outside [4 KiB, 1 GiB]", o.SegmentSize)
	}
	if o.FS == nil {
		o.FS = fsutil.OS{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Log is a durable, checksummed record log in one directory.
//
// Append, Sync, TruncateFront, Release and Close may be called from any
// goroutine; they are serialized. Readers (NewReader, Read) read the segment
// files themselves, never through tidwall, and run concurrently with them.
type Log struct {
	dir  string
	opts Options
	fs   fsutil.FS
	lg   *slog.Logger
	lock *fsutil.DirLock
	rec  Recovered
	man  *manifest

	relMu       sync.Mutex // serializes Release, TruncateFront and Close; taken before mu
	mu          sync.Mutex // serializes everything that writes
	tl          *tidwall.Log
	batch       tidwall.Batch
	enc         []byte
	tail        fsutil.File // our own handle on the tail segment, for Sync through the seam
	tailSeg     segFile
	tailSize    int64 // bytes in the tail segment: mirrors tidwall's buffer
	written     int64 // the tail's bytes up to here were synced or their writeback started
	dirDirty    bool  // names in the log directory changed since the last Sync
	sealedDirty bool  // names in sealed/ changed since the last Sync
	sealedReady bool  // sealed/ and the manifest exist, durably
	front       uint64
	synced      uint64
	err         error // sticky: set by the first failed write or sync
	tailBytes   atomic.Int64

	// view is what readers see. segs is replaced, never modified in place.
	view struct {
		sync.RWMutex
		segs     []segFile // live segments, oldest first; the last is the tail
		first    uint64    // FirstIndex
		replaced uint64    // bumped when segment files are removed
	}
	files   sync.RWMutex // held while files are moved or removed; readers open files under RLock
	last    atomic.Uint64
	closed  atomic.Bool
	corrupt atomic.Int64
}

// Open locks dir (creating it if needed), repairs what a crash left behind
// (FORMAT.md), logs the repair once, and opens the log for appending. It
// fails with an error matching fsutil.ErrLocked when another handle, in this
// process or another, has dir open.
//
// On a directory a clean Close left it reads the log directory (the tail
// segment and a few small files) and the manifest; it does not list, stat or
// open anything in sealed/, whatever the size of the log.
func Open(dir string, opts Options) (*Log, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	lock, err := fsutil.LockDir(dir)
	if err != nil {
		return nil, err
	}
	l, err := open(dir, opts, lock)
	if err != nil {
		lock.Unlock()
		return nil, err
	}
	return l, nil
}

// openTidwall opens tidwall on the log directory, which holds one segment
// (the tail) or none. tidwall never starts a segment itself: Append rolls
// to a new one (tidwall's SegmentSize is out of reach).
func openTidwall(dir string) (*tidwall.Log, error) {
	tl, err := tidwall.Open(dir, &tidwall.Options{
		NoSync:           true, // Sync fsyncs, through the seam, when the owner asks
		SegmentSize:      math.MaxInt,
		LogFormat:        tidwall.Binary,
		SegmentCacheSize: 1,
		NoCopy:           true,
		AllowEmpty:       true,
	})
	if err != nil {
		return nil, fmt.Errorf("open tidwall log in %s: %w", dir, err)
	}
	return tl, nil
}

func open(dir string, opts Options, lock *fsutil.DirLock) (*Log, error) {
	rec, op, err := repair(dir, opts.FS)
	if err != nil {
		return nil, fmt.Errorf("repair %s: %w", dir, err)
	}
	logRecovered(opts.Logger, dir, rec)
	tl, err := openTidwall(dir)
	if err != nil {
		return nil, err
	}
	l := &Log{dir: dir, opts: opts, fs: opts.FS, lg: opts.Logger, lock: lock, rec: rec, tl: tl,
		man: newManifest(opts.FS, dir, op.man), sealedReady: op.sealedReady, front: op.man.front}
	if err := l.openTail(op.segs); err != nil {
		tl.Close()
		return nil, err
	}
	// A brand-new log has just created its first segment; a repaired one may
	// have renamed files. One directory sync at the first Sync covers both.
	l.dirDirty = true
	return l, nil
}

// openTail checks that tidwall holds the tail repair found (tidwall creates
// segment 1 in an empty directory), opens our own handle on it and publishes
// the segments.
func (l *Log) openTail(segs []segFile) error {
	first, err := l.tl.FirstIndex()
	if err != nil {
		return err
	}
	last, err := l.tl.LastIndex()
	if err != nil {
		return err
	}
	if len(segs) == 0 {
		segs = []segFile{{first: first}}
	}
	tail := segs[len(segs)-1]
	if tail.first != first || tail.sealed {
		return fmt.Errorf("tidwall opened %s at %d, but the tail is %s", l.dir, first, tail.name())
	}
	f, err := l.fs.OpenFile(tail.path(l.dir), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open tail segment: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open tail segment: %w", err)
	}
	l.tail, l.tailSeg, l.tailSize, l.written = f, tail, fi.Size(), fi.Size()
	l.tailBytes.Store(l.tailSize)
	l.last.Store(last)
	l.synced = last
	// A front past the end (records released, then cut as a torn tail) means
	// an empty log that goes on at the end.
	l.front = min(l.front, last+1)
	l.setView(segs, false)
	return nil
}

// logRecovered logs what repair did, once: a warning when records were cut or
// found damaged, a note when it only tidied up after a crash or a Release.
func logRecovered(lg *slog.Logger, dir string, rec Recovered) {
	switch {
	case rec.Bytes > 0 || rec.Rewritten || len(rec.Damaged) > 0:
		lg.Warn("wal repaired", "dir", dir, "segment", rec.Segment, "offset", rec.Offset,
			"records_cut", rec.Records, "bytes_cut", rec.Bytes, "damaged", len(rec.Damaged),
			"broken_copy", rec.Broken, "report", rec.String())
	case rec.Changed():
		lg.Info("wal tidied", "dir", dir, "report", rec.String())
	}
}

// Recovered reports what Open repaired.
func (l *Log) Recovered() Recovered { return l.rec }

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.dir }

// setView publishes the segments readers see, minus those wholly before the
// front (Release drops them from the view before it removes their files).
// replaced tells readers that files they may hold open were removed. Callers
// hold mu.
func (l *Log) setView(segs []segFile, replaced bool) {
	for len(segs) > 1 && segs[1].first <= l.front {
		segs = segs[1:]
	}
	l.view.Lock()
	defer l.view.Unlock()
	l.view.segs = segs
	l.view.first = max(l.front, segs[0].first)
	if replaced {
		l.view.replaced++
	}
}

// usable returns the error every call returns once the handle is closed or dead.
func (l *Log) usable() error {
	if l.closed.Load() {
		return ErrClosed
	}
	return l.err
}

// fail kills the handle: tidwall's memory and the file may now disagree, and
// a failed fsync may have dropped pages the kernel then marked clean.
func (l *Log) fail(op string, err error) error {
	if l.err == nil {
		l.err = fmt.Errorf("%s: %w: %w", op, ErrFailed, err)
		l.lg.Error("wal failed", "dir", l.dir, "err", l.err)
	}
	return l.err
}

// Close closes the log and releases the directory lock. On a live handle it
// first syncs what was appended and, if the manifest grew by appends since it
// was last written whole, rewrites it in one piece (so that the next Open
// reads it with one request); on a dead one it syncs nothing and just
// releases everything. Readers fail with ErrClosed afterwards. A second Close
// returns ErrClosed.
func (l *Log) Close() error {
	l.relMu.Lock()
	defer l.relMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	var errs []error
	if l.err == nil {
		errs = append(errs, l.syncLocked(), l.man.tidy())
		if l.tl != nil {
			errs = append(errs, l.tl.Close())
		}
	} else if l.tl != nil {
		l.tl.Close() // its own fsync proves nothing after a failure
	}
	l.closed.Store(true)
	errs = append(errs, l.man.close(), l.tail.Close(), l.lock.Unlock())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close %s: %w", l.dir, err)
	}
	return nil
}

// FirstIndex is the first index that may still be read. When the log is
// empty it is LastIndex()+1 (so a new log has FirstIndex 1, LastIndex 0).
func (l *Log) FirstIndex() uint64 {
	l.view.RLock()
	defer l.view.RUnlock()
	return l.view.first
}

// LastIndex is the index of the last record appended (durable or not), 0 if
// none ever was.
func (l *Log) LastIndex() uint64 { return l.last.Load() }

// SegmentInfo describes one segment file.
type SegmentInfo struct {
	Name   string // file name: the first index as 20 digits
	First  uint64 // index of its first record
	Last   uint64 // index of its last record; First-1 when it holds none
	Size   int64  // bytes
	Sealed bool   // in sealed/ (every segment but the tail, once sealed)
}

// Segments lists the live segments with their index ranges and sizes. It
// touches no file: the sizes of sealed segments come from the manifest.
func (l *Log) Segments() []SegmentInfo {
	l.view.RLock()
	segs := l.view.segs
	l.view.RUnlock()
	out := make([]SegmentInfo, len(segs))
	for i, s := range segs {
		out[i] = SegmentInfo{Name: s.name(), First: s.first, Size: s.size, Sealed: s.sealed}
		if i+1 < len(segs) {
			out[i].Last = segs[i+1].first - 1
		} else {
			out[i].Last = l.last.Load()
			out[i].Size = l.tailBytes.Load()
		}
	}
	return out
}

// Stats are the log's counters, for monitoring.
type Stats struct {
	FirstIndex, LastIndex uint64
	SyncedIndex           uint64 // records up to here are durable
	Segments              int
	CorruptRecords        int64 // *CorruptionErrors readers of this Log returned since Open
	Failed                error // the sticky error of a dead handle
}

// Stats returns the counters as of now.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.view.RLock()
	defer l.view.RUnlock()
	return Stats{
		FirstIndex:     l.view.first,
		LastIndex:      l.last.Load(),
		SyncedIndex:    l.synced,
		Segments:       len(l.view.segs),
		CorruptRecords: l.corrupt.Load(),
		Failed:         l.err,
	}
}

// Read returns a copy of the payload at index. It scans the record's segment
// from its start, so it costs up to one segment read: use a Reader to read
// many. It returns a *CorruptionError for a damaged record, ErrTruncated
// before FirstIndex and ErrNotFound past LastIndex.
func (l *Log) Read(index uint64) ([]byte, error) {
	r, err := l.NewReader(index)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	rec, err := r.Next()
	if err == io.EOF {
		return nil, fmt.Errorf("read %d: %w", index, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), rec.Payload...), nil
}
