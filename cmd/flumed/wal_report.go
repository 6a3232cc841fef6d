package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/wal"
)

// The JSON of "flumed wal inspect --json". Field names are a stable
// interface (scripts read them): add fields, never rename or remove one.
// Times are RFC 3339 in UTC with milliseconds, null when unknown; absent
// lists are [] rather than null.

type inspectJSON struct {
	DataDir       string      `json:"data_dir"`
	CheckpointDir string      `json:"checkpoint_dir"`
	BackupDir     string      `json:"backup_checkpoint_dir"` // "" when none
	Locked        bool        `json:"locked"`
	LockPID       int         `json:"lock_pid"` // 0 when not locked or unknown
	LogID         string      `json:"log_id"`
	QueuedEvents  uint64      `json:"queued_events"`
	QueuedBytes   int64       `json:"queued_bytes"`
	Floor         uint64      `json:"floor"`
	Next          uint64      `json:"next"`
	FloorIndex    uint64      `json:"floor_index"`
	AckedRanges   []rangeJSON `json:"acked_ranges"`
	OldestCommit  *string     `json:"oldest_commit"`
	NewestCommit  *string     `json:"newest_commit"`
	Durability    string      `json:"durability"`
	Checkpoint    ckptJSON    `json:"checkpoint"`
	Slots         []slotJSON  `json:"slots"`
	Log           logJSON     `json:"log"`
	Damage        []string    `json:"damage"`
	Notes         []string    `json:"notes"`
	Flume         *flumeJSON  `json:"flume"`  // Flume's files beside the log, null when none
	Origin        string      `json:"origin"` // the channel's identity to the next hop, "" when none
	Dedup         dedupJSON   `json:"dedup"`
}

// dedupJSON is the receiver's dedup table: what upstream senders' events
// this channel committed, so a resend of them is answered without a put.
type dedupJSON struct {
	Through  uint64       `json:"through_index"`    // the checkpoint's table covers the records through this index
	Replayed int          `json:"replayed_records"` // records after it a restart reads to complete it
	Origins  []originJSON `json:"origins"`
}

type originJSON struct {
	ID       string  `json:"id"`
	Ranges   string  `json:"ranges"` // inclusive, "[1-100 201-300]"
	LastSeen *string `json:"last_seen"`
}

type rangeJSON struct {
	Start uint64 `json:"start"` // first sequence number
	End   uint64 `json:"end"`   // one past the last
}

type ckptJSON struct {
	Source      string      `json:"source"` // "checkpoint", "backup checkpoint (...)", "new", "none (...)"
	Generation  uint64      `json:"generation"`
	Written     *string     `json:"written"`
	Floor       uint64      `json:"floor"`
	FloorIndex  uint64      `json:"floor_index"`
	FloorOffset uint32      `json:"floor_offset"`
	Next        uint64      `json:"next"`
	AckedRanges []rangeJSON `json:"acked_ranges"`
}

type slotJSON struct {
	Path       string  `json:"path"`
	Generation uint64  `json:"generation"` // 0 when missing or damaged
	Written    *string `json:"written"`
	Error      string  `json:"error"` // why it is unusable; "" when intact or missing
}

type logJSON struct {
	FirstIndex uint64        `json:"first_index"`
	LastIndex  uint64        `json:"last_index"` // < first_index when the log is empty
	Records    uint64        `json:"records"`
	Bytes      int64         `json:"bytes"`
	Segments   []segmentJSON `json:"segments"`
	Released   []string      `json:"released"`
	Temps      []string      `json:"temps"`
	Broken     []string      `json:"broken"`
	Unsealed   []string      `json:"unsealed"`
	Strays     []string      `json:"strays"`
	Manifest   string        `json:"manifest"` // "" (none yet), "ok", or what the next open will mend
	TornTail   *damageJSON   `json:"torn_tail"`
	TornBytes  int64         `json:"torn_bytes"`
}

type segmentJSON struct {
	Name  string `json:"name"`
	First uint64 `json:"first"`
	Last  uint64 `json:"last"` // first-1 when it holds no record
	Bytes int64  `json:"bytes"`
	Place string `json:"place"` // "sealed", "tail", or "unsealed" (a roll a crash interrupted; the next open moves it)
}

