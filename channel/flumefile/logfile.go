package flumefile

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
)

// Flume's data files (LogFile.java, LogFileV3.java): log-<id> holds records
// one after another, each OP_RECORD, a big-endian int32 length and that many
// bytes of payload; log-<id>.meta holds one delimited LogFileMetaData.

const (
	opRecord = 0x7f // Byte.MAX_VALUE
	opNoop   = 0x00 // (Byte.MAX_VALUE + Byte.MIN_VALUE) / 2, a record the integrity tool blanked
	opEOF    = 0x80 // Byte.MIN_VALUE, the preallocation fill

	metaSuffix    = ".meta"
	metaTmpSuffix = ".meta.tmp" // a metadata rewrite not yet renamed into place
	metaOldSuffix = ".meta.old" // the metadata a non-atomic rename moved aside
)

// logName is LogUtils' pattern for data files (Java's \d is ASCII).
var logName = regexp.MustCompile(`^log-[0-9]+$`)

// logFile is one data file found in a data directory.
type logFile struct {
	path string
	id   int32 // from the name
	size int64
}

// listLogs lists the data files of dirs, sorted by id as LogUtils.sort does
// (stably: equal ids keep directory order). A missing directory has none
// (Flume creates it empty).
func listLogs(dirs []string) ([]logFile, error) {
	var out []logFile
	for _, dir := range dirs {
		ents, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		for _, e := range ents {
			if !logName.MatchString(e.Name()) {
				continue
			}
			path := filepath.Join(dir, e.Name())
			id, err := strconv.ParseInt(e.Name()[len("log-"):], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%s: the file id is not a Java int, which Flume cannot start with: %w", path, err)
			}
			info, err := e.Info()
			if err != nil {
				return nil, err
			}
			if info.IsDir() {
				return nil, fmt.Errorf("%s: a directory named like a data file, which Flume cannot start with", path)
			}
			out = append(out, logFile{path: path, id: int32(id), size: info.Size()})
		}
	}
	slices.SortStableFunc(out, func(a, b logFile) int { return cmp.Compare(a.id, b.id) })
	return out, nil
}

// metaPath returns the metadata file the sequential reader of log would
// use: log.meta, else the .meta.tmp a crash left (Flume renames it into
// place), else the .meta.old of a non-atomic rename. "" when none exists.
func metaPath(log string) string {
	for _, suffix := range []string{metaSuffix, metaTmpSuffix, metaOldSuffix} {
		if _, err := os.Stat(log + suffix); err == nil {
			return log + suffix
		}
	}
	return ""
}

// readLogMeta reads and checks a data file's metadata the way
// LogFileV3.SequentialReader's constructor does.
func readLogMeta(log, path string) (logMeta, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return logMeta{}, err
	}
	pos := 0
	msg, ok, err := delimited(b, &pos)
	if err != nil {
		return logMeta{}, fmt.Errorf("%s: %w", path, err)
	}
	if !ok {
		return logMeta{}, fmt.Errorf("%s: empty metadata", path)
	}
	m, err := parseLogMeta(msg)
	if err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	if m.Version != 3 {
		return m, fmt.Errorf("%s: version %d, expected 3 (data files of Flume 1.2 and older are not supported)", path, m.Version)
	}
	if m.Encrypted {
		return m, &EncryptedError{File: log, Cipher: m.CipherProvider, KeyAlias: m.KeyAlias}
	}
	if m.LogFileID < 0 {
		return m, fmt.Errorf("%s: negative log file id %d", path, m.LogFileID)
	}
	return m, nil
}

// record is one decoded data record.
type record struct {
	fileID int32 // the file it was read from (its metadata's id)
	offset int32
	hdr    eventHeader
	typ    int16 // hdr.Type as Flume narrows it
	take   take  // typTake
	commit int16 // typCommit: the committed type
	put    putEvent
}

