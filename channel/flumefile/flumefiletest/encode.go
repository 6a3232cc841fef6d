package flumefiletest

import (
	"bufio"
	"crypto/md5"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// A test-only encoder of Apache Flume's file-channel format (version 3),
// writing the bytes Flume's own writers write: records as
// TransactionEventRecord.toByteBuffer frames them inside LogFile.Writer's
// OP_RECORD framing and 1 MiB OP_EOF preallocation, LogFileMetaData and
// Checkpoint messages as protobuf-java serializes them (set fields in field
// number order), the checkpoint file and the inflight files. channel/flumefile's
// tests check it against the fixtures real Flume wrote, byte for byte; it
// then builds what the fixtures cannot hold (a million events, damage).

// Record types, as TransactionEventRecord.Type.
const (
	TypePut      = 1
	TypeTake     = 2
	TypeRollback = 3
	TypeCommit   = 4
)

// Header is one event header in the order it is written. NoValue leaves the
// optional value unset (Flume writes it only for a non-null value).
type Header struct {
	Key, Value string
	NoValue    bool
}

// Put is a put record's event.
type Put struct {
	Headers []Header
	Body    []byte
	// NoChecksum leaves out the optional CRC32 of the body; BadChecksum
	// writes a wrong one.
	NoChecksum, BadChecksum bool
}

// Pointer is Flume's event pointer: file id and offset in one long.
func Pointer(fileID, offset int32) int64 { return int64(fileID)<<32 | int64(uint32(offset)) }

func appendDelimited(b, msg []byte) []byte {
	b = protowire.AppendVarint(b, uint64(len(msg)))
	return append(b, msg...)
}

func fixed32(b []byte, num protowire.Number, v int32) []byte {
	b = protowire.AppendTag(b, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, uint32(v))
}

func fixed64(b []byte, num protowire.Number, v int64) []byte {
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, uint64(v))
}

func bytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// record frames a record's body message between its header and footer.
func record(typ int32, txn, writeOrder int64, body []byte) []byte {
	var h []byte
	h = fixed32(h, 1, typ)
	h = fixed64(h, 2, txn)
	h = fixed64(h, 3, writeOrder)
	out := appendDelimited(make([]byte, 0, len(h)+len(body)+8), h)
	out = appendDelimited(out, body)
	return appendDelimited(out, nil) // TransactionEventFooter, empty
}

// PutRecord is the payload of a put record.
func PutRecord(txn, writeOrder int64, p Put) []byte {
	var ev []byte
	for _, h := range p.Headers {
		var hb []byte
		hb = bytesField(hb, 1, []byte(h.Key))
		if !h.NoValue {
			hb = bytesField(hb, 2, []byte(h.Value))
		}
		ev = bytesField(ev, 1, hb)
	}
	ev = bytesField(ev, 2, p.Body)
	body := bytesField(make([]byte, 0, len(ev)+16), 1, ev)
	if !p.NoChecksum {
		sum := int64(crc32.ChecksumIEEE(p.Body))
		if p.BadChecksum {
			sum++
		}
		body = fixed64(body, 2, sum)
	}
	return record(TypePut, txn, writeOrder, body)
}

// TakeRecord is the payload of a take of the event at (fileID, offset).
func TakeRecord(txn, writeOrder int64, fileID, offset int32) []byte {
	var b []byte
	b = fixed32(b, 1, fileID)
	b = fixed32(b, 2, offset)
	return record(TypeTake, txn, writeOrder, b)
}

// RollbackRecord is the payload of a rollback.
func RollbackRecord(txn, writeOrder int64) []byte { return record(TypeRollback, txn, writeOrder, nil) }

// CommitRecord is the payload of a commit of a transaction of type typ
// (TypePut or TypeTake).
func CommitRecord(txn, writeOrder int64, typ int32) []byte {
	return record(TypeCommit, txn, writeOrder, fixed32(nil, 1, typ))
}

// Frame is a record as it sits in a data file: OP_RECORD, length, payload.
func Frame(payload []byte) []byte {
	b := make([]byte, 5, 5+len(payload))
	b[0] = 0x7f
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	return append(b, payload...)
}

// LogMeta is LogFileMetaData, the content of log-<id>.meta.
type LogMeta struct {
	ID                                     int32
	CheckpointPosition, CheckpointWriteOrd int64
	BackupPosition, BackupWriteOrder       int64
	// Cipher, when set, marks the file encrypted (a LogFileEncryption with
	// this cipher provider and KeyAlias).
	Cipher, KeyAlias string
}

// LogMetaBytes is the .meta file's content.
func LogMetaBytes(m LogMeta) []byte {
	var b []byte
	b = fixed32(b, 1, 3)
	b = fixed32(b, 2, m.ID)
	b = fixed64(b, 3, m.CheckpointPosition)
	b = fixed64(b, 4, m.CheckpointWriteOrd)
	if m.Cipher != "" {
		var e []byte
		e = bytesField(e, 1, []byte(m.Cipher))
		e = bytesField(e, 2, []byte(m.KeyAlias))
		e = bytesField(e, 3, []byte{1, 2, 3, 4})
		b = bytesField(b, 5, e)
	}
	b = fixed64(b, 6, m.BackupPosition)
	b = fixed64(b, 7, m.BackupWriteOrder)
	return appendDelimited(nil, b)
}

