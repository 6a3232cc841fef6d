package wal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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
	// SegmentSize is the size past which tidwall/wal starts a new segment
	// file (a batch may overshoot it). tidwall holds the whole tail segment in
	// memory, so this bounds the log's memory: about 2×SegmentSize for the tail
	// buffer as it grows, plus the batch being appended. Older segments are
	// never cached (reads go to the files). Default 16 MiB, minimum 4 KiB.
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

	relMu         sync.Mutex // serializes Release, TruncateFront and Close; taken before mu
	mu            sync.Mutex // serializes everything that writes
	tl            *tidwall.Log
	batch         tidwall.Batch
	enc           []byte
	tail          fsutil.File // our own handle on the tail segment, for Sync through the seam
	tailName      string
	tailSize      int64 // bytes in the tail segment: mirrors tidwall's buffer
	dirDirty      bool  // segment files were created or renamed since the last Sync
	synced        uint64
	err           error  // sticky: set by the first failed write or sync
	tombstones    int    // released segments emptied but still known to tidwall
	dropBelow     uint64 // segments wholly below this index are released
	maxTombstones int    // maxTombstones, lowered by tests

	// view is what readers see. segs is replaced, never modified in place.
	view struct {
		sync.RWMutex
		segs     []segFile
		replaced uint64 // bumped when files are emptied, removed or replaced
	}
	files   sync.RWMutex // held by tidwall truncations; readers open files under RLock
	last    atomic.Uint64
	closed  atomic.Bool
	corrupt atomic.Int64
}

// Open locks dir (creating it if needed), repairs what a crash left behind
// (see doc.go), logs the repair once, and opens the log for appending. It
// fails with an error matching fsutil.ErrLocked when another handle, in this
// process or another, has dir open.
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