// decodeRecord parses a record payload as TransactionEventRecord.fromByteArray
// does. A *corruptErr is Flume's CorruptEventException; any other error is an
// exception Flume does not catch (a null message, an unknown type).
func decodeRecord(payload []byte, r *record) error {
	pos := 0
	next := func(what string) ([]byte, error) {
		msg, ok, err := delimited(payload, &pos)
		if err != nil {
			return nil, &corruptErr{fmt.Errorf("%s: %w", what, err)}
		}
		if !ok {
			return nil, fmt.Errorf("%s missing (Flume fails on a null %s)", what, what)
		}
		return msg, nil
	}
	msg, err := next("header")
	if err != nil {
		return err
	}
	if r.hdr, err = parseEventHeader(msg); err != nil {
		return &corruptErr{fmt.Errorf("header: %w", err)}
	}
	r.typ = int16(r.hdr.Type)
	if r.typ < typePut || r.typ > typeCommit {
		return fmt.Errorf("unknown record type %#x", r.hdr.Type)
	}
	if msg, err = next("record body"); err != nil {
		return err
	}
	switch r.typ {
	case typePut:
		err = parsePut(msg, &r.put)
		if err == nil && r.put.HasChecksum {
			if sum := int64(crc32.ChecksumIEEE(r.put.Body)); sum != r.put.Checksum {
				err = fmt.Errorf("body checksum %d, the record says %d", sum, r.put.Checksum)
			}
		}
	case typeTake:
		r.take, err = parseTake(msg)
	case typeRollback:
		err = parseEmpty(msg)
	case typeCommit:
		r.commit, err = parseCommit(msg)
	}
	if err != nil {
		return &corruptErr{err}
	}
	if msg, err = next("footer"); err != nil {
		return err
	}
	if err := parseEmpty(msg); err != nil {
		return &corruptErr{fmt.Errorf("footer: %w", err)}
	}
	return nil
}

// corruptErr is Flume's CorruptEventException: a record that does not parse
// or whose body fails its checksum. With fsyncPerTransaction=false Flume
// steps over it (replay ends that file; a take skips the event); otherwise
// it fails.
type corruptErr struct{ err error }

func (e *corruptErr) Error() string { return e.err.Error() }
func (e *corruptErr) Unwrap() error { return e.err }

// window reads a file through a buffer that slides forward; it serves both
// the sequential replay and the mostly sequential reads of queued events.
type window struct {
	f          *os.File
	size       int64
	buf        []byte
	off        int64 // file offset of buf[0]
	prefetched int64 // the kernel was asked to read ahead up to here
}

const (
	windowSize    = 4 << 20
	prefetchAhead = 4 * windowSize
)

func openWindow(path string) (*window, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &window{f: f, size: st.Size()}, nil
}

