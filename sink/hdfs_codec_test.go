package sink

// The HDFS sink's codecs write what Hadoop's codecs read: one whole stream
// per batch, batch after batch in one file, and batches larger than a block
// (bzip2's 900 kB, SnappyCodec's 218422 bytes) cut into several. Hadoop's
// own `hdfs dfs -text` reads bzip2 (pure Java here), batches of two blocks
// included (gzip, deflate and bzip2 of small batches appended to real HDFS:
// the file-type test in hdfs_test.go). Snappy is read by Hadoop 3.3.0 only
// through native libhadoop, which the Hadoop of ../shared/hdfs lacks: there
// the framing is parsed by a small reader of its own and every chunk
// decoded by Google's C snappy (Debian's python3-snappy), and Hadoop's -text
// must either read the files too or fail for want of native snappy, nothing
// else.

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/hdfstest"
)

func TestFlumesNamesOfEachCodecAreAccepted(t *testing.T) {
	cases := []struct{ codeC, name, ext string }{
		{"gzip", "gzip", ".gz"},
		{"GzipCodec", "gzip", ".gz"},
		{"org.apache.hadoop.io.compress.GzipCodec", "gzip", ".gz"},
		{"default", "default", ".deflate"},
		{"DefaultCodec", "default", ".deflate"},
		{"bzip2", "bzip2", ".bz2"},
		{"BZip2Codec", "bzip2", ".bz2"},
		{"org.apache.hadoop.io.compress.BZip2Codec", "bzip2", ".bz2"},
		{"snappy", "snappy", ".snappy"},
		{"SnappyCodec", "snappy", ".snappy"},
		{"org.apache.hadoop.io.compress.SnappyCodec", "snappy", ".snappy"},
	}
	for _, tc := range cases {
		s := hdfsSink(t, map[string]string{"hdfs.path": "hdfs://nn:8020/x", "hdfs.fileType": "CompressedStream", "hdfs.codeC": tc.codeC})
		if s.opts.Codec.name != tc.name || s.opts.Codec.ext != tc.ext {
			t.Errorf("hdfs.codeC = %s: codec %s (%s), want %s (%s)", tc.codeC, s.opts.Codec.name, s.opts.Codec.ext, tc.name, tc.ext)
		}
	}
}

// bigBatches is three batches of three events (bodies of letters, each line
// ending in its index) whose first batch spans two bzip2 blocks and five
// snappy blocks, the second two snappy blocks, the third one block of each.
func bigBatches() (events []channel.Event, text string, snappyBlocks int) {
	r := rand.New(rand.NewPCG(1, 2))
	sizes := []int{10, 1_000_000, 10, 250_000, 10, 10, 10, 10, 10}
	var b strings.Builder
	for i, n := range sizes {
		body := make([]byte, n, n+8)
		for j := range body {
			body[j] = 'a' + byte(r.IntN(26))
		}
		body = fmt.Appendf(body, " %d", i)
		events = append(events, channel.Event{Body: body})
		b.Write(body)
		b.WriteByte('\n')
	}
	for lo := 0; lo < len(events); lo += 3 {
		raw := 0
		for _, e := range events[lo : lo+3] {
			raw += len(e.Body) + 1
		}
		snappyBlocks += (raw + hadoopSnappyBlock - 1) / hadoopSnappyBlock
	}
	return events, b.String(), snappyBlocks
}

// writeBatches has the sink write events in batches of three, with keys
// (the file type and codec) added to its own, into one file under dir (a
// file:// path), and returns its path.
func writeBatches(t *testing.T, dir string, keys map[string]string, events []channel.Event) string {
	t.Helper()
	conf := map[string]string{"hdfs.path": "file://" + dir,
		"hdfs.batchSize": "3", "hdfs.rollCount": "0", "hdfs.rollSize": "0", "hdfs.rollInterval": "0"}
	maps.Copy(conf, keys)
	s := hdfsSink(t, conf)
	ch := newFakeChannel(nil)
	ch.put(events...)
	drainHDFS(t, s, ch, nil)
	files, _ := filepath.Glob(filepath.Join(dir, "FlumeData.*"))
	if len(files) != 1 {
		t.Fatalf("%v: files %q, want one", keys, files)
	}
	return files[0]
}

// writeStream is writeBatches of a CompressedStream by codeC.
func writeStream(t *testing.T, dir, codeC string, events []channel.Event) string {
	t.Helper()
	return writeBatches(t, dir, map[string]string{"hdfs.fileType": "CompressedStream", "hdfs.codeC": codeC}, events)
}

func TestBzip2BatchesLargerThanABlockAreReadWholeByHadoop(t *testing.T) {
	in := hdfstest.Get(t)
	events, want, _ := bigBatches()
	path := writeStream(t, t.TempDir(), "bzip2", events)
	if !strings.HasSuffix(path, ".bz2") {
		t.Errorf("file %s, want FlumeData.<n>.bz2", path)
	}
	if got := string(in.Text(t, "file://"+path)); got != want {
		t.Errorf("-text: %d bytes, want %d (the events, in order, each whole)", len(got), len(want))
	}
}

