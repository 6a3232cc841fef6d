package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/channel/flumefile"
	"github.com/flumed/flumed/internal/fsutil"
)

// "flumed wal inspect" on directories where Apache Flume's file channel left
// its files: what Flume would deliver from them (read as Flume's restart
// would, by channel/flumefile, without changing a byte), and how the file
// channel will import it.

// flumeDirs recognises Flume's layout at dir, as detectDirs does flumed's:
// a channel directory holding checkpoint/ and data/, a data directory
// holding log-N files (with Flume's checkpoint beside it), or a checkpoint
// directory holding Flume's checkpoint. A channel with several data
// directories is named with -c, whose dataDirs lists them all.
func flumeDirs(dir, checkpointFlag string) (channelDirs, bool) {
	has := func(ck string, data ...string) bool {
		l, err := flumefile.Detect(flumefile.Options{CheckpointDir: ck, DataDirs: data})
		return err == nil && l.HasData()
	}
	parent := filepath.Dir(filepath.Clean(dir))
	ck, data := filepath.Join(dir, "checkpoint"), filepath.Join(dir, "data")
	switch {
	case checkpointFlag != "" && has(checkpointFlag, dir):
		return channelDirs{Checkpoint: checkpointFlag, Data: dir, Flume: true,
			How: "Flume data directory, checkpoint directory from --checkpoint-dir"}, true
	case checkpointFlag == "" && isDir(ck) && has(ck, data):
		return channelDirs{Checkpoint: ck, Data: data, Flume: true, How: "Flume channel directory (checkpoint/ and data/)"}, true
	case checkpointFlag == "" && has("", dir) && has(filepath.Join(parent, "checkpoint")):
		return channelDirs{Checkpoint: filepath.Join(parent, "checkpoint"), Data: dir, Flume: true,
			How: "Flume data directory, its checkpoint directory beside it"}, true
	case checkpointFlag == "" && has(dir):
		return channelDirs{Checkpoint: dir, Data: filepath.Join(parent, "data"), Flume: true,
			How: "Flume checkpoint directory, its data directory beside it"}, true
	}
	return channelDirs{}, false
}

// flumeDataOnly reports whether dir holds Flume data files.
func flumeDataOnly(dir string) bool {
	l, err := flumefile.Detect(flumefile.Options{DataDirs: []string{dir}})
	return err == nil && l.HasData()
}

// flumeReport is what inspect finds of a Flume backlog.
type flumeReport struct {
	opts    flumefile.Options
	files   []string
	locked  bool
	lockPID int
	under   *channel.FlumeImport // an import a crash interrupted
	rep     flumefile.Report
	queued  int
	err     error // why the backlog cannot be imported
	oldest  *flumefile.Event
	at      flumefile.Position
}

// inspectFlume reads the Flume backlog in dirs. It returns nil when there is
// no Flume file there.
func inspectFlume(dirs channelDirs) (*flumeReport, error) {
	o := channel.FlumeOptions(dirs.file())
	l, err := flumefile.Detect(o)
	if err != nil {
		return nil, err
	}
	under, err := channel.ReadFlumeImport(dirs.Checkpoint)
	if err != nil {
		return nil, err
	}
	if !l.Found() && under == nil {
		return nil, nil
	}
	r := &flumeReport{opts: o, files: l.Paths(), under: under}
	for _, d := range append([]string{o.CheckpointDir}, o.DataDirs...) {
		if locked, pid, err := fsutil.Probe(d); err == nil && locked {
			r.locked, r.lockPID = true, pid
		}
	}
	if under != nil && under.Phase == "imported" {
		return r, nil // imported: Flume's files are no longer read
	}
	b, err := flumefile.Open(o)
	if err != nil {
		r.err = err
		return r, nil
	}
	defer b.Close()
	r.rep, r.queued = b.Report, b.Len()
	for ev, err := range b.Events(&r.at) {
		if err != nil {
			r.err = err
			break
		}
		e := flumefile.Event{Headers: slices.Clone(ev.Headers), Body: slices.Clone(ev.Body)}
		r.oldest = &e
		break
	}
	return r, nil
}

