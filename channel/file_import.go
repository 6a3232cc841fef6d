package channel

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flumed/flumed/channel/flumefile"
	"github.com/flumed/flumed/internal/fsutil"
)

// Importing an Apache Flume file channel's backlog. When the file channel
// opens on directories where Flume's file channel left its files (a
// checkpoint in checkpointDir, log-N data files in dataDirs), it moves the
// events Flume would have delivered into its own log, in Flume's delivery
// order, before it accepts a put (OpenFile has not returned); only once they
// are durable there does it move Flume's files aside, into a
// flume-imported-<time> directory beside them with a note. Nothing of
// Flume's is ever deleted or changed in place.
//
// The steps, and what a kill -9 at each leaves (FILE_FORMAT.md, "Importing
// a Flume file channel"):
//
//  1. Read Flume's backlog (channel/flumefile): checkpoint, replay, the
//     queue. Read-only; a refusal here writes nothing.
//  2. Write the marker flume-import.json in checkpointDir, atomically and
//     synced: phase "importing", the log index and sequence number the import
//     starts at, the backlog's fingerprint. Killed before it is durable:
//     nothing was written, the next open starts over.
//  3. Append the events as put records, then sync the log. Killed here: the
//     next open finds the marker, reads the same backlog (same fingerprint),
//     counts the events already in the log from the marker's index, and
//     appends the rest (a torn last record was cut by the log's repair). If
//     the backlog changed meanwhile, or a Flume record turns out to be one
//     Flume itself fails on, the records written so far are voided (their
//     numbers acknowledged in a synced checkpoint, so they are never
//     delivered) and the marker removed: nothing is half-imported.
//  4. Write a checkpoint, then the marker again, phase "imported", synced.
//     From then on Flume's files are never read again.
//  5. Set Flume's files aside: in each directory holding some, create the
//     flume-imported-<time> directory, write the note, rename the files
//     into it, sync both directories. Killed here: the next open finds phase
//     "imported" and moves what is left.
//  6. Remove the marker and sync checkpointDir. Only now can a restart no
//     longer tell an import happened but from the notes; Flume's files are
//     no longer where the channel looks.

const (
	importMarkerName = "flume-import.json"
	importNoteName   = "IMPORTED-BY-FLUMED.txt"
	importAsidePref  = "flume-imported-"

	phaseImporting = "importing"
	phaseImported  = "imported"

	// importRecordBytes is the encoded size at which an imported record is
	// closed: like a large put transaction, it keeps a taker's decoding unit
	// (one record) small.
	importRecordBytes = 1 << 20
	// importAppendBytes is how much is handed to the log per Append call.
	importAppendBytes = 8 << 20
	// importQueue is how many appends' worth of records the reading side
	// may prepare ahead of the log (file_import_append.go).
	importQueue = 2
)

// importTesting lets tests stop an import at each step (step is called
// with its name) and shrink its records and appends to have more steps.
type importTesting struct {
	step        func(name string)
	recordBytes int
	appendBytes int
}

func (f *File) importStep(name string) {
	if t := f.opts.importTest; t != nil && t.step != nil {
		t.step(name)
	}
}

// importMarker is flume-import.json: an import under way or finished.
type importMarker struct {
	Version     int       `json:"version"`
	Phase       string    `json:"phase"`
	FirstIndex  uint64    `json:"first_index"` // log index of the import's first record
	FirstSeq    uint64    `json:"first_seq"`   // sequence number of its first event
	Queued      int       `json:"queued"`      // events queued in Flume's channel
	Events      uint64    `json:"events"`      // events imported (phase imported)
	Fingerprint string    `json:"fingerprint"` // of the backlog read (flumefile.Backlog.Fingerprint)
	Aside       string    `json:"aside"`       // name of the directories Flume's files move to
	Started     time.Time `json:"started"`
	Checkpoint  string    `json:"checkpoint"` // where Flume's queue came from, for the note
}

// FlumeImport is the marker of an import a crash interrupted, as inspection
// reports it.
type FlumeImport struct {
	// Phase is "importing" (the next open resumes appending the events) or
	// "imported" (the events are durable; the next open sets Flume's files
	// aside).
	Phase   string
	Queued  int    // events queued in Flume's channel
	Events  uint64 // events imported (phase "imported")
	Started time.Time
	Aside   string // the name of the directories Flume's files go to
}