// damageJSON is one damaged record: where, and why.
type damageJSON struct {
	Segment string `json:"segment"`
	Offset  int64  `json:"offset"`
	Index   uint64 `json:"index"`
	Error   string `json:"error"`
}

func jsonTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	return &s
}

func jsonRanges(rs []channel.SeqRange) []rangeJSON {
	out := []rangeJSON{}
	for _, r := range rs {
		out = append(out, rangeJSON(r))
	}
	return out
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

func damageOf(ce *wal.CorruptionError) *damageJSON {
	if ce == nil {
		return nil
	}
	return &damageJSON{Segment: ce.Segment, Offset: ce.Offset, Index: ce.Index, Error: ce.Err.Error()}
}

func toInspectJSON(r *channel.FileReport) inspectJSON {
	out := inspectJSON{
		DataDir: r.DataDir, CheckpointDir: r.CheckpointDir, BackupDir: r.BackupCheckpointDir, Locked: r.Locked, LockPID: r.LockPID, LogID: r.LogID,
		QueuedEvents: r.Queued, QueuedBytes: r.QueuedBytes, Floor: r.Floor, Next: r.Next, FloorIndex: r.FloorIndex,
		AckedRanges: jsonRanges(r.AckedRanges), OldestCommit: jsonTime(r.OldestQueued), NewestCommit: jsonTime(r.NewestQueued),
		Durability: r.Durability, Checkpoint: ckptJSON{Source: r.CheckpointSource, AckedRanges: []rangeJSON{}},
		Slots: []slotJSON{}, Damage: nonNil(r.Damage), Notes: nonNil(r.Notes), Origin: r.Origin,
		Dedup: dedupJSON{Through: r.DedupThrough, Replayed: r.DedupReplayed, Origins: []originJSON{}},
	}
	for _, o := range r.Dedup {
		out.Dedup.Origins = append(out.Dedup.Origins, originJSON{ID: o.ID.String(), Ranges: o.Ranges, LastSeen: jsonTime(o.LastSeen)})
	}
	if c := r.Checkpoint; c != nil {
		out.Checkpoint = ckptJSON{Source: r.CheckpointSource, Generation: c.Generation, Written: jsonTime(c.Written),
			Floor: c.Floor, FloorIndex: c.FloorIndex, FloorOffset: c.FloorOffset, Next: c.Next, AckedRanges: jsonRanges(c.AckedRanges)}
	}
	for _, s := range r.Slots {
		sj := slotJSON{Path: s.Path, Error: s.Err}
		if s.State != nil {
			sj.Generation, sj.Written = s.State.Generation, jsonTime(s.State.Written)
		}
		out.Slots = append(out.Slots, sj)
	}
	l := r.Log
	out.Log = logJSON{FirstIndex: l.FirstIndex, LastIndex: l.LastIndex, Records: records(l), Bytes: l.Bytes,
		Segments: []segmentJSON{}, Released: nonNil(l.Released), Temps: nonNil(l.Temps),
		Broken: nonNil(l.Broken), Unsealed: nonNil(l.Unsealed), Strays: nonNil(l.Strays), Manifest: l.Manifest,
		TornTail: damageOf(l.TornTail), TornBytes: l.TornBytes}
	for i, s := range l.Segments {
		out.Log.Segments = append(out.Log.Segments, segmentJSON{Name: s.Name, First: s.First, Last: s.Last, Bytes: s.Size,
			Place: segmentPlace(l, i)})
	}
	return out
}

// segmentPlace is where segment i of l lives: sealed/, the log directory as
// the tail, or the log directory before the tail (a roll a crash
// interrupted before moving it into sealed/).
func segmentPlace(l *wal.Info, i int) string {
	switch {
	case l.Segments[i].Sealed:
		return "sealed"
	case i == len(l.Segments)-1:
		return "tail"
	}
	return "unsealed"
}

func records(l *wal.Info) uint64 {
	if l.LastIndex < l.FirstIndex {
		return 0
	}
	return l.LastIndex - l.FirstIndex + 1
}

// kv writes the human reports' "Key:  value" lines, values aligned.
type kv struct{ w io.Writer }

func (k kv) line(key, format string, args ...any) {
	if key != "" {
		key += ":"
	}
	fmt.Fprintf(k.w, "%-17s%s\n", key, fmt.Sprintf(format, args...))
}

// writeInspect prints the human report of inspect; how says how the
// directories were found.
func writeInspect(w io.Writer, r *channel.FileReport, how string, now time.Time) {
	k := kv{w}
	k.line("Data dir", "%s", r.DataDir)
	k.line("Checkpoint dir", "%s", r.CheckpointDir)
	if r.BackupCheckpointDir != "" {
		k.line("Backup dir", "%s", r.BackupCheckpointDir)
	}
	k.line("Found as", "%s", how)
	if r.Locked {
		k.line("Lock", "%s; read anyway, figures may move while it runs", lockedBy(r.LockPID))
	} else {
		k.line("Lock", "free (no running agent has this channel open)")
	}
	k.line("Log id", "%s", orText(r.LogID, "none"))
	if r.Queued > 0 {
		k.line("Queued", "%s (sequence numbers %d to %d)", plural(r.Queued, "event"), r.Floor, r.Next-1)
	} else {
		k.line("Queued", "0 events")
	}
	k.line("Queued bytes", "%s in the segments from log record %d on", humanBytes(r.QueuedBytes), r.FloorIndex)
	k.line("Oldest commit", "%s", whenOr(r.OldestQueued, now, "none (nothing queued)"))
	k.line("Newest commit", "%s", whenOr(r.NewestQueued, now, "none (nothing queued)"))
	switch r.Durability {
	case "fsyncPerTransaction":
		k.line("Durability", "fsyncPerTransaction (every commit was synced before it was acknowledged)")
	case "fsyncInterval":
		k.line("Durability", "fsyncInterval (commits were synced in batches: a machine crash could lose the last window)")
	default:
		k.line("Durability", "%s", orText(r.Durability, "unknown (the log is empty)"))
	}
	if c := r.Checkpoint; c != nil {
		from := ""
		if r.CheckpointSource != "checkpoint" {
			from = ", from the " + r.CheckpointSource
		}
		k.line("Checkpoint", "generation %d, written %s%s", c.Generation, when(c.Written, now), from)
	} else {
		k.line("Checkpoint", "%s", r.CheckpointSource)
	}
	k.line("  Floor", "%d (log record %d)", r.Floor, r.FloorIndex)
	k.line("  Next", "%d", r.Next)
	k.line("  Acked ranges", "%s", fmtRanges(r.AckedRanges))
	for i, s := range r.Slots {
		key := fmt.Sprintf("  Slot %d", i)
		switch {
		case s.State != nil:
			k.line(key, "generation %d, written %s", s.State.Generation, when(s.State.Written, now))
		case s.Err != "":
			k.line(key, "unreadable: %s", s.Err)
		default:
			k.line(key, "missing")
		}
	}
	k.line("Origin", "%s", orText(r.Origin, "none yet (the next open draws one)"))
	writeDedup(k, w, r, now)
	l := r.Log
	span := "no records"
	if n := records(l); n > 0 {
		span = fmt.Sprintf("%s (%d to %d)", plural(n, "record"), l.FirstIndex, l.LastIndex)
	}
	k.line("Log", "%s, %s in %s", span, humanBytes(l.Bytes), plural(uint64(len(l.Segments)), "segment"))
	if len(l.Segments) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  SEGMENT\tRECORDS\tSIZE\tPLACE")
		for i, s := range l.Segments {
			recs := "none"
			if s.Last >= s.First {
				recs = fmt.Sprintf("%d-%d", s.First, s.Last)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", s.Name, recs, humanBytes(s.Size), segmentPlace(l, i))
		}
		tw.Flush()
	}
	manifest := l.Manifest
	if manifest == "" {
		manifest = "none (no segment sealed yet)"
	}
	k.line("Manifest", "%s", manifest)
	files := []struct {
		key, why string
		names    []string
	}{
		{"Released", "released before a crash; the next open removes them", l.Released},
		{"Temporary", "leftovers of interrupted writes; the next open removes them", l.Temps},
		{"Broken copies", "evidence kept by earlier repairs", l.Broken},
		{"Unsealed", "segments before the tail outside sealed/; the next open moves them there", l.Unsealed},
		{"Strays", "files in sealed/ that are no part of the log; an open that lists sealed/ sets them aside", l.Strays},
	}
	for _, f := range files {
		if len(f.names) > 0 {
			k.line(f.key, "%s (%s)", strings.Join(f.names, ", "), f.why)
		}
	}
	lines(k, "Damage", r.Damage, "none")
	lines(k, "Notes", r.Notes, "")
}

// lines prints a list under one key, or none when empty ("" prints nothing).
func lines(k kv, key string, items []string, none string) {
	if len(items) == 0 {
		if none != "" {
			k.line(key, "%s", none)
		}
		return
	}
	for i, it := range items {
		if i > 0 {
			key = ""
		}
		k.line(key, "%s", it)
	}
}

func lockedBy(pid int) string {
	if pid > 0 {
		return fmt.Sprintf("locked by a running agent (pid %d)", pid)
	}
	return "locked by a running agent (pid unknown)"
}

func fmtRanges(rs []channel.SeqRange) string {
	if len(rs) == 0 {
		return "none"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%d-%d", r.Start, r.End-1)
	}
	return strings.Join(parts, ", ")
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func plural(n uint64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// humanBytes is "512 bytes" or "1.2 MiB (1258291 bytes)".
func humanBytes(n int64) string {
	if n < 1024 {
		return plural(uint64(max(n, 0)), "byte")
	}
	return fmt.Sprintf("%s (%d bytes)", shortBytes(n), n)
}

// shortBytes is n in the largest binary unit that keeps it at least 1.
func shortBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, units := float64(n)/1024, "KMGTPE"
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}

// when is t in RFC 3339 (local time) and its age: "2024-05-01T10:00:00+02:00 (3m12s ago)".
func when(t, now time.Time) string {
	return fmt.Sprintf("%s (%s)", t.Local().Format(time.RFC3339), age(now.Sub(t)))
}

func whenOr(t, now time.Time, def string) string {
	if t.IsZero() {
		return def
	}
	return when(t, now)
}

// age is d in at most two units: "12s ago", "3m12s ago", "5h3m ago", "2d5h ago".
func age(d time.Duration) string {
	suffix := " ago"
	if d < 0 {
		d, suffix = -d, " in the future"
	}
	d = d.Round(time.Second)
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds%s", s, suffix)
	case s < 3600:
		return fmt.Sprintf("%dm%ds%s", s/60, s%60, suffix)
	case s < 86400:
		return fmt.Sprintf("%dh%dm%s", s/3600, s%3600/60, suffix)
	}
	return fmt.Sprintf("%dd%dh%s", s/86400, s%86400/3600, suffix)
}

// maxDedupLines bounds the origins the human report lists; the JSON lists
// them all.
const maxDedupLines = 20

// writeDedup prints the dedup table: per upstream origin the sequence
// numbers committed here and when it was last heard from.
func writeDedup(k kv, w io.Writer, r *channel.FileReport, now time.Time) {
	if len(r.Dedup) == 0 {
		k.line("Dedup", "no upstream origins (no resend to recognise)")
		return
	}
	k.line("Dedup", "%s, table through log record %d, %s after it replayed",
		plural(uint64(len(r.Dedup)), "upstream origin"), r.DedupThrough, plural(uint64(r.DedupReplayed), "record"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  ORIGIN\tCOMMITTED\tLAST SEEN")
	for i, o := range r.Dedup {
		if i == maxDedupLines {
			fmt.Fprintf(tw, "  ... %d more (--json lists them all)\t\t\n", len(r.Dedup)-i)
			break
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", o.ID, o.Ranges, when(o.LastSeen, now))
	}
	tw.Flush()
}