// LogWriter writes a data file as LogFile.Writer does.
type LogWriter struct {
	f    *os.File
	w    *bufio.Writer
	Path string
	ID   int32
	pos  int64
	size int64 // the file's size as Flume's preallocation leaves it
}

const fill = 1 << 20 // LogFile's preallocation chunk

// CreateLog creates log-<id> in dir.
func CreateLog(dir string, id int32) (*LogWriter, error) {
	p := filepath.Join(dir, "log-"+strconv.Itoa(int(id)))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &LogWriter{f: f, w: bufio.NewWriterSize(f, 1<<20), Path: p, ID: id}, nil
}

// Append writes one record and returns its offset.
func (l *LogWriter) Append(payload []byte) (int32, error) {
	off := l.pos
	n := int64(5 + len(payload))
	if off+n > l.size {
		l.size = max(l.size, off+fill)
	}
	var hdr [5]byte
	hdr[0] = 0x7f
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := l.w.Write(hdr[:]); err != nil {
		return 0, err
	}
	if _, err := l.w.Write(payload); err != nil {
		return 0, err
	}
	l.pos += n
	l.size = max(l.size, l.pos)
	return int32(off), nil
}

// AppendRaw writes bytes as they are (damage, blanked records).
func (l *LogWriter) AppendRaw(b []byte) error {
	_, err := l.w.Write(b)
	l.pos += int64(len(b))
	l.size = max(l.size, l.pos)
	return err
}

// Pos is where the next record goes.
func (l *LogWriter) Pos() int64 { return l.pos }

// Close fills the rest of the preallocated space with OP_EOF and writes the
// metadata file (m.ID is taken from the writer when zero).
func (l *LogWriter) Close(m LogMeta) error {
	eof := make([]byte, 64<<10)
	for i := range eof {
		eof[i] = 0x80
	}
	for rest := l.size - l.pos; rest > 0; {
		n := min(rest, int64(len(eof)))
		if _, err := l.w.Write(eof[:n]); err != nil {
			return err
		}
		rest -= n
	}
	if err := l.w.Flush(); err != nil {
		return err
	}
	if err := l.f.Close(); err != nil {
		return err
	}
	if m.ID == 0 {
		m.ID = l.ID
	}
	return os.WriteFile(l.Path+".meta", LogMetaBytes(m), 0o644)
}

// ActiveLog is a checkpoint's reference count of one data file.
type ActiveLog struct{ ID, Count int32 }

// Inflight is a transaction open at a checkpoint and its pointers.
type Inflight struct {
	Txn      int64
	Pointers []int64
}

// Checkpoint is a checkpoint directory's content.
type Checkpoint struct {
	Capacity   int
	WriteOrder int64
	Head       int32
	Queue      []int64 // queued pointers, head first
	ActiveLogs []ActiveLog
	Incomplete bool // the marker of a checkpoint being written
	// Puts and Takes are the inflight transactions, in file order.
	Puts, Takes []Inflight
}

// CheckpointMetaBytes is checkpoint.meta's content.
func CheckpointMetaBytes(c Checkpoint) []byte {
	var b []byte
	b = fixed32(b, 1, 3)
	b = fixed64(b, 2, c.WriteOrder)
	b = fixed32(b, 3, int32(len(c.Queue)))
	b = fixed32(b, 4, c.Head)
	for _, a := range c.ActiveLogs {
		var e []byte
		e = fixed32(e, 1, a.ID)
		e = fixed32(e, 2, a.Count)
		b = bytesField(b, 5, e)
	}
	return appendDelimited(nil, b)
}

// CheckpointBytes is the checkpoint file: header and circular queue.
func CheckpointBytes(c Checkpoint) []byte {
	b := make([]byte, 8*(c.Capacity+1029))
	binary.BigEndian.PutUint64(b[0:], 3)
	binary.BigEndian.PutUint64(b[8:], uint64(c.WriteOrder))
	if c.Incomplete {
		binary.BigEndian.PutUint64(b[32:], 1)
	}
	for i, p := range c.Queue {
		slot := 1029 + (int(c.Head)+i)%c.Capacity
		binary.BigEndian.PutUint64(b[8*slot:], uint64(p))
	}
	return b
}

// InflightBytes is an inflightputs or inflighttakes file.
func InflightBytes(txns []Inflight) []byte {
	n := 16
	for _, t := range txns {
		n += 16 + 8*len(t.Pointers)
	}
	buf := make([]byte, n) // the longs, then 16 zero bytes Flume also hashes
	i := 0
	put := func(v int64) { binary.BigEndian.PutUint64(buf[i:], uint64(v)); i += 8 }
	for _, t := range txns {
		put(t.Txn)
		put(int64(len(t.Pointers)))
		for _, p := range t.Pointers {
			put(p)
		}
	}
	sum := md5.Sum(buf)
	return append(sum[:], buf...)
}

// WriteCheckpoint writes checkpoint, checkpoint.meta, inflightputs and
// inflighttakes into dir.
func WriteCheckpoint(dir string, c Checkpoint) error {
	files := map[string][]byte{
		"checkpoint":      CheckpointBytes(c),
		"checkpoint.meta": CheckpointMetaBytes(c),
		"inflightputs":    InflightBytes(c.Puts),
		"inflighttakes":   InflightBytes(c.Takes),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