// ReadFlumeImport returns the interrupted import whose marker is in
// checkpointDir, nil when there is none.
func ReadFlumeImport(checkpointDir string) (*FlumeImport, error) {
	m, err := readImportMarker(checkpointDir)
	if m == nil || err != nil {
		return nil, err
	}
	return &FlumeImport{Phase: m.Phase, Queued: m.Queued, Events: m.Events, Started: m.Started, Aside: m.Aside}, nil
}

// FlumeOptions are the settings a Flume backlog in d is read with, as the
// file channel opening on d reads it.
func FlumeOptions(d FileDirs) flumefile.Options {
	dirs := d.DataDirs
	if len(dirs) == 0 {
		dirs = []string{d.Data}
	}
	return flumefile.Options{CheckpointDir: d.Checkpoint, BackupCheckpointDir: d.BackupCheckpoint,
		DataDirs: dirs, FsyncPerTransaction: !d.SkipCorrupt}
}

// flumeOptions are the Flume channel settings this channel's keys give.
func (f *File) flumeOptions() flumefile.Options {
	dirs := f.opts.DataDirs
	if len(dirs) == 0 {
		dirs = []string{f.opts.DataDir}
	}
	return flumefile.Options{CheckpointDir: f.opts.CheckpointDir, BackupCheckpointDir: f.opts.BackupCheckpointDir,
		DataDirs: dirs, Capacity: f.opts.Capacity, FsyncPerTransaction: f.opts.FsyncPerTransaction}
}

func (f *File) markerPath() string { return filepath.Join(f.opts.CheckpointDir, importMarkerName) }

