package sink

// The HDFS sink's file types (hdfs.fileType): the bytes one batch adds to a
// file. Each batch's bytes are complete on their own (a whole compressed
// member, whole SequenceFile records or blocks), because each batch is made
// durable and committed alone: a file cut after any batch is readable by
// Hadoop.

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/flumed/flumed/channel"
)

// hdfsFormat writes the batches of one file.
type hdfsFormat interface {
	// Append appends the bytes of events to buf; the first call of a file
	// also writes its header. now is the time for events without a
	// timestamp header (SequenceFile keys).
	Append(buf []byte, events []channel.Event, now time.Time) ([]byte, error)
}

// dataStream is DataStream: the serializer's bytes as they are.
type dataStream struct{ ser Serializer }

func (d dataStream) Append(buf []byte, events []channel.Event, _ time.Time) ([]byte, error) {
	return d.ser.Append(buf, events)
}

// compressedStream is CompressedStream: each batch's serialized bytes as one
// complete stream of the codec (hdfs_codec.go), as Flume's sink finishes its
// compressor at every flush. Hadoop's decompressors read the concatenation.
type compressedStream struct {
	ser   Serializer
	codec hdfsCodec
	raw   []byte
}

func (c *compressedStream) Append(buf []byte, events []channel.Event, _ time.Time) ([]byte, error) {
	raw, err := c.ser.Append(c.raw[:0], events)
	if err != nil {
		return buf, err
	}
	c.raw = raw
	return c.codec.compress(buf, raw)
}

// sequenceFile is SequenceFile (version 6, Hadoop's SequenceFile.Writer): a
// header naming the key and value classes, then records. Flume's keys are
// LongWritable timestamps (the event's header, else now, in milliseconds);
// its values BytesWritable (writeFormat Writable) or Text (writeFormat Text)
// of the body. With hdfs.codeC set, Flume asks Hadoop for a BLOCK-compressed
// file (HDFSEventSink sets CompressionType.BLOCK whenever a codec is given;
// no key selects RECORD): see appendBlock.
type sequenceFile struct {
	text   bool
	codec  *hdfsCodec // nil: records uncompressed
	sync   [16]byte
	header bool // written
	// The four raw buffers of a block, reused from batch to batch.
	keyLens, keys, valLens, vals, packed []byte
}

const (
	seqLongWritable  = "org.apache.hadoop.io.LongWritable"
	seqBytesWritable = "org.apache.hadoop.io.BytesWritable"
	seqText          = "org.apache.hadoop.io.Text"

	// seqBlockSize is Hadoop's io.seqfile.compress.blocksize default: a
	// block is cut once its keys and values reach this many raw bytes, so
	// a reader (which holds a whole block) needs no more memory for ours
	// than for Hadoop's own files.
	seqBlockSize = 1_000_000
)

func newSequenceFile(text bool, codec *hdfsCodec) (*sequenceFile, error) {
	s := &sequenceFile{text: text, codec: codec}
	if _, err := rand.Read(s.sync[:]); err != nil {
		return nil, fmt.Errorf("sequence file sync marker: %w", err)
	}
	return s, nil
}

func (s *sequenceFile) Append(buf []byte, events []channel.Event, now time.Time) ([]byte, error) {
	if !s.header {
		buf = append(buf, 'S', 'E', 'Q', 6)
		buf = appendHadoopText(buf, seqLongWritable)
		if s.text {
			buf = appendHadoopText(buf, seqText)
		} else {
			buf = appendHadoopText(buf, seqBytesWritable)
		}
		if s.codec != nil {
			buf = append(buf, 1, 1) // compressed, block-compressed
			buf = appendHadoopText(buf, s.codec.class)
		} else {
			buf = append(buf, 0, 0) // not compressed, not block-compressed
		}
		buf = binary.BigEndian.AppendUint32(buf, 0) // no metadata
		buf = append(buf, s.sync[:]...)
		s.header = true
		if s.codec != nil {
			return s.appendBlocks(buf, events, now)
		}
	} else {
		if s.codec != nil {
			return s.appendBlocks(buf, events, now)
		}
		// A sync marker before each batch (Hadoop writes one every ~2000
		// bytes): readers and splits resynchronize at batch boundaries.
		buf = binary.BigEndian.AppendUint32(buf, 0xFFFFFFFF)
		buf = append(buf, s.sync[:]...)
	}
	for _, e := range events {
		val := s.appendValue(nil, e.Body)
		buf = binary.BigEndian.AppendUint32(buf, uint32(8+len(val))) // record length
		buf = binary.BigEndian.AppendUint32(buf, 8)                  // key length
		buf = binary.BigEndian.AppendUint64(buf, uint64(seqKey(e, now)))
		buf = append(buf, val...)
	}
	return buf, nil
}

