// Package taildir is Flume's TAILDIR source: it follows the files whose
// names match each group's pattern and puts every complete line as an event,
// across renames, deletions and copytruncate rotations, remembering its
// positions in Flume's position file and its own journal.
//
// It must never advance a position past lines the channel processor has not
// accepted, never deliver a line of one file as another's, and never read a
// line twice because of a rotation; a crash may repeat at most the batch in
// flight. It must never import package source (whose registry imports it).
// Files are read through the tailFS seam (fs.go) and time comes from a
// clock.Clock, so tests replay races with logrotate step by step.
package taildir

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/clock"
	"github.com/flumed/flumed/internal/counter"
	"github.com/flumed/flumed/internal/fsutil"
	"github.com/flumed/flumed/source/sourceapi"
)

// Source is Flume's TAILDIR source (FLUME.md §2.3): it follows every file
// whose name matches a group's pattern and puts each line as an event.
//
// Unlike Flume it never reads a line twice because of rotation and never
// loses its place in a crash:
//   - files are known by device and inode plus a fingerprint of their first
//     KiB, so a renamed file keeps its position, a deleted or rotated-away file
//     still open is read to its end, a reused inode is told apart, and a file
//     that shrank or changed its first bytes (copytruncate) restarts at 0;
//     when the copy made by copytruncate is itself watched, it is read from
//     where the original stopped;
//   - a position advances only after the channel processor accepted the
//     batch, and is fdatasync'd in a journal before the next batch
//     (positionSync=batch), so a crash repeats at most one batch; Flume's
//     position file is rewritten atomically every writePosInterval and on
//     Stop (position.go).
//
// Directory changes arrive through fsnotify; a periodic rescan covers lost
// events and file systems without them. Poll reads at most one batch.
type Source struct {
	name string
	cfg  taildirConfig
	log  *slog.Logger
	fs   fsutil.FS // writes of the position files; tests inject faults here
	// The seams tests replace: the file system the followed files are read
	// through, the clock of the periodic work and idle files, and the
	// directory watch (tests that drive the source step by step go without).
	fsys       tailFS
	clk        clock.Clock
	startWatch func(*slog.Logger) (*dirWatcher, error)

	counters  counter.Source
	split     atomic.Int64 // lines cut at maxLineLength (lineOverflow=split)
	truncated atomic.Int64 // lines cut short (lineOverflow=truncate)

	mu      sync.Mutex
	running bool
	proc    sourceapi.BatchPutter
	pos     *tailPositions
	watch   *dirWatcher // nil when fsnotify is unavailable
	dirs    map[string]*tailDir
	files   map[fileID]*tailFile
	order   []*tailFile // oldest mtime first, as Flume reads them
	cursor  int         // index in order of the file being read
	streak  int64       // consecutive full batches from order[cursor]
	lost    []tailLost  // identities of files truncated or vanished, for copies
	pool    [][]byte    // read buffers of files at their end
	scratch []byte
	batch   tailBatch
	failing bool // the last batch was refused by the channel

	nextRescan, nextIdle, nextCheckpoint time.Time
}

var (
	_ sourceapi.Pollable   = (*Source)(nil)
	_ sourceapi.BatchSizer = (*Source)(nil)
	_ counter.Monitored    = (*Source)(nil)
)

// Name returns the source's name.
func (s *Source) Name() string { return s.name }

// BatchSize is the most lines put in one transaction.
func (s *Source) BatchSize() int { return s.cfg.batchSize }

// Backoff returns backoffSleepIncrement and maxBackoffSleep.
func (s *Source) Backoff() (increment, max time.Duration) { return s.cfg.backoffInc, s.cfg.backoffMax }

// FlumeMetrics returns Flume's source counters, plus flumed's counts of lines
// cut at maxLineLength.
func (s *Source) FlumeMetrics() map[string]string {
	m := s.counters.FlumeMetrics()
	m["LongLineSplitCount"] = strconv.FormatInt(s.split.Load(), 10)
	m["LongLineTruncatedCount"] = strconv.FormatInt(s.truncated.Load(), 10)
	return m
}

// Start loads the positions, finds the files and starts watching their
// directories. It fails when the position files cannot be read or written.
func (s *Source) Start(_ context.Context, p sourceapi.BatchPutter) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return nil
	}
	s.proc = p
	s.files = make(map[fileID]*tailFile)
	s.dirs = make(map[string]*tailDir)
	s.order, s.lost, s.cursor, s.streak = nil, nil, 0, 0
	for _, g := range s.cfg.groups {
		d := s.dirs[g.dir]
		if d == nil {
			d = &tailDir{path: g.dir}
			s.dirs[g.dir] = d
		}
		d.groups = append(d.groups, g)
	}
	s.pos = newTailPositions(s.fs, s.cfg.positionFile, s.cfg.positionSync, s.log)
	entries, err := s.pos.load()
	if err != nil {
		return fmt.Errorf("taildir %s: %w", s.name, err)
	}
	if w, err := s.startWatch(s.log); err != nil {
		s.log.Warn("cannot watch directories; relying on the periodic rescan", slog.Any("err", err))
	} else {
		s.watch = w
	}
	s.restore(entries)
	if err := s.pos.checkpoint(s.snapshot()); err != nil {
		s.closeAll()
		return fmt.Errorf("taildir %s: %w", s.name, err)
	}
	now := s.clk.Now()
	s.nextRescan = now.Add(s.cfg.rescanInterval)
	s.nextIdle = now.Add(s.idleCheckEvery())
	s.nextCheckpoint = now.Add(s.cfg.writePosInterval)
	s.running = true
	s.counters.Started()
	s.log.Info("taildir source started", slog.Int("files", len(s.files)), slog.String("positionFile", s.cfg.positionFile))
	return nil
}