func (r *flumeReport) importText() string {
	switch {
	case r.err != nil:
		return "refused: " + r.err.Error() + "; the file channel does not open on these directories, and Flume's files are kept"
	case r.under != nil && r.under.Phase == "imported":
		return fmt.Sprintf("done: %d events were imported (started %s); the next open of the file channel moves Flume's files into %s/ beside them",
			r.under.Events, r.under.Started.Format(time.RFC3339), r.under.Aside)
	}
	s := fmt.Sprintf("the file channel (type = file, with checkpointDir = %s and dataDirs = %s) imports these %s into its own log "+
		"when it opens, in this order, before it accepts a put; once they are durable it moves Flume's files into a "+
		"flume-imported-<time>/ directory beside them, with a note; nothing is deleted",
		r.opts.CheckpointDir, strings.Join(r.opts.DataDirs, ","), plural(uint64(r.queued), "event"))
	if r.under != nil {
		s = fmt.Sprintf("under way since %s, interrupted: the next open resumes it where it stopped; ", r.under.Started.Format(time.RFC3339)) + s
	}
	if r.locked {
		s += "; a process holds the directories' lock (a Flume agent still running?): stop it first"
	}
	return s
}

// writeFlume prints the report, the Flume part of inspect's text.
func writeFlume(w io.Writer, r *flumeReport, how string) {
	k := kv{w}
	k.line("Format", "Apache Flume file channel")
	if how != "" {
		k.line("Checkpoint dir", "%s", r.opts.CheckpointDir)
		if r.opts.BackupCheckpointDir != "" {
			k.line("Backup dir", "%s", r.opts.BackupCheckpointDir)
		}
		k.line("Data dirs", "%s", strings.Join(r.opts.DataDirs, ", "))
		k.line("Found as", "%s", how)
	}
	if r.locked {
		k.line("Lock", "%s", lockedBy(r.lockPID))
	} else {
		k.line("Lock", "free (no running agent has this channel open)")
	}
	k.line("Flume files", "%d", len(r.files))
	if r.under == nil || r.under.Phase != "imported" {
		rep := r.rep
		switch rep.Checkpoint {
		case "checkpoint":
			k.line("Checkpoint", "write order id %d, capacity %d, %s queued at it", rep.CheckpointWriteOrder, rep.Capacity,
				plural(uint64(rep.AtCheckpoint), "event"))
		case "backup":
			k.line("Checkpoint", "the backup, as Flume restores it (write order id %d, %s queued at it)", rep.CheckpointWriteOrder,
				plural(uint64(rep.AtCheckpoint), "event"))
		case "none":
			k.line("Checkpoint", "none: every data file is replayed from its start")
		}
		if rep.BadCheckpoint != "" {
			k.line("  Not used", "%s", rep.BadCheckpoint)
		}
		if rep.InflightPuts+rep.InflightTakes > 0 {
			k.line("  Open at it", "%d put and %d take events of open transactions", rep.InflightPuts, rep.InflightTakes)
		}
		if r.err == nil || rep.Read > 0 {
			k.line("Replay", "%s read: %d puts, %d takes, %d rollbacks, %d commits, %d before the checkpoint",
				plural(uint64(rep.Read), "record"), rep.Puts, rep.Takes, rep.Rollbacks, rep.Commits, rep.Skipped)
		}
		if rep.PendingTakes > 0 {
			k.line("  Pending", "%d takes of events never committed (Flume goes on)", rep.PendingTakes)
		}
		k.line("Queued", "%s", plural(uint64(r.queued), "event"))
		if e := r.oldest; e != nil {
			k.line("Oldest event", "%s offset %d (first in line)", r.at.File, r.at.Offset)
			k.line("  Headers", "%s", fmtHeaders(e.HeaderMap()))
			k.line("  Body", "%s", preview(e.Body))
			if ts, ok := timestampHeader(e.HeaderMap()); ok {
				k.line("  Timestamp", "%s (its timestamp header)", ts.UTC().Format(time.RFC3339Nano))
			}
		}
	}
	k.line("Import", "%s", r.importText())
}

func fmtHeaders(h map[string]string) string {
	if len(h) == 0 {
		return "none"
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range h {
			if !yield(k) {
				return
			}
		}
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, strconv.Quote(k)+"="+strconv.Quote(h[k]))
	}
	return strings.Join(parts, " ")
}

