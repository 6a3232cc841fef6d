package flumefile

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Flume's messages (proto/filechannel.proto, proto2) decoded the way the
// protobuf-java 2.5 code Flume generates from it decodes them, because what
// that code accepts or refuses decides what Flume replays:
//
//   - A field whose number is known but whose wire type is not the declared
//     one is an unknown field, skipped like any other.
//   - A scalar field seen twice keeps the last value; an embedded message
//     seen twice is merged (its repeated fields concatenated).
//   - A missing required field, a truncated field, a malformed varint, field
//     number 0 or an unbalanced group makes the message invalid
//     (InvalidProtocolBufferException, which Flume turns into a corrupt event
//     or a bad checkpoint).
//   - parseDelimitedFrom returns null, not an error, on an empty stream; and
//     its length prefix only limits the stream: a message cut short by the end
//     of the data parses if it ends on a field boundary, and a negative length
//     reads as an empty message.
//   - string fields are not checked for UTF-8 (proto2); Java decodes them with
//     replacement characters (see javaString).

// errProto is wrapped by every decoding error: the bytes are not a valid
// message (Flume's InvalidProtocolBufferException).
var errProto = errors.New("invalid protocol buffer")

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errProto, fmt.Sprintf(format, args...))
}

// javaVarint32 reads a varint the way CodedInputStream.readRawVarint32 does:
// up to ten bytes, keeping the low 32 bits.
func javaVarint32(b []byte) (v int32, n int, err error) {
	var result uint32
	for i := 0; i < 10; i++ {
		if i >= len(b) {
			return 0, 0, protoErr("truncated varint")
		}
		c := b[i]
		if i < 5 {
			result |= uint32(c&0x7f) << (7 * i)
		}
		if c&0x80 == 0 {
			return int32(result), i + 1, nil
		}
	}
	return 0, 0, protoErr("malformed varint")
}

// delimited splits the next length-delimited message off b at *pos, as
// parseDelimitedFrom reads it: ok is false (Java's null) when nothing is
// left; the message may be shorter than its prefix says when b ends first.
func delimited(b []byte, pos *int) (msg []byte, ok bool, err error) {
	if *pos >= len(b) {
		return nil, false, nil
	}
	size, n, err := javaVarint32(b[*pos:])
	if err != nil {
		return nil, false, err
	}
	start := *pos + n
	end := start
	if size > 0 {
		end = start + min(int(size), len(b)-start)
	}
	*pos = end
	return b[start:end], true, nil
}

// field is one decoded field of a message.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64 // varint, fixed32, fixed64
	b   []byte // bytes
}