// idleCheckEvery is Flume's idle checker period (5 s), or idleTimeout when
// that is shorter.
func (s *Source) idleCheckEvery() time.Duration { return min(5*time.Second, s.cfg.idleTimeout) }

// Stop writes the positions one last time and closes every file. Lines read
// but not committed are read again after the next Start.
func (s *Source) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	s.running = false
	err := s.pos.checkpoint(s.snapshot())
	s.closeAll()
	s.counters.Stopped()
	if err != nil {
		return fmt.Errorf("taildir %s: final positions: %w", s.name, err)
	}
	s.log.Info("taildir source stopped", slog.String("positionFile", s.cfg.positionFile))
	return nil
}

// abandon closes everything without writing positions: what a crash leaves.
// Tests use it to restart from the journal alone.
func (s *Source) abandon() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = false
	s.closeAll()
}

func (s *Source) closeAll() {
	if s.watch != nil {
		s.watch.close()
		s.watch = nil
	}
	for _, t := range s.files {
		if t.f != nil {
			t.f.Close()
			t.f = nil
		}
	}
	s.pos.close()
}

// snapshot lists the positions to persist: every tracked file but copies
// still waiting for their original.
func (s *Source) snapshot() []tailPos {
	out := make([]tailPos, 0, len(s.order))
	for _, t := range s.order {
		if t.copyOf == nil {
			out = append(out, t.persisted())
		}
	}
	return out
}

// Poll reads one batch from the next file with complete lines and hands it
// to the channel processor. It returns Backoff when nothing was read or it
// refused the batch (whose lines are read again next time).
func (s *Source) Poll(context.Context) (sourceapi.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return sourceapi.Backoff, nil
	}
	now := s.clk.Now()
	s.housekeep(now)
	for _, t := range slices.Clone(s.order) { // closing an idle file may forget it
		if t.idle && s.files[t.id] == t {
			if st, done := s.tryFile(t, now, true); done {
				return st, nil
			}
		}
	}
	for range len(s.order) {
		if s.cursor >= len(s.order) {
			s.cursor = 0
		}
		t := s.order[s.cursor]
		if s.streak < s.cfg.maxBatchCount {
			if st, done := s.tryFile(t, now, false); done {
				return st, nil
			}
		}
		s.cursor++
		s.streak = 0
	}
	return sourceapi.Backoff, nil
}

// tryFile reads one batch from t and delivers it. done is false when t had no
// complete line (or cannot be read now).
func (s *Source) tryFile(t *tailFile, now time.Time, flush bool) (st sourceapi.Status, done bool) {
	if !s.ensureOpen(t) {
		return sourceapi.Backoff, false
	}
	known := t.fp.n > 0
	if t.fresh && !s.classify(t, now) {
		return sourceapi.Backoff, false
	}
	if t.copyOf != nil {
		if s.recheckCopy(t); t.copyOf != nil {
			return sourceapi.Backoff, false
		}
	}
	size, _, ok := s.verify(t, now)
	if !ok {
		return sourceapi.Backoff, false
	}
	if !known && t.fp.n > 0 {
		// Taken up empty, it now has first bytes: on a file system without
		// creation times they are all a restart can know it by, should it be
		// renamed out of the pattern before a full channel lets a batch through.
		s.journal(t)
	}
	if t.rd.buf == nil && t.rd.readEnd() >= size && !flush {
		return sourceapi.Backoff, false // nothing new: leave the buffer in the pool
	}
	s.takeBuffer(t)
	b := &s.batch
	if err := t.readBatch(b, s.cfg.batchSize, s.cfg.maxLineLength, s.cfg.truncate, flush); err != nil {
		s.readFailed(t, err)
		t.reset()
		return sourceapi.Backoff, false
	}
	if len(b.lines) == 0 {
		s.releaseBuffer(t)
		if flush {
			s.closeIdle(t)
		}
		return sourceapi.Backoff, false
	}
	// Read the bytes a copy is matched by before confirming the file, so
	// they come from the same content as the lines.
	b.tail = t.tailBefore(b.tail, b.end)
	same, err := t.unchanged(s.scratch)
	if err != nil {
		s.readFailed(t, err)
		t.reset()
		return sourceapi.Backoff, false
	}
	if !same {
		s.restartTruncated(t, fileSize(t.f), now)
		return sourceapi.Backoff, false
	}
	return s.deliver(t, b, now), true
}

