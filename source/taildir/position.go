package taildir

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/flumed/flumed/internal/fsutil"
)

// Taildir keeps its positions in two files next to each other:
//
//   - positionFile is Flume's JSON array [{"inode":N,"pos":N,"file":"/abs"}],
//     exactly those three names. Flume's reader (ReliableTaildirEventReader,
//     Gson JsonReader with a switch on the names and no default branch) does
//     not skip unknown names: an extra "dev" makes its next nextName() throw
//     IllegalStateException and the source fails to start. So flumed writes
//     nothing else there, and a Flume agent can take over the file again.
//   - positionFile + ".journal" is flumed's own: one CRC-checked JSON line per
//     record, starting with a snapshot of every tracked file (device, inode,
//     fingerprint, the bytes before the position) and followed by one record per
//     committed batch. With positionSync=batch (the default) each record is
//     fdatasync'd before the next batch is read, so even a power loss repeats at
//     most the batch in flight; with positionSync=interval records are written
//     but not synced: a killed process repeats nothing, a power loss up to
//     writePosInterval of lines (Flume's window, without its torn file).
//
// Every writePosInterval and on Stop both are rewritten atomically (temp file,
// fsync, rename, fsync the directory): first the Flume file, then the journal,
// whose first record names the CRC of the Flume file written with it. At load,
// a Flume file whose CRC matches the journal's is ours and the journal (newer)
// wins; any other Flume file was written by someone else (Flume itself, after a
// migration back and forth) and its positions win, enriched with the journal's
// fingerprints where inode and path agree.

// tailPos is one file's committed position as persisted.
type tailPos struct {
	Dev   uint64 `json:"dev"`
	Inode uint64 `json:"inode"`
	Pos   int64  `json:"pos"`
	File  string `json:"file"`
	FPN   int    `json:"fpn,omitempty"`   // bytes covered by FP
	FP    string `json:"fp,omitempty"`    // hex fingerprint of the first FPN bytes
	Tail  string `json:"tail,omitempty"`  // hex of the bytes just before Pos
	Birth int64  `json:"birth,omitempty"` // creation time (ns) where the file system records one
	// HasDev is false for entries from a Flume file, which has no device.
	HasDev bool `json:"-"`
}

// tailJournalRecord is one line of the journal.
type tailJournalRecord struct {
	Export string `json:"export,omitempty"` // CRC of the Flume file written with this journal
	Forget bool   `json:"forget,omitempty"` // the file is no longer tracked
	tailPos
}

