package channel

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flumed/flumed/internal/clock"
	"github.com/flumed/flumed/internal/fsutil"
	"github.com/flumed/flumed/wal"
)

// File is Flume's file channel rebuilt on a write-ahead log: a durable queue
// whose committed events survive SIGKILL, power loss of unsynced pages, torn
// tail writes and restarts. FILE_FORMAT.md has the on-disk format and the
// crash argument; in short:
//
//   - Each committed put transaction is one record in the data log (the wal
//     package over tidwall/wal, CRC-framed), so it is atomic on disk by
//     construction. Its events get consecutive global sequence numbers at
//     commit.
//   - The queue is the sequence numbers [floor, next) minus the few ranges
//     acknowledged above the floor. Size and capacity come from these numbers,
//     never from a scan.
//   - Takes read forward through an in-memory cursor, one record at a time; a
//     rolled-back take returns its events to the head, in order.
//   - The ack state (floor, its log position, the ranges) is made durable in a
//     two-slot checkpoint before a take's Commit returns, so a committed take
//     is never delivered again and restart reads two small files, never the
//     backlog.
//   - Two commit loops group concurrent commits: the put loop appends every
//     pending put record in one batch and syncs once; the ack loop folds every
//     pending take commit into one checkpoint write. They run side by side, so
//     a producer's put and a consumer's ack sync in parallel.
//   - A background reclaimer frees whole segments below the floor, off the
//     hot path.
//
// Put follows Flume's file channel: capacity (a soft limit) is taken at Put,
// waiting up to keep-alive; Take returns at once when the queue is empty.
// Events returned by Take share memory with the channel's redelivery queue:
// takers treat them as read-only. A put event is copied at Put.
type File struct {
	name  string
	opts  FileOptions
	log   *slog.Logger
	fs    fsutil.FS
	logID [16]byte
	// origin and originDurable are set by recover, before any slot is
	// written or any event put, and never change after (file_origin.go).
	origin        OriginID
	originDurable bool
	locks         []*fsutil.DirLock
	clock         clock.Clock // times the keep-alive wait for capacity; tests put a fake here

	walMu sync.RWMutex // users of wal outside the put loop hold R; the put loop replacing it holds W
	wal   *wal.Log     // nil while recovery has not reopened it

	ckpt   *checkpointSlots
	backup *checkpointSlots // nil unless a backup checkpoint directory is set
	space  *diskFloor

	// The commit loops (file_commit_loop.go) receive the commits.
	sendMu  sync.RWMutex    // commit senders hold R; Close holds W to stop them
	putReqs chan *commitReq // to the put loop
	ackReqs chan *commitReq // to the ack loop
	gapKick chan struct{}   // tells the ack loop new gaps wait to be recorded
	stop    chan struct{}   // closed by Close: the loops finish and exit
	wg      sync.WaitGroup

	// readMu serializes takers' reading of records (the wal Reader belongs to
	// one goroutine at a time, and the cursor has one position).
	readMu sync.Mutex
	cur    cursorRecord // the record being handed out; under readMu, moved with the cursor (file_state.go)
	rd     logReader    // sequential reader of the log; under readMu

	// The queue state, under f.mu, and changed only in file_state.go (which
	// also has the lock order of all these locks).
	queueState

	crashing atomic.Bool // crash(): the loops drop their work
	// Unhealthy: the last write to the log (logFailed) or to the checkpoint
	// (ckptFailed) failed, and none has succeeded since.
	logFailed, ckptFailed            atomic.Bool
	putAttempts, putSuccesses        atomic.Int64
	takeAttempts, takeSuccesses      atomic.Int64
	putErrors, takeErrors            atomic.Int64
	checkpointErrors, backupErrors   atomic.Int64
	damagedRecords, maxReclaimMicros atomic.Int64
	start, stopTime                  atomic.Int64
	reclaimRounds                    atomic.Int64 // reclaim passes done (tests wait on it)
	stats                            FileCommitStats
}

var (
	_ Channel        = (*File)(nil)
	_ GroupCommitter = (*File)(nil)
)

