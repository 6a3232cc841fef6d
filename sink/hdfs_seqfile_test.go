package sink

// With hdfs.codeC set, fileType SequenceFile writes what Flume has Hadoop
// write: a BLOCK-compressed SequenceFile naming the codec's class in its
// header, each batch one or more whole blocks (sync escape, sync marker,
// record count, then the key lengths, keys, value lengths and values, each
// one complete stream of the codec), so a file appended batch after batch,
// and cut after any batch, is read whole. Two readers check it: a small
// parser of the layout of our own (Python's zlib, gzip and bz2, and Google's
// C snappy for Hadoop's snappy framing), which also counts the blocks and
// checks every stream ends exactly at its buffer's end; and Hadoop's own
// -text, for every codec it can read here (gzip, deflate, bzip2; snappy
// needs native code this Hadoop lacks). The appended small batches are read
// by -text on the real HDFS in hdfs_test.go's file-type test.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/hdfstest"
)

// readSeqFile parses a block-compressed SequenceFile written with Flume's
// LongWritable keys, and prints its header, the record count of each block
// and every record (the key, and the body as Latin-1). It fails on anything
// Hadoop's reader would not take: another magic or version, a block
// without the sync escape and the header's sync marker, a buffer whose
// stream does not end exactly at the buffer's end (or is not one stream),
// a snappy block of 0 bytes or larger than Hadoop's reader takes, lengths
// that disagree with the bytes, or trailing bytes.
const readSeqFile = `
import sys, json, struct, zlib, bz2
data = open(sys.argv[1], "rb").read()
i = 0
def fail(msg): sys.exit("%s at %d" % (msg, i))
def take(n):
    global i
    if i + n > len(data): fail("truncated: %d bytes wanted" % n)
    b = data[i:i+n]; i += n
    return b
def vint_of(buf, j):
    first = struct.unpack_from("b", buf, j)[0]; j += 1
    if first >= -112: return first, j
    neg = first < -120
    size = (-119 - first) if neg else (-111 - first)
    v = 0
    for _ in range(size - 1):
        v = (v << 8) | buf[j]; j += 1
    return (~v if neg else v), j
def vint():
    global i
    v, i = vint_of(data, i)
    return v
def text():
    return take(vint()).decode()
def one_stream(d, raw):
    out = d.decompress(raw)
    if not d.eof or d.unused_data: fail("not exactly one stream in a buffer")
    return out
def snappy_blocks(raw):
    import snappy
    j, out = 0, b""
    while j < len(raw):
        (n,) = struct.unpack_from(">I", raw, j); j += 4
        if n == 0 or n > 218422: fail("snappy block of %d bytes" % n)
        got = b""
        while len(got) < n:
            (c,) = struct.unpack_from(">I", raw, j); j += 4
            if j + c > len(raw): fail("snappy chunk past its buffer")
            got += snappy.uncompress(raw[j:j+c]); j += c
        if len(got) != n: fail("snappy block of %d decoded to %d" % (n, len(got)))
        out += got
    return out
decode = {
    "org.apache.hadoop.io.compress.GzipCodec": lambda r: one_stream(zlib.decompressobj(31), r),
    "org.apache.hadoop.io.compress.DefaultCodec": lambda r: one_stream(zlib.decompressobj(), r),
    "org.apache.hadoop.io.compress.BZip2Codec": lambda r: one_stream(bz2.BZ2Decompressor(), r),
    "org.apache.hadoop.io.compress.SnappyCodec": snappy_blocks,
}
if take(4) != b"SEQ\x06": fail("not a version 6 SequenceFile")
key_class, value_class = text(), text()
compressed, block = take(1)[0], take(1)[0]
if (compressed, block) != (1, 1): fail("not block-compressed: %d %d" % (compressed, block))
codec = text()
if codec not in decode: fail("unknown codec " + codec)
(meta,) = struct.unpack(">i", take(4))
if meta != 0: fail("%d metadata entries" % meta)
sync = take(16)
blocks, records = [], []
while i < len(data):
    if take(4) != b"\xff\xff\xff\xff" or take(16) != sync: fail("no sync before a block")
    n = vint()
    bufs = [decode[codec](take(vint())) for _ in range(4)]
    key_lens, keys, val_lens, vals = bufs
    kj = vj = klj = vlj = 0
    for _ in range(n):
        kl, klj = vint_of(key_lens, klj)
        vl, vlj = vint_of(val_lens, vlj)
        if kl != 8: fail("key of %d bytes" % kl)
        (key,) = struct.unpack_from(">q", keys, kj); kj += 8
        v = vals[vj:vj+vl]; vj += vl
        if value_class == "org.apache.hadoop.io.BytesWritable":
            (bl,) = struct.unpack_from(">I", v, 0); body = v[4:]
        else:
            bl, j = vint_of(v, 0); body = v[j:]
        if bl != len(body): fail("value length %d for %d bytes" % (bl, len(body)))
        records.append([key, body.decode("latin-1")])
    if (klj, kj, vlj, vj) != (len(key_lens), len(keys), len(val_lens), len(vals)): fail("buffers longer than their records")
    blocks.append(n)
json.dump({"key": key_class, "value": value_class, "codec": codec, "blocks": blocks, "records": records}, sys.stdout)
`