// flumePos is exactly what Flume reads and writes, in Flume's order.
type flumePos struct {
	Inode uint64 `json:"inode"`
	Pos   int64  `json:"pos"`
	File  string `json:"file"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeFlumePositions renders entries as Flume's position file.
func encodeFlumePositions(entries []tailPos) []byte {
	out := make([]flumePos, 0, len(entries))
	for _, e := range entries {
		out = append(out, flumePos{Inode: e.Inode, Pos: e.Pos, File: e.File})
	}
	b, _ := json.Marshal(out) // plain structs: cannot fail
	return b
}

// readFlumePositions parses a Flume position file as far as it can be trusted.
// complete is false when the file is empty or torn (Flume rewrites it in place,
// so a crash leaves a prefix): the entries before the damage are returned.
func readFlumePositions(data []byte) (entries []tailPos, complete bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, false, fmt.Errorf("read array start: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, false, fmt.Errorf("not a JSON array")
	}
	for dec.More() {
		var raw map[string]json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return entries, false, fmt.Errorf("entry %d: %w", len(entries), err)
		}
		e, err := flumeEntry(raw)
		if err != nil {
			return entries, false, fmt.Errorf("entry %d: %w", len(entries), err)
		}
		entries = append(entries, e)
	}
	if _, err := dec.Token(); err != nil {
		return entries, false, fmt.Errorf("read array end: %w", err)
	}
	return entries, true, nil
}

// flumeEntry reads the three names Flume knows and ignores the rest.
func flumeEntry(raw map[string]json.RawMessage) (tailPos, error) {
	var e tailPos
	var inode, pos json.Number
	for name, dst := range map[string]any{"inode": &inode, "pos": &pos, "file": &e.File} {
		v, ok := raw[name]
		if !ok {
			return e, fmt.Errorf("missing %q", name)
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return e, fmt.Errorf("%s: %w", name, err)
		}
	}
	var err error
	if e.Inode, err = strconv.ParseUint(inode.String(), 10, 64); err != nil {
		return e, fmt.Errorf("inode: %w", err)
	}
	if e.Pos, err = strconv.ParseInt(pos.String(), 10, 64); err != nil || e.Pos < 0 {
		return e, fmt.Errorf("pos: bad value %s", pos)
	}
	return e, nil
}

// readTailJournal reads journal records up to the first damaged one. It
// returns the latest state per file, the export CRC of its snapshot, and how
// many trailing bytes were ignored as torn.
func readTailJournal(data []byte) (state map[fileID]tailPos, export string, torn int) {
	state = make(map[fileID]tailPos)
	rest := data
	for len(rest) > 0 {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			return state, export, len(rest)
		}
		rec, ok := decodeJournalLine(rest[:nl])
		if !ok {
			return state, export, len(rest)
		}
		rest = rest[nl+1:]
		if rec.Export != "" {
			export = rec.Export
			continue
		}
		id := fileID{dev: rec.Dev, ino: rec.Inode}
		if rec.Forget {
			delete(state, id)
			continue
		}
		rec.HasDev = true
		state[id] = rec.tailPos
	}
	return state, export, 0
}

func decodeJournalLine(line []byte) (tailJournalRecord, bool) {
	var rec tailJournalRecord
	sum, body, ok := bytes.Cut(line, []byte{' '})
	if !ok || len(sum) != 8 {
		return rec, false
	}
	want, err := strconv.ParseUint(string(sum), 16, 32)
	if err != nil || crc32.Checksum(body, castagnoli) != uint32(want) {
		return rec, false
	}
	if err := json.Unmarshal(body, &rec); err != nil {
		return rec, false
	}
	return rec, true
}

// appendJournalLine renders rec as one checksummed journal line onto buf.
func appendJournalLine(buf []byte, rec tailJournalRecord) []byte {
	body, _ := json.Marshal(rec) // plain struct: cannot fail
	buf = fmt.Appendf(buf, "%08x ", crc32.Checksum(body, castagnoli))
	buf = append(buf, body...)
	return append(buf, '\n')
}

// tailPositions is the persisted state of one taildir source. It is used only
// by the source's goroutine.
type tailPositions struct {
	fs      fsutil.FS
	path    string // Flume's position file
	journal string // path + ".journal"
	sync    bool   // fdatasync the journal after every record (positionSync=batch)
	log     *slog.Logger
	j       fsutil.File // open for appending; nil until the first checkpoint or after an error
	buf     []byte
}

func newTailPositions(fs fsutil.FS, path string, sync bool, log *slog.Logger) *tailPositions {
	return &tailPositions{fs: fs, path: path, journal: path + ".journal", sync: sync, log: log}
}

// load returns the positions that can be trusted, logging what it could not use.
func (p *tailPositions) load() ([]tailPos, error) {
	if err := os.MkdirAll(filepath.Dir(p.path), 0o755); err != nil {
		return nil, fmt.Errorf("create position file directory: %w", err)
	}
	jdata, jerr := os.ReadFile(p.journal)
	if jerr != nil && !errors.Is(jerr, os.ErrNotExist) {
		return nil, fmt.Errorf("read position journal: %w", jerr)
	}
	journal, export, torn := readTailJournal(jdata)
	if torn > 0 {
		p.log.Warn("position journal has a damaged tail; using the records before it",
			slog.String("file", p.journal), slog.Int("ignoredBytes", torn), slog.Int("files", len(journal)))
	}
	fdata, ferr := os.ReadFile(p.path)
	if errors.Is(ferr, os.ErrNotExist) {
		if len(journal) > 0 {
			p.log.Warn("position file is missing: starting without positions and ignoring the journal",
				slog.String("file", p.path))
		}
		return nil, nil
	}
	if ferr != nil {
		return nil, fmt.Errorf("read position file: %w", ferr)
	}
	if jerr == nil && export != "" && export == fmt.Sprintf("%08x", crc32.Checksum(fdata, castagnoli)) {
		out := make([]tailPos, 0, len(journal))
		for _, e := range journal {
			out = append(out, e)
		}
		return out, nil
	}
	// Not our last export: Flume's file (migration), or a file Flume wrote
	// after us. Its positions win; the journal adds fingerprints.
	entries, complete, perr := readFlumePositions(fdata)
	switch {
	case !complete:
		p.log.Warn("position file is empty or damaged; trusting the entries before the damage",
			slog.String("file", p.path), slog.Int("entries", len(entries)), slog.Any("err", perr))
	case jerr != nil:
		p.log.Info("picking up a position file without a flumed journal (written by Flume?)",
			slog.String("file", p.path), slog.Int("entries", len(entries)))
	default:
		p.log.Info("position file was rewritten by another program (Flume?); its positions win over the journal",
			slog.String("file", p.path), slog.Int("entries", len(entries)))
	}
	byInode := make(map[uint64][]tailPos)
	for _, e := range journal {
		byInode[e.Inode] = append(byInode[e.Inode], e)
	}
	seen := make(map[uint64]bool)
	for i, e := range entries {
		seen[e.Inode] = true
		cands := byInode[e.Inode]
		for _, j := range cands {
			if j.File == e.File || len(cands) == 1 {
				entries[i].Dev, entries[i].HasDev = j.Dev, true
				entries[i].FPN, entries[i].FP, entries[i].Birth = j.FPN, j.FP, j.Birth
				if j.Pos == e.Pos {
					entries[i].Tail = j.Tail
				}
				break
			}
		}
	}
	if !complete {
		// Files the damaged file lost: the journal's older position repeats
		// lines rather than skipping or re-reading whole files.
		for _, j := range journal {
			if !seen[j.Inode] {
				p.log.Info("using the journal's position for a file missing from the damaged position file",
					slog.String("file", j.File), slog.Uint64("inode", j.Inode), slog.Int64("pos", j.Pos))
				entries = append(entries, j)
			}
		}
	}
	return entries, nil
}

// checkpoint atomically rewrites the Flume file and then the journal with the
// given snapshot, and reopens the journal for appending.
func (p *tailPositions) checkpoint(entries []tailPos) error {
	flume := encodeFlumePositions(entries)
	if err := fsutil.WriteFileAtomic(p.fs, p.path, flume, 0o644); err != nil {
		return fmt.Errorf("write position file: %w", err)
	}
	buf := appendJournalLine(nil, tailJournalRecord{Export: fmt.Sprintf("%08x", crc32.Checksum(flume, castagnoli))})
	for _, e := range entries {
		buf = appendJournalLine(buf, tailJournalRecord{tailPos: e})
	}
	if p.j != nil {
		p.j.Close()
		p.j = nil
	}
	if err := fsutil.WriteFileAtomic(p.fs, p.journal, buf, 0o644); err != nil {
		return fmt.Errorf("write position journal: %w", err)
	}
	f, err := p.fs.OpenFile(p.journal, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open position journal: %w", err)
	}
	p.j = f
	return nil
}

// record appends one record to the journal (and makes it durable when
// positionSync=batch). Without an open journal it does nothing: the next
// checkpoint carries the state.
func (p *tailPositions) record(rec tailJournalRecord) error {
	if p.j == nil {
		return nil
	}
	p.buf = appendJournalLine(p.buf[:0], rec)
	_, err := p.j.Write(p.buf)
	if err == nil && p.sync {
		// The record must be on disk before the next batch is read, so a
		// crash repeats at most the batch in flight.
		err = p.j.Sync()
	}
	if err != nil {
		// A failed write or sync leaves the file in an unknown state: stop
		// appending; the next checkpoint rewrites the journal from scratch.
		p.j.Close()
		p.j = nil
		return fmt.Errorf("append position journal: %w", err)
	}
	return nil
}

func (p *tailPositions) close() {
	if p.j != nil {
		p.j.Close()
		p.j = nil
	}
}

// hexBytes and unhex convert fingerprints and tails for the journal.
func hexBytes(b []byte) string { return hex.EncodeToString(b) }

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}
