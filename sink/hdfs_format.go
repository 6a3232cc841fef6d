package sink

// The HDFS sink's file types (hdfs.fileType): the bytes one batch adds to a
// file. Each batch's bytes are complete on their own (a whole compressed
// member, whole SequenceFile records), because each batch is made durable
// and committed alone: a file cut after any batch is readable by Hadoop.

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

// sequenceFile is SequenceFile, uncompressed (version 6, Hadoop's
// SequenceFile.Writer): a header naming the key and value classes, then
// records. Flume's keys are LongWritable timestamps (the event's header,
// else now, in milliseconds); its values BytesWritable (writeFormat
// Writable) or Text (writeFormat Text) of the body.
type sequenceFile struct {
	text   bool
	sync   [16]byte
	header bool // written
}

const (
	seqLongWritable  = "org.apache.hadoop.io.LongWritable"
	seqBytesWritable = "org.apache.hadoop.io.BytesWritable"
	seqText          = "org.apache.hadoop.io.Text"
)

func newSequenceFile(text bool) (*sequenceFile, error) {
	s := &sequenceFile{text: text}
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
		buf = append(buf, 0, 0)                     // not compressed, not block-compressed
		buf = binary.BigEndian.AppendUint32(buf, 0) // no metadata
		buf = append(buf, s.sync[:]...)
		s.header = true
	} else {
		// A sync marker before each batch (Hadoop writes one every ~2000
		// bytes): readers and splits resynchronize at batch boundaries.
		buf = binary.BigEndian.AppendUint32(buf, 0xFFFFFFFF)
		buf = append(buf, s.sync[:]...)
	}
	for _, e := range events {
		ts := now.UnixMilli()
		if v, ok := e.Headers["timestamp"]; ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				ts = n
			}
		}
		var val []byte
		if s.text {
			val = appendVInt(nil, int64(len(e.Body)))
		} else {
			val = binary.BigEndian.AppendUint32(nil, uint32(len(e.Body)))
		}
		buf = binary.BigEndian.AppendUint32(buf, uint32(8+len(val)+len(e.Body))) // record length
		buf = binary.BigEndian.AppendUint32(buf, 8)                              // key length
		buf = binary.BigEndian.AppendUint64(buf, uint64(ts))
		buf = append(buf, val...)
		buf = append(buf, e.Body...)
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