// writeSeqBatches is writeBatches of a SequenceFile (the default type)
// compressed by codeC, its values in writeFormat.
func writeSeqBatches(t *testing.T, dir, codeC, writeFormat string, events []channel.Event) string {
	t.Helper()
	return writeBatches(t, dir, map[string]string{"hdfs.codeC": codeC, "hdfs.writeFormat": writeFormat}, events)
}

// bigStamped is bigBatches with timestamp headers 1000+i: its first batch
// passes Hadoop's 1,000,000-byte block (two blocks), the others do not.
func bigStamped() []channel.Event {
	events, _, _ := bigBatches()
	for i := range events {
		events[i].Headers = map[string]string{"timestamp": strconv.Itoa(1000 + i)}
	}
	return events
}

func TestCompressedSequenceFilesAreHadoopsBlockCompressedLayout(t *testing.T) {
	py := pythonAvro(t) // Debian's python3 with python3-snappy
	// The big batches' values: 10 and 1,000,000 bytes reach Hadoop's
	// 1,000,000-byte block, cut after them; bzip2 cuts before a value that
	// would take its block's values past one bzip2 block (bzip2SeqValues).
	hadoopCut, bzip2Cut := []int{2, 1, 3, 3}, []int{1, 1, 1, 3, 3}
	codecs := []struct {
		codeC, class, ext string
		bigBlocks         []int
	}{
		{"gzip", "org.apache.hadoop.io.compress.GzipCodec", ".gz", hadoopCut},
		{"DefaultCodec", "org.apache.hadoop.io.compress.DefaultCodec", ".deflate", hadoopCut},
		{"bzip2", "org.apache.hadoop.io.compress.BZip2Codec", ".bz2", bzip2Cut},
		{"snappy", "org.apache.hadoop.io.compress.SnappyCodec", ".snappy", hadoopCut},
	}
	batches := []struct {
		name, writeFormat, value string
		events                   []channel.Event
		blocks                   []int // nil: the codec's bigBlocks
	}{
		{"small batches appended, Writable", "Writable", seqBytesWritable, stamped(11), []int{3, 3, 3, 2}},
		{"small batches appended, Text", "Text", seqText, stamped(11), []int{3, 3, 3, 2}},
		{"a batch past a block is cut", "Writable", seqBytesWritable, bigStamped(), nil},
	}
	for _, c := range codecs {
		for _, b := range batches {
			if b.blocks == nil {
				b.blocks = c.bigBlocks
			}
			t.Run(c.codeC+"/"+b.name, func(t *testing.T) {
				path := writeSeqBatches(t, t.TempDir(), c.codeC, b.writeFormat, b.events)
				if !strings.HasSuffix(path, c.ext) {
					t.Errorf("file %s, want FlumeData.<n>%s (Flume adds the codec's extension)", path, c.ext)
				}
				out, err := exec.Command(py, "-c", readSeqFile, path).Output()
				if err != nil {
					if ee, ok := err.(*exec.ExitError); ok {
						t.Fatalf("not Hadoop's layout: %v: %s", err, ee.Stderr)
					}
					t.Fatal(err)
				}
				var got struct {
					Key, Value, Codec string
					Blocks            []int
					Records           [][2]any
				}
				if err := json.Unmarshal(out, &got); err != nil {
					t.Fatal(err)
				}
				if got.Key != seqLongWritable || got.Value != b.value || got.Codec != c.class {
					t.Errorf("header: %s, %s, %s; want %s, %s, %s", got.Key, got.Value, got.Codec, seqLongWritable, b.value, c.class)
				}
				if fmt.Sprint(got.Blocks) != fmt.Sprint(b.blocks) {
					t.Errorf("records per block %v, want %v (a batch ends on a whole block)", got.Blocks, b.blocks)
				}
				if len(got.Records) != len(b.events) {
					t.Fatalf("%d records, want %d", len(got.Records), len(b.events))
				}
				for i, r := range got.Records {
					if key, body := r[0].(float64), r[1].(string); key != float64(1000+i) || body != string(b.events[i].Body) {
						t.Errorf("record %d: key %v, body of %d bytes; want key %d, the event's %d bytes", i, key, len(body), 1000+i, len(b.events[i].Body))
					}
				}
			})
		}
	}
}