// readHadoopSnappy parses Hadoop's BlockCompressorStream framing on its own
// and decodes every chunk with Google's C snappy (python3-snappy). It fails
// on a block of 0 bytes (end of file to Hadoop's reader), a block larger
// than Hadoop's reader takes with its default buffer (256 KiB - (256 KiB/6 +
// 32) = 218422 bytes), a chunk past the end, or chunks that do not add up
// to their block's length; it prints the decoded bytes and the blocks'
// lengths.
const readHadoopSnappy = `
import sys, json, struct, snappy
data = open(sys.argv[1], "rb").read()
i, out, blocks = 0, [], []
def int32():
    global i
    if i + 4 > len(data): sys.exit("truncated length at %d" % i)
    (v,) = struct.unpack_from(">I", data, i); i += 4
    return v
while i < len(data):
    n = int32()
    if n == 0 or n > 218422: sys.exit("block of %d bytes at %d" % (n, i - 4))
    got = b""
    while len(got) < n:
        c = int32()
        if i + c > len(data): sys.exit("chunk of %d bytes past the end at %d" % (c, i))
        got += snappy.uncompress(data[i:i+c]); i += c
    if len(got) != n: sys.exit("block of %d bytes decoded to %d" % (n, len(got)))
    out.append(got); blocks.append(n)
json.dump({"text": b"".join(out).decode(), "blocks": blocks}, sys.stdout)
`

func TestSnappyFilesAreHadoopsBlockFramingOfSnappyBlocks(t *testing.T) {
	in := hdfstest.Get(t)
	py := pythonAvro(t) // Debian's python3 with python3-snappy
	small := stamped(11)
	var smallText strings.Builder
	for _, e := range small {
		smallText.WriteString(string(e.Body) + "\n")
	}
	big, bigText, bigBlocks := bigBatches()
	for _, tc := range []struct {
		name   string
		events []channel.Event
		text   string
		blocks int
	}{
		{"small batches, appended", small, smallText.String(), 4},
		{"batches larger than a block", big, bigText, bigBlocks},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeStream(t, t.TempDir(), "snappy", tc.events)
			if !strings.HasSuffix(path, ".snappy") {
				t.Errorf("file %s, want FlumeData.<n>.snappy", path)
			}
			out, err := exec.Command(py, "-c", readHadoopSnappy, path).Output()
			if err != nil {
				if ee, ok := err.(*exec.ExitError); ok {
					t.Fatalf("the framing is not Hadoop's: %v: %s", err, ee.Stderr)
				}
				t.Fatal(err)
			}
			var got struct {
				Text   string
				Blocks []int
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if got.Text != tc.text || len(got.Blocks) != tc.blocks {
				t.Errorf("decoded %d bytes in blocks %v; want %d bytes (the events, in order) in %d blocks",
					len(got.Text), got.Blocks, len(tc.text), tc.blocks)
			}
			// Hadoop 3.3.0 reads snappy only through libhadoop, which the
			// Hadoop here lacks (checknative: "snappy: false"): its -text
			// must fail in SnappyCodec's check for native code (an
			// UnsatisfiedLinkError without libhadoop, "native snappy library
			// not available" with one built without snappy), or, where it
			// can read snappy, read the file as it is.
			cmd := exec.Command(filepath.Join(in.Home, "bin", "hdfs"), in.Dir, "dfs", "-text", "file://"+path)
			cmd.Env = append(os.Environ(), "HADOOP_USER_NAME="+in.User, "HDFS_CLIENT_HEAP=128m")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			text, err := cmd.Output()
			first, _, _ := strings.Cut(stderr.String(), "\n")
			switch {
			case err == nil && string(text) != tc.text:
				t.Errorf("Hadoop's -text: %d bytes, want %d (the events, in order)", len(text), len(tc.text))
			case err != nil && !strings.Contains(stderr.String(), "SnappyCodec.checkNativeCodeLoaded"):
				t.Errorf("Hadoop's -text failed, and not for want of native snappy: %v: %s", err, stderr.String())
			case err != nil:
				t.Logf("Hadoop's -text cannot read snappy without native code: %s", first)
			}
		})
	}
}

func TestASnappyBatchOfNoBytesAddsNoBlock(t *testing.T) {
	// A block of length 0 is end-of-file to Hadoop's BlockDecompressorStream:
	// written for an empty batch, it would hide every later batch of the file.
	got, err := snappyBlocks([]byte("before"), nil)
	if err != nil || string(got) != "before" {
		t.Fatalf("snappyBlocks of nothing: %q, %v; want the file unchanged", got, err)
	}
}