func open(dir string, opts Options, lock *fsutil.DirLock) (*Log, error) {
	rec, err := repair(dir, opts.FS)
	if err != nil {
		return nil, fmt.Errorf("repair %s: %w", dir, err)
	}
	logRecovered(opts.Logger, dir, rec)
	tl, err := tidwall.Open(dir, &tidwall.Options{
		NoSync:           true, // Sync fsyncs, through the seam, when the owner asks
		SegmentSize:      int(opts.SegmentSize),
		LogFormat:        tidwall.Binary,
		SegmentCacheSize: 1,
		NoCopy:           true,
		AllowEmpty:       true,
	})
	if err != nil {
		return nil, fmt.Errorf("open tidwall log in %s: %w", dir, err)
	}
	last, err := tl.LastIndex()
	if err != nil {
		tl.Close()
		return nil, err
	}
	l := &Log{dir: dir, opts: opts, fs: opts.FS, lg: opts.Logger, lock: lock, rec: rec, tl: tl, maxTombstones: maxTombstones}
	l.last.Store(last)
	l.synced = last
	// A brand-new log has just created its first segment; a repaired one may
	// have renamed files. One directory sync at the first Sync covers both.
	l.dirDirty = true
	if err := l.reload(); err != nil {
		tl.Close()
		return nil, err
	}
	return l, nil
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

// reload re-reads the segment list from the directory and reopens the tail
// handle when the tail changed. Callers hold mu.
func (l *Log) reload() error { return l.load(false) }

// reloadReplaced is reload after files were removed or replaced: readers
// holding one open find their place again.
func (l *Log) reloadReplaced() error { return l.load(true) }

func (l *Log) load(replaced bool) error {
	st, err := readDirState(l.dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", l.dir, err)
	}
	live := st.live()
	if len(live) == 0 {
		return fmt.Errorf("no segment in %s", l.dir)
	}
	tail := live[len(live)-1]
	l.tailSize = tail.size
	l.setView(live, replaced)
	l.tombstones = len(st.segs) - len(l.segs())
	if l.tail != nil && l.tailName == tail.file {
		return nil
	}
	if l.tail != nil {
		l.tail.Close()
		l.tail = nil
	}
	f, err := l.fs.OpenFile(filepath.Join(l.dir, tail.file), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open tail segment: %w", err)
	}
	l.tail, l.tailName = f, tail.file
	return nil
}

// setView publishes the segments readers see, minus those Release has
// taken (it lists them before their files are emptied). replaced tells
// readers that files they may hold open were emptied or replaced. Callers
// hold mu.
func (l *Log) setView(segs []segFile, replaced bool) {
	for len(segs) > 1 && segs[1].first <= l.dropBelow {
		segs = segs[1:]
	}
	l.view.Lock()
	defer l.view.Unlock()
	l.view.segs = segs
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

// Append writes payloads as consecutive records with one tidwall WriteBatch
// and returns the indexes of the first and last. Nothing is durable until
// Sync returns nil. Appending nothing returns (0, 0, nil).
//
// A failed write kills the handle (ErrFailed); a payload over MaxPayload is
// refused with ErrTooLarge and changes nothing.
func (l *Log) Append(payloads ...[]byte) (first, last uint64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return 0, 0, err
	}
	if len(payloads) == 0 {
		return 0, 0, nil
	}
	prev := l.last.Load()
	var bytes int64
	for i, p := range payloads {
		if len(p) > MaxPayload {
			l.batch.Clear()
			return 0, 0, fmt.Errorf("append %d bytes: %w", len(p), ErrTooLarge)
		}
		l.enc = appendRecord(l.enc[:0], prev+1+uint64(i), p)
		l.batch.Write(prev+1+uint64(i), l.enc)
		bytes += frameSize(len(p))
	}
	if err := l.fs.CheckWrite(filepath.Join(l.dir, l.tailName), bytes); err != nil {
		l.batch.Clear()
		return 0, 0, l.fail("append", err)
	}
	if err := l.tl.WriteBatch(&l.batch); err != nil {
		l.batch.Clear()
		return 0, 0, l.fail("append", err)
	}
	last = prev + uint64(len(payloads))
	if l.cycles(payloads) {
		// tidwall synced the segments it closed and created new files: their
		// names are durable only after a directory sync, due at the next Sync.
		l.dirDirty = true
		l.tl.ClearCache() // drop the closed segment tidwall keeps cached
		if err := l.reload(); err != nil {
			return 0, 0, l.fail("append", err)
		}
	}
	l.last.Store(last)
	return prev + 1, last, nil
}

// cycles replays tidwall's segment cycling rule on the bytes just written and
// reports whether it started a new segment file.
func (l *Log) cycles(payloads [][]byte) bool {
	cycled := false
	if l.tailSize > l.opts.SegmentSize {
		cycled, l.tailSize = true, 0
	}
	for _, p := range payloads {
		l.tailSize += frameSize(len(p))
		if l.tailSize >= l.opts.SegmentSize {
			cycled, l.tailSize = true, 0
		}
	}
	return cycled
}

// Sync makes every record appended before it durable: it syncs the directory
// if segment files were created since the last Sync, then the tail segment's
// data. It costs nothing when nothing was appended. A failed sync kills the
// handle (ErrFailed); it is never retried.
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	last := l.last.Load()
	if last == l.synced && !l.dirDirty {
		return nil
	}
	if l.dirDirty {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return l.fail("sync", err)
		}
		l.dirDirty = false
	}
	if err := l.tail.Sync(); err != nil {
		return l.fail("sync", err)
	}
	l.synced = last
	return nil
}

// Close closes the log and releases the directory lock. On a live handle it
// first syncs what was appended; on a dead one it syncs nothing and just
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
		if l.last.Load() != l.synced || l.dirDirty {
			if l.dirDirty {
				errs = append(errs, l.fs.SyncDir(l.dir))
			}
			errs = append(errs, l.tail.Sync())
		}
		errs = append(errs, l.tl.Close())
	} else {
		l.tl.Close() // its own fsync proves nothing after a failure
	}
	l.closed.Store(true)
	errs = append(errs, l.tail.Close(), l.lock.Unlock())
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
	return l.view.segs[0].first
}

// LastIndex is the index of the last record appended (durable or not), 0 if
// none ever was.
func (l *Log) LastIndex() uint64 { return l.last.Load() }

// SegmentInfo describes one segment file.
type SegmentInfo struct {
	Name  string // file name: the first index as 20 digits
	First uint64 // index of its first record
	Last  uint64 // index of its last record; First-1 when it holds none
	Size  int64  // bytes
}

// Segments lists the live segments with their index ranges and sizes.
func (l *Log) Segments() []SegmentInfo {
	l.view.RLock()
	segs := l.view.segs
	l.view.RUnlock()
	out := make([]SegmentInfo, len(segs))
	for i, s := range segs {
		out[i] = SegmentInfo{Name: s.name(), First: s.first, Size: s.size}
		if fi, err := os.Stat(filepath.Join(l.dir, s.file)); err == nil {
			out[i].Size = fi.Size()
		}
		if i+1 < len(segs) {
			out[i].Last = segs[i+1].first - 1
		} else {
			out[i].Last = l.last.Load()
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
		FirstIndex:     l.view.segs[0].first,
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