// fields calls fn for every field of msg, in order, skipping groups as
// unknown fields; fn returns an error to stop.
func fields(msg []byte, fn func(field) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return protoErr("bad tag: %v", protowire.ParseError(n))
		}
		msg = msg[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(msg)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(msg)
			f.v = uint64(v)
		case protowire.Fixed64Type:
			f.v, n = protowire.ConsumeFixed64(msg)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(msg)
		case protowire.StartGroupType:
			n = protowire.ConsumeFieldValue(num, typ, msg)
		default: // an end group with no start, or wire types 6 and 7
			return protoErr("field %d: unexpected wire type %d", num, typ)
		}
		if n < 0 {
			return protoErr("field %d: %v", num, protowire.ParseError(n))
		}
		msg = msg[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func (f field) is(num protowire.Number, typ protowire.Type) bool { return f.num == num && f.typ == typ }

func (f field) i32() int32 { return int32(uint32(f.v)) }
func (f field) i64() int64 { return int64(f.v) }

// missing reports the first required field not set, by name.
func missing(names []string, set ...bool) error {
	for i, ok := range set {
		if !ok {
			return protoErr("required field %s missing", names[i])
		}
	}
	return nil
}

// --- Data records (TransactionEventRecord) ---

// Record types (TransactionEventRecord.Type).
const (
	typePut      = 1
	typeTake     = 2
	typeRollback = 3
	typeCommit   = 4
)

// eventHeader is TransactionEventHeader.
type eventHeader struct {
	Type       int32
	TxnID      int64
	WriteOrder int64
}

func parseEventHeader(msg []byte) (h eventHeader, err error) {
	var hasType, hasTxn, hasWO bool
	err = fields(msg, func(f field) error {
		switch {
		case f.is(1, protowire.Fixed32Type):
			h.Type, hasType = f.i32(), true
		case f.is(2, protowire.Fixed64Type):
			h.TxnID, hasTxn = f.i64(), true
		case f.is(3, protowire.Fixed64Type):
			h.WriteOrder, hasWO = f.i64(), true
		}
		return nil
	})
	if err == nil {
		err = missing([]string{"type", "transactionID", "writeOrderID"}, hasType, hasTxn, hasWO)
	}
	return h, err
}

// Header is one event header as Flume stored it, in stored order. A header
// without a value reads as "" (protobuf's default), as in Flume.
type Header struct {
	Key, Value string
}

// putEvent is Put{FlumeEvent event, sfixed64 checksum}.
type putEvent struct {
	Headers     []Header
	Body        []byte
	Checksum    int64
	HasChecksum bool
}

// parsePut parses msg into p, reusing the capacity of p.Headers.
func parsePut(msg []byte, p *putEvent) (err error) {
	*p = putEvent{Headers: p.Headers[:0]}
	var hasEvent, hasBody bool
	err = fields(msg, func(f field) error {
		switch {
		case f.is(1, protowire.BytesType):
			hasEvent = true
			// A repeated embedded message merges into the one before.
			return parseFlumeEvent(f.b, p, &hasBody)
		case f.is(2, protowire.Fixed64Type):
			p.Checksum, p.HasChecksum = f.i64(), true
		}
		return nil
	})
	if err == nil {
		err = missing([]string{"event", "event.body"}, hasEvent, hasBody)
	}
	return err
}

func parseFlumeEvent(msg []byte, p *putEvent, hasBody *bool) error {
	return fields(msg, func(f field) error {
		switch {
		case f.is(1, protowire.BytesType):
			h, err := parseHeader(f.b)
			if err != nil {
				return err
			}
			p.Headers = append(p.Headers, h)
		case f.is(2, protowire.BytesType):
			p.Body, *hasBody = f.b, true
		}
		return nil
	})
}

func parseHeader(msg []byte) (h Header, err error) {
	var hasKey, hasValue bool
	var key, value []byte
	err = fields(msg, func(f field) error {
		switch {
		case f.is(1, protowire.BytesType):
			key, hasKey = f.b, true
		case f.is(2, protowire.BytesType):
			value, hasValue = f.b, true
		}
		return nil
	})
	if err == nil {
		err = missing([]string{"header.key"}, hasKey)
	}
	h.Key = javaString(key)
	if hasValue {
		h.Value = javaString(value)
	}
	return h, err
}

// take is Take{sfixed32 fileID, sfixed32 offset}.
type take struct{ FileID, Offset int32 }

func parseTake(msg []byte) (t take, err error) {
	var hasFile, hasOff bool
	err = fields(msg, func(f field) error {
		switch {
		case f.is(1, protowire.Fixed32Type):
			t.FileID, hasFile = f.i32(), true
		case f.is(2, protowire.Fixed32Type):
			t.Offset, hasOff = f.i32(), true
		}
		return nil
	})
	if err == nil {
		err = missing([]string{"fileID", "offset"}, hasFile, hasOff)
	}
	return t, err
}

// parseCommit returns Commit.type, which Flume narrows to a Java short.
func parseCommit(msg []byte) (int16, error) {
	var typ int32
	var has bool
	err := fields(msg, func(f field) error {
		if f.is(1, protowire.Fixed32Type) {
			typ, has = f.i32(), true
		}
		return nil
	})
	if err == nil {
		err = missing([]string{"type"}, has)
	}
	return int16(typ), err
}

// parseEmpty parses Rollback and TransactionEventFooter, which have no
// fields: only well-formedness is checked.
func parseEmpty(msg []byte) error {
	return fields(msg, func(field) error { return nil })
}

// --- Metadata ---

// logMeta is LogFileMetaData, the log-N.meta file.
type logMeta struct {
	Version              int32
	LogFileID            int32
	CheckpointPosition   int64
	CheckpointWriteOrder int64
	Encrypted            bool
	CipherProvider       string
	KeyAlias             string
	BackupPosition       int64
	BackupWriteOrder     int64
}

func parseLogMeta(msg []byte) (m logMeta, err error) {
	var hasV, hasID, hasPos, hasWO bool
	err = fields(msg, func(f field) error {
		switch {
		case f.is(1, protowire.Fixed32Type):
			m.Version, hasV = f.i32(), true
		case f.is(2, protowire.Fixed32Type):
			m.LogFileID, hasID = f.i32(), true
		case f.is(3, protowire.Fixed64Type):
			m.CheckpointPosition, hasPos = f.i64(), true
		case f.is(4, protowire.Fixed64Type):
			m.CheckpointWriteOrder, hasWO = f.i64(), true
		case f.is(5, protowire.BytesType):
			m.Encrypted = true
			return fields(f.b, func(g field) error {
				switch {
				case g.is(1, protowire.BytesType):
					m.CipherProvider = javaString(g.b)
				case g.is(2, protowire.BytesType):
					m.KeyAlias = javaString(g.b)
				}
				return nil
			})
		case f.is(6, protowire.Fixed64Type):
			m.BackupPosition = f.i64()
		case f.is(7, protowire.Fixed64Type):
			m.BackupWriteOrder = f.i64()
		}
		return nil
	})
	if err == nil {
		err = missing([]string{"version", "logFileID", "checkpointPosition", "checkpointWriteOrderID"},
			hasV, hasID, hasPos, hasWO)
	}
	return m, err
}

// activeLog is Checkpoint.ActiveLog: how many queued events a log file holds.
type activeLog struct{ FileID, Count int32 }

// checkpointMeta is Checkpoint, the checkpoint.meta file.
type checkpointMeta struct {
	Version    int32
	WriteOrder int64
	QueueSize  int32
	QueueHead  int32
	ActiveLogs []activeLog
}

func parseCheckpointMeta(msg []byte) (c checkpointMeta, err error) {
	var hasV, hasWO, hasSize, hasHead bool
	err = fields(msg, func(f field) error {
		switch {
		case f.is(1, protowire.Fixed32Type):
			c.Version, hasV = f.i32(), true
		case f.is(2, protowire.Fixed64Type):
			c.WriteOrder, hasWO = f.i64(), true
		case f.is(3, protowire.Fixed32Type):
			c.QueueSize, hasSize = f.i32(), true
		case f.is(4, protowire.Fixed32Type):
			c.QueueHead, hasHead = f.i32(), true
		case f.is(5, protowire.BytesType):
			var a activeLog
			var hasID, hasCount bool
			err := fields(f.b, func(g field) error {
				switch {
				case g.is(1, protowire.Fixed32Type):
					a.FileID, hasID = g.i32(), true
				case g.is(2, protowire.Fixed32Type):
					a.Count, hasCount = g.i32(), true
				}
				return nil
			})
			if err == nil {
				err = missing([]string{"activeLogs.logFileID", "activeLogs.count"}, hasID, hasCount)
			}
			c.ActiveLogs = append(c.ActiveLogs, a)
			return err
		}
		return nil
	})
	if err == nil {
		err = missing([]string{"version", "writeOrderID", "queueSize", "queueHead"}, hasV, hasWO, hasSize, hasHead)
	}
	return c, err
}