func TestHadoopReadsCompressedSequenceFileBatchesLargerThanABlock(t *testing.T) {
	in := hdfstest.Get(t)
	// A first batch of 1 MB of values: one block of three records for
	// gzip and deflate; two blocks for bzip2, whose pure-Java reader in
	// Hadoop fails (IndexOutOfBoundsException) when a read of a value
	// crosses a bzip2 block boundary after more than half of the value's
	// buffer: in one block, the 700,000-byte value would, at 300,000. Then
	// a small batch.
	var events []channel.Event
	for i, n := range []int{10, 300_000, 700_000, 10, 10, 10} {
		body := make([]byte, n)
		for j := range body {
			body[j] = 'a' + byte((i*7+j*j)%26)
		}
		events = append(events, channel.Event{Headers: map[string]string{"timestamp": strconv.Itoa(1000 + i)}, Body: body})
	}
	var want strings.Builder
	var paths []string
	// One -text for every codec Hadoop reads here (a JVM start costs
	// seconds on a busy machine): its output is the files' in that order.
	for _, codeC := range []string{"gzip", "default", "bzip2"} {
		paths = append(paths, "file://"+writeSeqBatches(t, t.TempDir(), codeC, "Text", events))
		for i, e := range events {
			fmt.Fprintf(&want, "%d\t%s\n", 1000+i, e.Body)
		}
	}
	if got := string(in.Dfs(t, append([]string{"-text"}, paths...)...)); got != want.String() {
		t.Errorf("-text of gzip, deflate and bzip2 SequenceFiles: %d bytes, want %d (every record, in order, whole)", len(got), want.Len())
	}
}

func TestHadoopReadsASnappySequenceFileOrFailsOnlyForWantOfNativeSnappy(t *testing.T) {
	in := hdfstest.Get(t)
	events := stamped(11)
	path := writeSeqBatches(t, t.TempDir(), "snappy", "Text", events)
	var want strings.Builder
	for i, e := range events {
		fmt.Fprintf(&want, "%d\t%s\n", 1000+i, e.Body)
	}
	// Hadoop 3.3.0 decompresses snappy only through libhadoop, which the
	// Hadoop here lacks: the SequenceFile reader asks SnappyCodec for a
	// decompressor, which fails its check for native code. Where it can
	// read snappy, it must read the file as it is.
	cmd := exec.Command(filepath.Join(in.Home, "bin", "hdfs"), in.Dir, "dfs", "-text", "file://"+path)
	cmd.Env = append(os.Environ(), "HADOOP_USER_NAME="+in.User, "HDFS_CLIENT_HEAP=128m")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	text, err := cmd.Output()
	first, _, _ := strings.Cut(stderr.String(), "\n")
	switch {
	case err == nil && string(text) != want.String():
		t.Errorf("Hadoop's -text: %q, want %q", text, want.String())
	case err != nil && !strings.Contains(stderr.String(), "SnappyCodec.checkNativeCodeLoaded"):
		t.Errorf("Hadoop's -text failed, and not for want of native snappy: %v: %s", err, stderr.String())
	case err != nil:
		t.Logf("Hadoop's -text cannot read snappy without native code: %s", first)
	}
}