// at returns n bytes at off, or fewer when the file ends first. The bytes
// are valid until the next call.
func (w *window) at(off int64, n int) ([]byte, error) {
	if off >= w.size || n <= 0 {
		return nil, nil
	}
	n = int(min(int64(n), w.size-off))
	if off >= w.off && off+int64(n) <= w.off+int64(len(w.buf)) {
		return w.buf[off-w.off : off-w.off+int64(n)], nil
	}
	want := int(min(int64(max(n, windowSize)), w.size-off))
	if cap(w.buf) < want {
		w.buf = make([]byte, want)
	}
	w.buf = w.buf[:want]
	// Reads go forward: the next windows load while this one is decoded.
	if ahead := off + int64(want); ahead < w.size && ahead >= w.prefetched {
		w.prefetched = ahead + prefetchAhead
		prefetch(w.f, ahead, prefetchAhead)
	}
	got, err := w.f.ReadAt(w.buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	w.buf, w.off = w.buf[:got], off
	return w.buf[:min(n, got)], nil
}

func (w *window) close() error { return w.f.Close() }

// seqReader is LogFile.SequentialReader over one data file.
type seqReader struct {
	file   logFile
	meta   logMeta
	w      *window
	pos    int64
	strict bool // fsyncPerTransaction: a corrupt record fails replay
}

// skipTo is skipToLastCheckpointPosition: replay may start at the position
// the file's metadata recorded for the checkpoint it replays from.
func (r *seqReader) skipTo(checkpointWriteOrder int64) {
	m := r.meta
	if m.CheckpointPosition <= 0 {
		return
	}
	r.pos = 0
	switch {
	case m.CheckpointWriteOrder <= checkpointWriteOrder:
		r.pos = m.CheckpointPosition
	case m.BackupWriteOrder <= checkpointWriteOrder && m.BackupPosition > 0:
		r.pos = m.BackupPosition
	}
}

// next returns the next record, or ok false at the end of the file's
// records (OP_EOF, an unknown op code, a length cut by the end of the file,
// or, when not strict, a corrupt record). Errors are Flume's: replay fails.
func (r *seqReader) next(rec *record) (ok bool, err error) {
	size := r.w.size
	offset := r.pos
	for offset < size {
		op, err := r.w.at(r.pos, 1)
		if err != nil {
			return false, err
		}
		r.pos++
		if op[0] == opRecord {
			break
		}
		if op[0] != opNoop { // OP_EOF, or an op code Flume logs and stops at
			return false, nil
		}
		// A blanked record: skip its length and bytes.
		l, err := r.w.at(offset+1, 4)
		if err != nil {
			return false, err
		}
		if len(l) < 4 {
			return false, nil
		}
		r.pos = offset + 5
		if n := int32(binary.BigEndian.Uint32(l)); n > 0 {
			r.pos += min(int64(n), size-r.pos)
		}
		offset = r.pos
	}
	if offset >= size {
		return false, nil
	}
	payload, err := readPayload(r.w, offset)
	if err == nil {
		r.pos = offset + 5 + int64(len(payload))
		*rec = record{fileID: r.meta.LogFileID, offset: int32(offset)}
		err = decodeRecord(payload, rec)
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, errLengthCut):
		return false, nil // readInt hit the end: Flume's EOFException, the file's end
	}
	var ce *corruptErr
	if errors.As(err, &ce) && !r.strict {
		return false, nil // Flume takes the rest of the file as consumed
	}
	return false, &CorruptError{File: r.file.path, Offset: offset, Err: err}
}

// errLengthCut: the file ends inside a record's length.
var errLengthCut = errors.New("file ends inside a record length")

// readPayload reads the length and payload of the record whose op code is
// at offset (readDelimitedBuffer).
func readPayload(w *window, offset int64) ([]byte, error) {
	l, err := w.at(offset+1, 4)
	if err != nil {
		return nil, err
	}
	if len(l) < 4 {
		return nil, errLengthCut
	}
	n := int32(binary.BigEndian.Uint32(l))
	if n < 0 {
		return nil, &corruptErr{fmt.Errorf("record length %d", n)}
	}
	b, err := w.at(offset+5, int(n))
	if err != nil {
		return nil, err
	}
	if len(b) < int(n) {
		return nil, &corruptErr{fmt.Errorf("record of %d bytes cut by the end of the file after %d", n, len(b))}
	}
	return b, nil
}

// CorruptError names a Flume file and offset flumed refuses to import from:
// one where Flume itself fails (replay, or the take that meets the record).
type CorruptError struct {
	File   string
	Offset int64
	Err    error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s at offset %d: %v", e.File, e.Offset, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// EncryptedError refuses a data file Flume encrypted (encryption.* keys):
// flumed has no way to decrypt it.
type EncryptedError struct {
	File, Cipher, KeyAlias string
}

func (e *EncryptedError) Error() string {
	return fmt.Sprintf("%s is encrypted (cipher %s, key alias %q): flumed cannot decrypt Flume's encrypted file channel; "+
		"drain it with Flume (or restart Flume without encryption.* and let it empty the channel) before moving to flumed; "+
		"its files are left as they are", e.File, e.Cipher, e.KeyAlias)
}