// preview shows a body: quoted when it is text, its first bytes otherwise.
func preview(b []byte) string {
	const n = 64
	cut := b[:min(len(b), n)]
	more := ""
	if len(b) > n {
		more = "..."
	}
	if utf8.Valid(cut) {
		return fmt.Sprintf("%s%s (%s)", strconv.Quote(string(cut)), more, plural(uint64(len(b)), "byte"))
	}
	return fmt.Sprintf("%x%s (%s, binary)", cut, more, plural(uint64(len(b)), "byte"))
}

// timestampHeader reads Flume's timestamp header (milliseconds).
func timestampHeader(h map[string]string) (time.Time, bool) {
	ms, err := strconv.ParseInt(h["timestamp"], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// flumeJSON is the "flume" object of inspect --json (stable field names).
type flumeJSON struct {
	Format         string          `json:"format"` // "flume"
	CheckpointDir  string          `json:"checkpoint_dir"`
	BackupDir      string          `json:"backup_checkpoint_dir"`
	DataDirs       []string        `json:"data_dirs"`
	Files          []string        `json:"files"`
	Locked         bool            `json:"locked"`
	LockPID        int             `json:"lock_pid"`
	QueuedEvents   int             `json:"queued_events"`
	Checkpoint     string          `json:"checkpoint"` // "checkpoint", "backup", "none" (full replay), "" when not read
	BadCheckpoint  string          `json:"bad_checkpoint"`
	WriteOrderID   int64           `json:"write_order_id"`
	Capacity       int             `json:"capacity"`
	AtCheckpoint   int             `json:"queued_at_checkpoint"`
	Replay         map[string]int  `json:"replay"` // read, puts, takes, rollbacks, commits, skipped, pending_takes
	Oldest         *flumeEventJSON `json:"oldest"`
	Importable     bool            `json:"importable"`
	Error          string          `json:"error"` // why not importable
	ImportUnderWay string          `json:"import_under_way"`
	Import         string          `json:"import"` // what the file channel will do, in words
}

type flumeEventJSON struct {
	File    string            `json:"file"`
	Offset  int64             `json:"offset"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body_b64"`
}

func toFlumeJSON(r *flumeReport) *flumeJSON {
	if r == nil {
		return nil
	}
	rep := r.rep
	j := &flumeJSON{Format: "flume", CheckpointDir: r.opts.CheckpointDir, BackupDir: r.opts.BackupCheckpointDir,
		DataDirs: r.opts.DataDirs, Files: nonNil(r.files), Locked: r.locked, LockPID: r.lockPID, QueuedEvents: r.queued,
		Checkpoint: rep.Checkpoint, BadCheckpoint: rep.BadCheckpoint, WriteOrderID: rep.CheckpointWriteOrder,
		Capacity: rep.Capacity, AtCheckpoint: rep.AtCheckpoint, Importable: r.err == nil, Import: r.importText(),
		Replay: map[string]int{"read": rep.Read, "puts": rep.Puts, "takes": rep.Takes, "rollbacks": rep.Rollbacks,
			"commits": rep.Commits, "skipped": rep.Skipped, "pending_takes": rep.PendingTakes}}
	if r.err != nil {
		j.Error = r.err.Error()
	}
	if r.under != nil {
		j.ImportUnderWay = r.under.Phase
	}
	if e := r.oldest; e != nil {
		j.Oldest = &flumeEventJSON{File: r.at.File, Offset: r.at.Offset, Headers: e.HeaderMap(),
			Body: base64.StdEncoding.EncodeToString(e.Body)}
	}
	return j
}

// runFlumeInspect is inspect on directories holding only Flume's files.
func runFlumeInspect(w io.Writer, dirs channelDirs, asJSON bool) error {
	r, err := inspectFlume(dirs)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", dirs.Data, err)
	}
	if r == nil {
		return usageErr("%s: no Flume file channel there any more", dirs.Data)
	}
	if asJSON {
		if err := writeJSON(w, toFlumeJSON(r)); err != nil {
			return err
		}
	} else {
		writeFlume(w, r, dirs.How)
	}
	if r.err != nil {
		return &exitError{exitDamage, fmt.Errorf("the Flume backlog cannot be imported")}
	}
	return nil
}