// verify checks an open file for truncation (restarting it at 0) and
// returns its size; ok is false when it cannot be read.
func (s *Source) verify(t *tailFile, now time.Time) (size int64, truncated, ok bool) {
	if s.scratch == nil {
		s.scratch = make([]byte, tailFPMax)
	}
	size, truncated, err := t.check(s.scratch)
	if err != nil {
		s.readFailed(t, err)
		return 0, false, false
	}
	if truncated {
		s.restartTruncated(t, size, now)
	}
	return size, truncated, true
}

// deliver hands a batch to the channel processor and commits its position.
func (s *Source) deliver(t *tailFile, b *tailBatch, now time.Time) sourceapi.Status {
	events := make([]channel.Event, len(b.lines))
	for i, l := range b.lines {
		h := make(map[string]string, len(t.group.headers)+2)
		for k, v := range t.group.headers {
			h[k] = v
		}
		if s.cfg.fileHeader {
			h[s.cfg.fileHeaderKey] = t.path
		}
		if s.cfg.byteOffsetHeader {
			h["byteoffset"] = strconv.FormatInt(l.start, 10)
		}
		events[i] = channel.Event{Headers: h, Body: l.body}
	}
	s.counters.EventReceived.Add(int64(len(events)))
	s.counters.AppendBatchReceived.Add(1)
	if err := s.proc.PutBatch(events); err != nil {
		// Never skip: the same lines are read again after the backoff.
		s.counters.ChannelWriteFail.Add(1)
		if !s.failing {
			s.log.Warn("channel refused a batch; retrying the same lines after a backoff",
				slog.String("file", t.path), slog.Int64("pos", t.pos), slog.Any("err", err))
		}
		s.failing = true
		t.reset()
		return sourceapi.Backoff
	}
	if s.failing {
		s.log.Info("channel accepts batches again", slog.String("file", t.path))
		s.failing = false
	}
	s.counters.EventAccepted.Add(int64(len(events)))
	s.counters.AppendBatchAccepted.Add(1)
	s.split.Add(int64(b.split))
	s.truncated.Add(int64(b.truncated))
	t.pos = b.end
	// Not read again now: the file may have been truncated while the
	// channel took the batch.
	t.tail = append(t.tail[:0], b.tail...)
	t.active = now
	if err := s.pos.record(tailJournalRecord{tailPos: t.persisted()}); err != nil {
		s.counters.GenericProcessingFail.Add(1)
		s.log.Error("cannot record a position; it is kept in memory until the next checkpoint", slog.Any("err", err))
	}
	if len(b.lines) == s.cfg.batchSize {
		s.streak++
	} else {
		s.cursor++
		s.streak = 0
	}
	return sourceapi.Ready
}

func (s *Source) readFailed(t *tailFile, err error) {
	s.counters.EventReadFail.Add(1)
	s.log.Error("cannot read file", slog.String("file", t.path), slog.Any("err", err))
}

// takeBuffer gives t a read buffer from the pool.
func (s *Source) takeBuffer(t *tailFile) {
	if t.rd.buf != nil {
		return
	}
	if n := len(s.pool); n > 0 {
		t.rd.buf, s.pool = s.pool[n-1], s.pool[:n-1]
	} else {
		t.rd.buf = make([]byte, tailReadSize)
	}
	t.rd.r, t.rd.w = 0, 0
}

// releaseBuffer returns t's buffer to the pool when it holds nothing, so
// memory follows the number of files being written, not of files tracked.
func (s *Source) releaseBuffer(t *tailFile) {
	if t.rd.buf == nil || !t.rd.empty() {
		return
	}
	if len(t.rd.buf) == tailReadSize && len(s.pool) < 64 {
		s.pool = append(s.pool, t.rd.buf)
	}
	t.rd.buf, t.rd.r, t.rd.w = nil, 0, 0
}

// housekeep runs the periodic work: directory rescans, the idle check, expiry
// of lost identities and the position checkpoint.
func (s *Source) housekeep(now time.Time) {
	var dirty map[string]bool
	all := false
	if s.watch != nil {
		dirty, all = s.watch.take()
	}
	periodic := !now.Before(s.nextRescan)
	if periodic {
		s.nextRescan = now.Add(s.cfg.rescanInterval)
	}
	if all || periodic || len(dirty) > 0 {
		s.rescan(dirty, all, periodic, now)
	}
	if !now.Before(s.nextIdle) {
		s.nextIdle = now.Add(s.idleCheckEvery())
		for _, t := range s.order {
			if t.f != nil && now.Sub(t.active) >= s.cfg.idleTimeout {
				t.idle = true
			}
		}
	}
	kept := s.lost[:0]
	for _, l := range s.lost {
		if now.Before(l.until) {
			kept = append(kept, l)
		}
	}
	s.lost = kept
	if !now.Before(s.nextCheckpoint) {
		s.nextCheckpoint = now.Add(s.cfg.writePosInterval)
		if err := s.pos.checkpoint(s.snapshot()); err != nil {
			s.counters.GenericProcessingFail.Add(1)
			s.log.Error("cannot write the position files", slog.Any("err", err))
		}
	}
}