// SyncsTakeCommits implements GroupCommitter: true with
// fsyncPerTransaction, where each take commit waits for a checkpoint sync,
// which CommitAll shares between transactions.
func (f *File) SyncsTakeCommits() bool { return f.opts.FsyncPerTransaction }

// OpenFile opens (creating if needed) the file channel in opts' directories:
// it locks them, repairs the log's tail, loads the checkpoint and starts the
// commit loops and the reclaimer. It fails when another process (or another
// File in this one) has the directories open, naming the holder's PID.
// log may be nil.
func OpenFile(name string, opts FileOptions, log *slog.Logger) (*File, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("file channel %s: %w", name, err)
	}
	opts = opts.normalize()
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	f := &File{
		name:    name,
		opts:    opts,
		log:     log.With("channel", name),
		fs:      opts.FS,
		putReqs: make(chan *commitReq, 256),
		ackReqs: make(chan *commitReq, 256),
		gapKick: make(chan struct{}, 1),
		stop:    make(chan struct{}),
		clock:   clock.Real{},
		stats:   newFileCommitStats(),
	}
	if err := f.open(); err != nil {
		f.release()
		return nil, fmt.Errorf("file channel %s: %w", name, err)
	}
	f.start.Store(time.Now().UnixMilli())
	f.wg.Add(3)
	go f.putLoop()
	go f.ackLoop()
	go f.maintain()
	return f, nil
}

// open does OpenFile's work before the goroutines start.
func (f *File) open() error {
	// The data log locks its own directory (wal.Open); the checkpoint
	// directories are locked here, unless one of them is the data directory.
	for _, d := range []string{f.opts.CheckpointDir, f.opts.BackupCheckpointDir, f.opts.DataDir} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o750); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
		if sameDir(d, f.opts.DataDir) {
			continue
		}
		l, err := fsutil.LockDir(d)
		if err != nil {
			return err
		}
		f.locks = append(f.locks, l)
	}
	id, hasID, err := readLogID(f.opts.DataDir)
	if err != nil {
		f.log.Warn("file channel: log id unreadable; treating the checkpoint as foreign", "err", err)
	}
	wl, err := openDataLog(f.fs, f.opts.DataDir, f.opts.SegmentSize, f.log)
	if err != nil {
		return fmt.Errorf("open data log: %w", err)
	}
	f.wal = wl
	if !hasID {
		if wl.LastIndex() >= wl.FirstIndex() {
			f.log.Warn("file channel: the data directory has records but no log id; its checkpoint cannot be trusted",
				"dir", f.opts.DataDir)
		}
		if id, err = newLogID(f.fs, f.opts.DataDir); err != nil {
			return err
		}
	}
	f.logID = id
	f.ckpt = &checkpointSlots{fs: f.fs, dir: f.opts.CheckpointDir}
	if f.opts.BackupCheckpointDir != "" {
		f.backup = &checkpointSlots{fs: f.fs, dir: f.opts.BackupCheckpointDir}
	}
	f.space = newDiskFloor(f.fs, f.opts.DataDir, f.opts.MinimumRequiredSpace)
	if err := f.recover(hasID); err != nil {
		return err
	}
	if err := f.checkKeys(); err != nil {
		return err
	}
	// A Flume file channel's backlog in these directories is imported
	// before anyone can put.
	return f.importFlume()
}

// release closes what open acquired, after a failed open or at Close.
func (f *File) release() {
	f.rd.close()
	if f.wal != nil {
		if err := f.wal.Close(); err != nil {
			f.log.Warn("file channel: close data log", "err", err)
		}
		f.wal = nil
	}
	if f.ckpt != nil {
		f.ckpt.close()
	}
	if f.backup != nil {
		f.backup.close()
	}
	for _, l := range f.locks {
		_ = l.Unlock()
	}
	f.locks = nil
}

// Name returns the component name.
func (f *File) Name() string { return f.name }

// Options returns the options the channel runs with, zero values filled in.
func (f *File) Options() FileOptions { return f.opts }