// seqKey is Flume's key: the event's timestamp header, else now, in
// milliseconds.
func seqKey(e channel.Event, now time.Time) int64 {
	if v, ok := e.Headers["timestamp"]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	return now.UnixMilli()
}

// appendValue appends the serialized value of body: a BytesWritable (a
// big-endian int32 length) or a Text (a VInt length), then the bytes.
func (s *sequenceFile) appendValue(buf, body []byte) []byte {
	if s.text {
		buf = appendVInt(buf, int64(len(body)))
	} else {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(body)))
	}
	return append(buf, body...)
}

// appendBlocks writes events as blocks of a BLOCK-compressed SequenceFile,
// as Hadoop's BlockCompressWriter lays them out: the sync escape (int32 -1)
// and the sync marker, the record count (VInt), then four buffers, each a
// VInt length and one complete stream of the codec: the keys' lengths
// (VInts), the keys, the values' lengths (VInts), the values. Hadoop's
// reader expects the sync before every block, the first one after the
// header included. A batch ends on a whole block (several when its records
// pass seqBlockSize, or the codec's seqValues), never one left open for the
// next: the file is closed after each batch, and a file cut after any batch
// is read whole.
func (s *sequenceFile) appendBlocks(buf []byte, events []channel.Event, now time.Time) ([]byte, error) {
	for len(events) > 0 {
		s.keyLens, s.keys, s.valLens, s.vals = s.keyLens[:0], s.keys[:0], s.valLens[:0], s.vals[:0]
		n := 0
		for n < len(events) && len(s.keys)+len(s.vals) < seqBlockSize {
			e := events[n]
			if n > 0 && s.codec.seqValues > 0 && len(s.vals)+5+len(e.Body) > s.codec.seqValues {
				break
			}
			s.keyLens = appendVInt(s.keyLens, 8)
			s.keys = binary.BigEndian.AppendUint64(s.keys, uint64(seqKey(e, now)))
			before := len(s.vals)
			s.vals = s.appendValue(s.vals, e.Body)
			s.valLens = appendVInt(s.valLens, int64(len(s.vals)-before))
			n++
		}
		buf = binary.BigEndian.AppendUint32(buf, 0xFFFFFFFF)
		buf = append(buf, s.sync[:]...)
		buf = appendVInt(buf, int64(n))
		for _, raw := range [][]byte{s.keyLens, s.keys, s.valLens, s.vals} {
			packed, err := s.codec.compress(s.packed[:0], raw)
			if err != nil {
				return buf, fmt.Errorf("%s block: %w", s.codec.name, err)
			}
			s.packed = packed
			buf = appendVInt(buf, int64(len(packed)))
			buf = append(buf, packed...)
		}
		events = events[n:]
	}
	return buf, nil
}

// appendHadoopText is Hadoop's Text.writeString: a VInt length, then UTF-8.
func appendHadoopText(buf []byte, s string) []byte {
	return append(appendVInt(buf, int64(len(s))), s...)
}

// appendVInt is Hadoop's WritableUtils.writeVLong.
func appendVInt(buf []byte, i int64) []byte {
	if i >= -112 && i <= 127 {
		return append(buf, byte(i))
	}
	l := -112
	if i < 0 {
		i = ^i
		l = -120
	}
	for tmp := i; tmp != 0; tmp >>= 8 {
		l--
	}
	buf = append(buf, byte(l))
	n := -(l + 112)
	if l < -120 {
		n = -(l + 120)
	}
	for idx := n; idx != 0; idx-- {
		shift := (idx - 1) * 8
		buf = append(buf, byte(i>>shift))
	}
	return buf
}
