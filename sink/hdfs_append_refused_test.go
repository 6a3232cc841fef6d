package sink

// When the NameNode refuses to append to a bucket's file past appendWait
// (in practice: it has marked the file's only replica corrupt after a late
// DataNode report, see open in hdfs.go and the README's "HDFS"), the sink
// rolls the file, which holds every committed batch, writes the batch to a
// new file, tells the operator which file and why, and counts it. No event
// is lost or repeated.

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flumed/flumed/internal/fsutil"
)

// refusal is the NameNode's answer to an append to a file whose last block
// has no live replica, as the Go client returns it.
type refusal struct{}

func (refusal) Error() string {
	return "append call failed with ERROR_APPLICATION (java.io.IOException)"
}
func (refusal) Method() string    { return "append" }
func (refusal) Desc() string      { return "ERROR_APPLICATION" }
func (refusal) Exception() string { return "java.io.IOException" }
func (refusal) Message() string {
	return "append: lastBlock=blk_1073741841_1937 of src=/e2e/FlumeData.1.tmp is not sufficiently replicated yet."
}

// refusingFS refuses the nth Append (counting from 1).
type refusingFS struct {
	hdfsFS
	n, appends int
}

func (f *refusingFS) Append(p string) (hdfsFile, error) {
	f.appends++
	if f.appends == f.n {
		return nil, &os.PathError{Op: "append", Path: p, Err: refusal{}}
	}
	return f.hdfsFS.Append(p)
}

func TestAFileTheNameNodeRefusesToAppendToIsRolledReportedAndCounted(t *testing.T) {
	dir := t.TempDir()
	s := hdfsSink(t, map[string]string{"hdfs.path": "file://" + dir, "hdfs.fileType": "DataStream", "hdfs.batchSize": "2",
		"hdfs.rollCount": "0", "hdfs.rollSize": "0", "hdfs.rollInterval": "0"})
	var logs bytes.Buffer
	s.log = slog.New(slog.NewTextHandler(&logs, nil))
	fs := &refusingFS{n: 2} // the third batch's append
	s.openFS = func() (hdfsFS, error) { fs.hdfsFS = localFS{fs: fsutil.OS{}}; return fs, nil }
	ch := newFakeChannel(nil)
	ch.put(numbered(10)...)
	drainHDFS(t, s, ch, nil)

	files := localFiles(t, dir)
	if len(files) != 2 {
		t.Fatalf("files %q: want the refused file rolled and a second one", files)
	}
	first := string(must(os.ReadFile(filepath.Join(dir, files[0]))))
	if first != "e0\ne1\ne2\ne3\n" {
		t.Errorf("the refused file holds %q, want its two committed batches", first)
	}
	var all strings.Builder
	for _, f := range files {
		if strings.HasSuffix(f, ".tmp") {
			t.Errorf("%s still in use after Stop", f)
		}
		all.Write(must(os.ReadFile(filepath.Join(dir, f))))
	}
	var want strings.Builder
	for i := range 10 {
		fmt.Fprintf(&want, "e%d\n", i)
	}
	if all.String() != want.String() {
		t.Errorf("all files: %q, want every event once, in order", all.String())
	}
	if got := s.FlumeMetrics()["AppendRefusedRollCount"]; got != "1" {
		t.Errorf("AppendRefusedRollCount = %s, want 1", got)
	}
	line := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "refuses to append") {
			line = l
		}
	}
	if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "file="+filepath.Join(dir, files[0])) ||
		!strings.Contains(line, "CORRUPT") {
		t.Errorf("the operator's line %q: want a warning naming the rolled file and saying fsck lists it as CORRUPT\n%s", line, logs.String())
	}
}