// Begin starts a transaction. Any goroutine may call it.
func (f *File) Begin() Txn { return &fileTxn{ch: f} }

// Stats returns Flume's file channel counters. Size counts committed events
// whose take has not committed yet. OldestAge is measured from the commit
// time in the record of the oldest of them (FILE_FORMAT.md: milliseconds,
// written by the put loop, so it survives a restart); oldestPutLocked says
// when it is a bound rather than exact.
func (f *File) Stats() Stats {
	size, open, oldestMs := f.sizeAndOpen()
	var age time.Duration
	switch {
	case size == 0:
	case oldestMs > 0:
		age = f.clock.Now().Sub(time.UnixMilli(oldestMs))
	default:
		// Not known (the head record could not be read at open): its
		// events were put before the channel opened, at least.
		age = f.clock.Now().Sub(time.UnixMilli(f.start.Load()))
	}
	ms := func(v int64) time.Time {
		if v == 0 {
			return time.Time{}
		}
		return time.UnixMilli(v)
	}
	return Stats{
		Type:                   "file",
		Size:                   int64(size),
		Capacity:               int64(f.opts.Capacity),
		PutAttempts:            f.putAttempts.Load(),
		PutSuccesses:           f.putSuccesses.Load(),
		TakeAttempts:           f.takeAttempts.Load(),
		TakeSuccesses:          f.takeSuccesses.Load(),
		StartTime:              ms(f.start.Load()),
		StopTime:               ms(f.stopTime.Load()),
		File:                   true,
		Open:                   open,
		Unhealthy:              f.logFailed.Load() || f.ckptFailed.Load(),
		PutErrors:              f.putErrors.Load(),
		TakeErrors:             f.takeErrors.Load(),
		CheckpointErrors:       f.checkpointErrors.Load(),
		BackupCheckpointErrors: f.backupErrors.Load(),
		OldestAge:              max(age, 0),
	}
}

// Close stops the channel: new and open transactions fail with ErrClosed,
// commits already handed to the commit loops complete, the log is synced,
// the backup checkpoint is written (checkpointOnClose) and the directories
// are unlocked. Events of open take transactions stay queued: they are not
// acknowledged. Close is idempotent.
func (f *File) Close() error {
	if !f.beginClose() {
		return nil
	}
	f.wg.Wait()
	var errs []error
	if f.opts.CheckpointOnClose && f.backup != nil {
		if err := f.writeBackup(); err != nil {
			errs = append(errs, err)
		}
	}
	f.walMu.Lock()
	f.rd.close()
	if f.wal != nil {
		if err := f.wal.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close data log: %w", err))
		}
		f.wal = nil
	}
	f.walMu.Unlock()
	f.release()
	f.stopTime.Store(time.Now().UnixMilli())
	return errors.Join(errs...)
}

// beginClose marks the channel closed and stops the loops; it reports false
// when the channel was already closed.
func (f *File) beginClose() bool {
	f.sendMu.Lock()
	first := f.markClosed() // puts waiting for capacity wake and fail with ErrClosed
	f.sendMu.Unlock()
	if !first {
		return false
	}
	close(f.stop)
	return true
}

// crash abandons the channel the way SIGKILL would: the loops stop without
// finishing queued commits, nothing more is written or synced, and the
// descriptors (and with them the locks) are dropped. Tests use it to restart
// from exactly what is on disk.
func (f *File) crash() {
	f.sendMu.Lock()
	f.markCrashed()
	f.sendMu.Unlock()
	f.crashing.Store(true)
	close(f.stop)
	f.wg.Wait()
	f.walMu.Lock()
	f.rd.close()
	if f.wal != nil {
		// Close syncs what was appended; a process killed by SIGKILL keeps
		// its written pages in the page cache too, so this is no stronger.
		_ = f.wal.Close()
		f.wal = nil
	}
	f.walMu.Unlock()
	f.release()
}

func (f *File) errClosed() error { return fmt.Errorf("channel %s: %w", f.name, ErrClosed) }
