package sink

// The HDFS sink's codecs write what Hadoop's codecs read: one whole stream
// per batch, batch after batch in one file, and batches larger than a block
// (bzip2's 900 kB) cut into several. Hadoop's own `hdfs dfs -text` reads
// gzip, deflate and bzip2 (pure Java here).

import (
	"fmt"
	"math/rand/v2"
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
	}
	for _, tc := range cases {
		s := hdfsSink(t, map[string]string{"hdfs.path": "hdfs://nn:8020/x", "hdfs.fileType": "CompressedStream", "hdfs.codeC": tc.codeC})
		if s.opts.Codec.name != tc.name || s.opts.Codec.ext != tc.ext {
			t.Errorf("hdfs.codeC = %s: codec %s (%s), want %s (%s)", tc.codeC, s.opts.Codec.name, s.opts.Codec.ext, tc.name, tc.ext)
		}
	}
}

// bigBatches is three batches of three events (bodies of letters, each line
// ending in its index) whose first batch spans two bzip2 blocks.
func bigBatches() (events []channel.Event, text string) {
	r := rand.New(rand.NewPCG(1, 2))
	sizes := []int{10, 1_000_000, 10, 300_000, 10, 10, 10, 10, 10}
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
	return events, b.String()
}

// writeBatches has the sink write events with codeC, in batches of three,
// into one file under dir (a file:// path), and returns its path.
func writeBatches(t *testing.T, dir, codeC string, events []channel.Event) string {
	t.Helper()
	s := hdfsSink(t, map[string]string{"hdfs.path": "file://" + dir, "hdfs.fileType": "CompressedStream", "hdfs.codeC": codeC,
		"hdfs.batchSize": "3", "hdfs.rollCount": "0", "hdfs.rollSize": "0", "hdfs.rollInterval": "0"})
	ch := newFakeChannel(nil)
	ch.put(events...)
	drainHDFS(t, s, ch, nil)
	files, _ := filepath.Glob(filepath.Join(dir, "FlumeData.*"))
	if len(files) != 1 {
		t.Fatalf("%s: files %q, want one", codeC, files)
	}
	return files[0]
}

func TestLargeBatchesOfEachCodecAreReadWholeByHadoop(t *testing.T) {
	in := hdfstest.Get(t)
	events, want := bigBatches()
	var paths, exts []string
	for _, codeC := range []string{"gzip", "default", "bzip2"} {
		p := writeBatches(t, t.TempDir(), codeC, events)
		paths = append(paths, "file://"+p)
		exts = append(exts, filepath.Ext(p))
	}
	if strings.Join(exts, " ") != ".gz .deflate .bz2" {
		t.Errorf("extensions %q, want .gz .deflate .bz2", exts)
	}
	// One JVM for the three files: -text prints them in the order named.
	got := string(in.Dfs(t, append([]string{"-text"}, paths...)...))
	if got != want+want+want {
		t.Errorf("-text of gzip, deflate, bzip2: %d bytes, want 3 × %d (the events, in order, each whole)", len(got), len(want))
	}
}
