package sink

// The HDFS sink's codecs (hdfs.codeC with hdfs.fileType = CompressedStream;
// SequenceFile blocks use them per buffer, see hdfs_format.go).
// Flume finishes its compressor at every batch's flush and resets it at the
// next write, so a file is one complete stream of the codec per batch, laid
// end to end; each codec here writes exactly one such stream per call, and
// Hadoop's decompressor for the file's extension reads the concatenation.
// A file cut after any batch therefore still ends on a stream boundary.

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"sync"

	"github.com/dsnet/compress/bzip2"
	"github.com/klauspost/compress/snappy"
)

// hdfsCodec is hdfs.codeC: CompressedStream's codec, and the codec of a
// block-compressed SequenceFile's buffers (hdfs_format.go), where Hadoop's
// codecs write the same stream formats, one complete stream per buffer.
type hdfsCodec struct {
	name  string // gzip, default, bzip2 or snappy
	ext   string // Hadoop's default extension, added to the file name
	class string // Hadoop's codec class, named in a SequenceFile's header
	// seqValues, when not 0, bounds the raw values of one SequenceFile
	// block (see bzip2SeqValues); 0: only Hadoop's block size does.
	seqValues int
	// compress appends raw to dst as one complete stream of the codec.
	compress func(dst, raw []byte) ([]byte, error)
}

var (
	gzipCodec    = hdfsCodec{"gzip", ".gz", "org.apache.hadoop.io.compress.GzipCodec", 0, gzipStream}
	deflateCodec = hdfsCodec{"default", ".deflate", "org.apache.hadoop.io.compress.DefaultCodec", 0, zlibStream}
	bzip2Codec   = hdfsCodec{"bzip2", ".bz2", "org.apache.hadoop.io.compress.BZip2Codec", bzip2SeqValues, bzip2Stream}
	snappyCodec  = hdfsCodec{"snappy", ".snappy", "org.apache.hadoop.io.compress.SnappyCodec", 0, snappyBlocks}
)

// hdfsCodecs are the codecs flumed writes, by Flume's names (Hadoop's class
// name, its simple name, or that without "Codec", in any case). Hadoop reads
// each by its extension (CompressionCodecFactory).
var hdfsCodecs = map[string]hdfsCodec{
	"gzip":    gzipCodec,
	"default": deflateCodec,
	"bzip2":   bzip2Codec,
	"snappy":  snappyCodec,

	"org.apache.hadoop.io.compress.gzipcodec":    gzipCodec,
	"org.apache.hadoop.io.compress.defaultcodec": deflateCodec,
	"org.apache.hadoop.io.compress.bzip2codec":   bzip2Codec,
	"org.apache.hadoop.io.compress.snappycodec":  snappyCodec,
}

// refusedCodecs are Flume's other codecs, with why flumed does not write them.
var refusedCodecs = map[string]string{
	"lzo":  "refused: LZO is GPL-licensed native code outside Hadoop; use gzip",
	"lzop": "refused: LZO is GPL-licensed native code outside Hadoop; use gzip",
}

// gzipStream is GzipCodec: one gzip member.
func gzipStream(dst, raw []byte) ([]byte, error) {
	out := bytes.NewBuffer(dst)
	w := gzip.NewWriter(out)
	if _, err := w.Write(raw); err != nil {
		return dst, err
	}
	if err := w.Close(); err != nil {
		return dst, err
	}
	return out.Bytes(), nil
}

// zlibStream is DefaultCodec: one zlib stream.
func zlibStream(dst, raw []byte) ([]byte, error) {
	out := bytes.NewBuffer(dst)
	w := zlib.NewWriter(out)
	if _, err := w.Write(raw); err != nil {
		return dst, err
	}
	if err := w.Close(); err != nil {
		return dst, err
	}
	return out.Bytes(), nil
}

// bzip2SeqValues bounds the values of a bzip2 SequenceFile block so that
// they fit one bzip2 block: 900 kB after bzip2's first run-length stage,
// which can grow input by up to 5/4 (720 kB of input), less a margin.
// Hadoop's pure-Java bzip2 reader (BZip2CompressionInputStream, used
// without native code, as here) fails with IndexOutOfBoundsException when
// one read of a value crosses a bzip2 block boundary after more than half
// of the value's buffer (measured with -text of Hadoop 3.3.0: a
// 1,000,002-byte value; a 700,000-byte value after a 300,000-byte one).
// Smaller blocks cost a little ratio; a single value larger than this
// still spans bzip2 blocks, as in files Hadoop's own writer makes.
const bzip2SeqValues = 700_000

// bzip2Writers keeps level-9 bzip2 writers between batches: a new one
// allocates about 1.9 MB (its 900 kB block buffer and the transform's
// arrays; a pooled one about 10 kB per batch of 50 kB), too much to
// allocate per batch or to keep per open file (maxOpenFiles of them); the
// pool holds about as many as batches are being compressed at once.
var bzip2Writers sync.Pool

// bzip2Stream is BZip2Codec: one whole bzip2 stream, "BZh9", blocks, the
// end-of-stream marker and combined CRC, padded to a byte. That is what
// Hadoop's pure-Java writer makes (BZip2Codec writes "BZ", CBZip2OutputStream
// "h9" and the rest), and what its reader (CBZip2InputStream, which Hadoop
// uses without native code, as here) reads, stream after stream.
// Level 9 as Hadoop's: 900 kB blocks.
func bzip2Stream(dst, raw []byte) ([]byte, error) {
	out := bytes.NewBuffer(dst)
	w, _ := bzip2Writers.Get().(*bzip2.Writer)
	if w == nil {
		var err error
		if w, err = bzip2.NewWriter(out, &bzip2.WriterConfig{Level: bzip2.BestCompression}); err != nil {
			return dst, err
		}
	} else if err := w.Reset(out); err != nil {
		return dst, err
	}
	_, err := w.Write(raw)
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return dst, err // w is dropped: its state after an error is unknown
	}
	_ = w.Reset(nil) // not keeping out's bytes alive in the pool
	bzip2Writers.Put(w)
	return out.Bytes(), nil
}

// hadoopSnappyBlock is the most bytes one snappy block holds: Hadoop's
// BlockCompressorStream cuts its input at bufferSize - (bufferSize/6 + 32)
// (SnappyCodec's compression overhead) with io.compression.codec.snappy.
// buffersize's default of 256 KiB, so that the compressed chunk fits the
// reader's buffer of that size whole: a larger chunk fails to decompress.
const hadoopSnappyBlock = 256<<10 - (256<<10/6 + 32)

// snappyBlocks is SnappyCodec (Hadoop's BlockCompressorStream framing, not
// snappy's own framing format): blocks of at most hadoopSnappyBlock bytes,
// each a big-endian uint32 of its uncompressed length, then one chunk: a
// big-endian uint32 of the compressed length and a raw snappy block. A
// batch of no bytes writes nothing: a block of length 0 is end-of-file to
// Hadoop's reader (BlockDecompressorStream), which would hide every later
// batch of the file.
func snappyBlocks(dst, raw []byte) ([]byte, error) {
	for len(raw) > 0 {
		n := min(len(raw), hadoopSnappyBlock)
		chunk := snappy.Encode(nil, raw[:n])
		dst = binary.BigEndian.AppendUint32(dst, uint32(n))
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(chunk)))
		dst = append(dst, chunk...)
		raw = raw[n:]
	}
	return dst, nil
}