// readImportMarker returns the marker in dir, nil when there is none.
func readImportMarker(dir string) (*importMarker, error) {
	b, err := os.ReadFile(filepath.Join(dir, importMarkerName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m importMarker
	if err := json.Unmarshal(b, &m); err != nil || m.Version != 1 ||
		(m.Phase != phaseImporting && m.Phase != phaseImported) {
		return nil, fmt.Errorf("%s: not a Flume import marker flumed wrote (%v)", filepath.Join(dir, importMarkerName), err)
	}
	return &m, nil
}

func (f *File) writeMarker(m *importMarker) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	// Atomic and synced: each phase must be durable before the step that
	// relies on it (records appended, Flume's files moved).
	if err := fsutil.WriteFileAtomic(f.fs, f.markerPath(), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", importMarkerName, err)
	}
	return nil
}

func (f *File) removeMarker() error {
	if err := f.fs.Remove(f.markerPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", importMarkerName, err)
	}
	// The removal is what says the import is over: durable before Open returns.
	return f.fs.SyncDir(f.opts.CheckpointDir)
}

// ImportRefusedError says why a Flume file channel found in the channel's
// directories was not imported. Flume's files are left as they were, and the
// channel does not open.
type ImportRefusedError struct {
	Dirs string // the directories, as the configuration names them
	Err  error
}

func (e *ImportRefusedError) Error() string {
	msg := fmt.Sprintf("cannot import the Flume file channel in %s: %v", e.Dirs, e.Err)
	var ce *flumefile.CorruptError
	if errors.As(e.Err, &ce) {
		msg += " (Flume itself fails on this record with fsyncPerTransaction = true, its default; " +
			"Flume's File Channel Integrity Tool can blank it, or with fsyncPerTransaction = false " +
			"Flume and flumed skip corrupt records)"
	}
	return msg + "; Flume's files are kept as they are"
}

func (e *ImportRefusedError) Unwrap() error { return e.Err }

func (f *File) describeDirs(o flumefile.Options) string {
	s := fmt.Sprintf("checkpointDir %s, dataDirs %s", o.CheckpointDir, strings.Join(o.DataDirs, ","))
	if o.BackupCheckpointDir != "" {
		s += ", backupCheckpointDir " + o.BackupCheckpointDir
	}
	return s
}

// importFlume runs or finishes the import of a Flume backlog found in the
// channel's directories, if any. It runs in open, after recover and before
// the commit loops start: nothing else touches the log or the state.
func (f *File) importFlume() error {
	fo := f.flumeOptions()
	m, err := readImportMarker(f.opts.CheckpointDir)
	if err != nil {
		return err
	}
	if m != nil && m.Phase == phaseImported {
		return f.setFlumeAside(m, fo)
	}
	layout, err := flumefile.Detect(fo)
	if err != nil {
		return fmt.Errorf("look for a Flume file channel: %w", err)
	}
	switch {
	case m == nil && !layout.Found():
		return nil
	case m != nil && !layout.HasData():
		return fmt.Errorf("an import of a Flume file channel was under way (%s) but Flume's files are no longer in %s: "+
			"put them back to finish it", f.markerPath(), f.describeDirs(fo))
	}
	began := time.Now()
	b, err := flumefile.Open(fo)
	if err != nil {
		return &ImportRefusedError{Dirs: f.describeDirs(fo), Err: err}
	}
	defer b.Close()
	f.importStep("read")
	rep := b.Report
	if rep.OverCapacity > 0 {
		f.log.Warn("file channel: Flume would lose these events of open takes (its queue is full); flumed imports them",
			"events", rep.OverCapacity)
	}
	if rep.OrderMayDiffer {
		f.log.Warn("file channel: the order of events of transactions open at Flume's checkpoint may differ from Flume's")
	}
	var done uint64
	if m != nil {
		var keep bool
		if done, keep, err = f.resumePoint(m, b); err != nil {
			return err
		}
		if !keep {
			m = nil
		}
	}
	if m == nil {
		m = &importMarker{Version: 1, Phase: phaseImporting, FirstIndex: f.wal.LastIndex() + 1, FirstSeq: f.importNext(),
			Queued: b.Len(), Fingerprint: b.Fingerprint(), Started: time.Now().UTC(), Checkpoint: rep.Checkpoint,
			Aside: importAsidePref + time.Now().UTC().Format("20060102T150405Z")}
		if err := f.writeMarker(m); err != nil {
			return err
		}
		f.importStep("marked")
	}
	f.log.Info("file channel: importing the backlog of a Flume file channel", "dirs", f.describeDirs(fo),
		"queued", b.Len(), "flumeCheckpoint", rep.Checkpoint, "badCheckpoint", rep.BadCheckpoint,
		"replayed", rep.Read, "alreadyImported", done)
	n, last, err := f.appendBacklog(b, done)
	var src *flumeSideError
	if errors.As(err, &src) {
		// Flume's own data fails: what was appended must never be delivered.
		f.imported(n, last) // the numbers the appended records hold, so that they are voided too
		if verr := f.voidImport(m); verr != nil {
			return errors.Join(err, verr)
		}
		return &ImportRefusedError{Dirs: f.describeDirs(fo), Err: src.err}
	}
	if err != nil {
		// flumed's own log or disk: the next open resumes from the marker.
		return fmt.Errorf("import Flume's backlog: %w", err)
	}
	f.importStep("synced")
	c := f.importCheckpoint(last, seqRange{}, time.Now().UnixMilli())
	if err := f.ckpt.write(c, true); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	f.importCheckpointWritten(c)
	f.importStep("checkpointed")
	m.Phase, m.Events = phaseImported, done+n
	if err := f.writeMarker(m); err != nil {
		return err
	}
	f.importStep("imported")
	f.log.Info("file channel: imported the backlog of a Flume file channel", "events", m.Events,
		"queued", f.Stats().Size, "took", time.Since(began))
	if q := uint64(f.Stats().Size); q > uint64(f.opts.Capacity) {
		f.log.Warn("file channel: the imported backlog is more than the capacity: puts wait until sinks drain it",
			"queued", q, "capacity", f.opts.Capacity)
	}
	return f.setFlumeAside(m, fo)
}

// flumeSideError is an error reading Flume's files (as opposed to writing
// flumed's log): it will happen again, so the import is refused.
type flumeSideError struct{ err error }

func (e *flumeSideError) Error() string { return e.err.Error() }
func (e *flumeSideError) Unwrap() error { return e.err }

// resumePoint returns how many events of b an interrupted import already
// put in the log, and whether to go on with it (keep). Not when nothing was
// appended, or the partial import was voided already; nor when b is not the
// backlog the marker was written for: the partial import is voided then,
// and the import starts over.
func (f *File) resumePoint(m *importMarker, b *flumefile.Backlog) (done uint64, keep bool, err error) {
	last := f.wal.LastIndex()
	if last < m.FirstIndex || f.importVoided(m.FirstSeq) {
		return 0, false, nil
	}
	if m.Fingerprint != b.Fingerprint() {
		f.log.Warn("file channel: Flume's files changed since the interrupted import began; starting it over",
			"marker", f.markerPath())
		return 0, false, f.voidImport(m)
	}
	h, _, ok := f.probeHeader(m.FirstIndex, last, +1)
	if !ok || h.FirstSeq != m.FirstSeq {
		return 0, false, fmt.Errorf("%s: the log at index %d does not hold the import's first event (%d); "+
			"restore the directories, or move the marker away to import again", f.markerPath(), m.FirstIndex, m.FirstSeq)
	}
	lh, _, ok := f.probeHeader(last, m.FirstIndex, -1)
	if !ok {
		return 0, false, fmt.Errorf("%s: the import's last record cannot be read", f.markerPath())
	}
	return lh.EndSeq() - m.FirstSeq, true, nil
}

// voidImport acknowledges every number the import in m gave out, in a
// synced checkpoint, and removes the marker.
func (f *File) voidImport(m *importMarker) error {
	c := f.importCheckpoint(f.wal.LastIndex(), seqRange{m.FirstSeq, f.importNext()}, time.Now().UnixMilli())
	if err := f.ckpt.write(c, true); err != nil {
		return fmt.Errorf("void the partial import: write checkpoint: %w", err)
	}
	f.importCheckpointWritten(c)
	f.log.Warn("file channel: voided a partial import of a Flume backlog (its events will not be delivered)",
		"fromSeq", m.FirstSeq, "toSeq", c.Next)
	return f.removeMarker()
}

// setFlumeAside moves Flume's files into m.Aside in each directory holding
// some, with a note, then removes the marker.
func (f *File) setFlumeAside(m *importMarker, fo flumefile.Options) error {
	layout, err := flumefile.Detect(fo)
	if err != nil {
		return err
	}
	note := fmt.Sprintf(`These files belonged to an Apache Flume file channel.

flumed's file channel %q imported the %d events queued in it into its own
log, in the order Flume would have delivered them, starting %s (Flume's queue
came from its %s). flumed does not read these files any more; they are kept,
not deleted: remove this directory when you no longer need it.

Directories of the channel: %s.
`, f.name, m.Events, m.Started.Format(time.RFC3339), m.Checkpoint, f.describeDirs(fo))
	for _, dir := range slices.Sorted(maps.Keys(layout.Dirs)) {
		aside := filepath.Join(dir, m.Aside)
		if err := os.MkdirAll(aside, 0o750); err != nil {
			return fmt.Errorf("set Flume's files aside: %w", err)
		}
		// The new directory's name must be durable before names move into it.
		if err := f.fs.SyncDir(dir); err != nil {
			return err
		}
		if err := fsutil.WriteFileAtomic(f.fs, filepath.Join(aside, importNoteName), []byte(note), 0o644); err != nil {
			return err
		}
		f.importStep("noted")
		for _, name := range layout.Dirs[dir] {
			if err := f.fs.Rename(filepath.Join(dir, name), filepath.Join(aside, name)); err != nil {
				return fmt.Errorf("set Flume's files aside: %w", err)
			}
			f.importStep("moved")
		}
		// Both directories' entries durable before the marker goes: a
		// restart must never find Flume's files without the marker.
		if err := f.fs.SyncDir(aside); err != nil {
			return err
		}
		if err := f.fs.SyncDir(dir); err != nil {
			return err
		}
		f.log.Info("file channel: set Flume's files aside", "dir", aside, "files", len(layout.Dirs[dir]))
	}
	f.importStep("aside")
	if err := f.removeMarker(); err != nil {
		return err
	}
	f.importStep("done")
	return nil
}
