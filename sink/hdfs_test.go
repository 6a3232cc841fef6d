package sink

// The hdfs sink writes each event to the file of its bucket and rolls files
// by count, size, age, idleness and maxOpenFiles; every file type it writes
// is read back by Hadoop's own FsShell -text, against the real HDFS of
// ../shared/hdfs (internal/hdfstest) and on file:// paths. Every batch is
// durable before its take commits: a second client, trusting the length the
// NameNode reports, reads every committed event right after the commit. A
// failed write rolls the take back, cuts the failed batch off the file and
// rolls it, and the batch is written again to a new file: nothing committed
// is missing and nothing is written twice.

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/clock"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/fsutil"
	"github.com/flumed/flumed/internal/hdfstest"
)

// hdfsSink builds an hdfs sink from Flume keys, checked as the agent does.
func hdfsSink(t *testing.T, kv map[string]string) *HDFS {
	t.Helper()
	if _, ok := kv["hdfs.inUseList"]; !ok {
		kv["hdfs.inUseList"] = filepath.Join(t.TempDir(), "inuse") // not in the home directory
	}
	c := config.FromMap("a1.sinks.k1.", kv)
	sk, err := checkedSink("hdfs")("k1", c, nil)
	if err != nil || c.Problems().Err() != nil {
		t.Fatalf("configure: %v %v", err, c.Problems().Err())
	}
	return sk.(*HDFS)
}

// drainHDFS starts s on ch and processes until ch is empty, failing on any
// error; it returns after Stop, when every file is rolled.
func drainHDFS(t *testing.T, s *HDFS, ch channel.Channel, afterEach func()) {
	t.Helper()
	if err := s.Start(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	for {
		st, err := s.Process(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if afterEach != nil {
			afterEach()
		}
		if st == Backoff {
			break
		}
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
}

// stamped is n events e0… with timestamp headers 1000+i.
func stamped(n int) []channel.Event {
	es := numbered(n)
	for i := range es {
		es[i].Headers = map[string]string{"timestamp": strconv.Itoa(1000 + i)}
	}
	return es
}

func TestHadoopReadsEveryFileTypeTheSinkWritesToHDFS(t *testing.T) {
	in := hdfstest.Get(t)
	body := func(i int) string { return fmt.Sprintf("e%d", i) }
	hex := func(i int) string {
		var parts []string
		for _, c := range []byte(body(i)) {
			parts = append(parts, fmt.Sprintf("%02x", c))
		}
		return strings.Join(parts, " ")
	}
	cases := []struct {
		name string
		kv   map[string]string
		ext  string
		text func(i int) string
	}{
		{"DataStream text", map[string]string{"hdfs.fileType": "DataStream"}, "",
			body},
		{"DataStream header_and_text", map[string]string{"hdfs.fileType": "DataStream", "serializer": "header_and_text"}, "",
			func(i int) string { return fmt.Sprintf("{timestamp=%d} e%d", 1000+i, i) }},
		{"SequenceFile Writable (the default)", map[string]string{}, "",
			func(i int) string { return fmt.Sprintf("%d\t%s", 1000+i, hex(i)) }},
		{"SequenceFile Text", map[string]string{"hdfs.writeFormat": "Text"}, "",
			func(i int) string { return fmt.Sprintf("%d\t%s", 1000+i, body(i)) }},
		{"CompressedStream gzip", map[string]string{"hdfs.fileType": "CompressedStream", "hdfs.codeC": "gzip"}, ".gz",
			body},
		{"CompressedStream default (deflate)", map[string]string{"hdfs.fileType": "CompressedStream", "hdfs.codeC": "DefaultCodec"}, ".deflate",
			body},
		// Hadoop reads bzip2 with its pure-Java decoder (no native code
		// here), one whole stream per batch, several per file.
		{"CompressedStream bzip2", map[string]string{"hdfs.fileType": "CompressedStream", "hdfs.codeC": "bzip2"}, ".bz2",
			body},
		// Block-compressed SequenceFiles (Flume's with hdfs.codeC): each
		// batch is whole blocks, appended to the file batch after batch.
		{"SequenceFile Writable gzip", map[string]string{"hdfs.codeC": "gzip"}, ".gz",
			func(i int) string { return fmt.Sprintf("%d\t%s", 1000+i, hex(i)) }},
		{"SequenceFile Text gzip", map[string]string{"hdfs.codeC": "gzip", "hdfs.writeFormat": "Text"}, ".gz",
			func(i int) string { return fmt.Sprintf("%d\t%s", 1000+i, body(i)) }},
		{"SequenceFile Writable default (deflate)", map[string]string{"hdfs.codeC": "DefaultCodec"}, ".deflate",
			func(i int) string { return fmt.Sprintf("%d\t%s", 1000+i, hex(i)) }},
		{"SequenceFile Text default (deflate)", map[string]string{"hdfs.codeC": "DefaultCodec", "hdfs.writeFormat": "Text"}, ".deflate",
			func(i int) string { return fmt.Sprintf("%d\t%s", 1000+i, body(i)) }},
		{"SequenceFile Writable bzip2", map[string]string{"hdfs.codeC": "bzip2"}, ".bz2",
			func(i int) string { return fmt.Sprintf("%d\t%s", 1000+i, hex(i)) }},
		{"SequenceFile Text bzip2", map[string]string{"hdfs.codeC": "bzip2", "hdfs.writeFormat": "Text"}, ".bz2",
			func(i int) string { return fmt.Sprintf("%d\t%s", 1000+i, body(i)) }},
	}
	const events = 11 // 5 + 5 + 1 with rollCount 5, in batches of 3: files grow by append
	// Every type is written first, then read by one FsShell for all (a JVM
	// start costs seconds on a busy machine): -ls -R, and -text of every
	// directory, whose output is the directories' in the order named.
	var globs []string
	var wantText strings.Builder
	root := fmt.Sprintf("/filetypes/%d", time.Now().UnixNano()) // its own under go test -count N: one HDFS per process
	for i, tc := range cases {
		dir := fmt.Sprintf("%s/%d", root, i)
		kv := map[string]string{"hdfs.path": in.URL + dir, "hdfs.batchSize": "3", "hdfs.rollCount": "5", "hdfs.rollSize": "0",
			"hdfs.filePrefix": "ev"}
		for k, v := range tc.kv {
			kv[k] = v
		}
		s := hdfsSink(t, kv)
		ch := newFakeChannel(nil)
		ch.put(stamped(events)...)
		drainHDFS(t, s, ch, nil)
		globs = append(globs, dir+"/*")
		for i := range events {
			wantText.WriteString(tc.text(i) + "\n")
		}
	}
	files := map[string][]string{}
	for _, line := range strings.Split(string(in.Dfs(t, "-ls", "-R", "-C", root)), "\n") {
		if dir, base, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), root+"/"), "/"); ok {
			files[dir] = append(files[dir], base)
		}
	}
	for i, tc := range cases {
		got := files[strconv.Itoa(i)]
		if len(got) != 3 {
			t.Errorf("%s: files %q, want 3", tc.name, got)
		}
		for _, base := range got {
			if !strings.HasPrefix(base, "ev.") || !strings.HasSuffix(base, tc.ext) || strings.HasSuffix(base, ".tmp") {
				t.Errorf("%s: file %s, want ev.<n>%s, rolled", tc.name, base, tc.ext)
			}
		}
	}
	if got := string(in.Dfs(t, append([]string{"-text"}, globs...)...)); got != wantText.String() {
		var names []string
		for _, tc := range cases {
			names = append(names, tc.name)
		}
		t.Errorf("-text of %s:\n%s\nwant:\n%s", strings.Join(names, ", "), got, wantText.String())
	}
}

func TestEveryCommittedBatchIsInTheFileAtTheLengthTheNameNodeReports(t *testing.T) {
	in := hdfstest.Get(t)
	reader := in.Client(t) // another client: it trusts the NameNode's length
	s := hdfsSink(t, map[string]string{"hdfs.path": in.URL + "/durable", "hdfs.fileType": "DataStream",
		"hdfs.batchSize": "4", "hdfs.rollCount": "0", "hdfs.rollSize": "0", "hdfs.rollInterval": "0"})
	ch := newFakeChannel(nil)
	ch.put(numbered(10)...)
	var want strings.Builder
	committed := 0
	drainHDFS(t, s, ch, func() {
		for ; committed < 10-ch.size(); committed++ {
			fmt.Fprintf(&want, "e%d\n", committed)
		}
		if committed == 0 {
			return
		}
		var b *hdfsBucket
		for _, b = range s.buckets {
		}
		if b == nil {
			t.Fatal("no file in use after a committed batch")
		}
		got, err := reader.ReadFile(b.tmp)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want.String() {
			t.Fatalf("after %d committed events the NameNode's length shows %q, want %q", committed, got, want.String())
		}
	})
	if committed != 10 {
		t.Fatalf("%d events committed, want 10", committed)
	}
}

func TestAppendsRightAfterTheCloseOfTheLastBatchSucceed(t *testing.T) {
	// The NameNode refuses an append until the DataNode has reported the
	// file's last block, which a busy DataNode does late: the sink waits for
	// it instead of failing the batch (and abandoning the file).
	in := hdfstest.Get(t)
	const n = 150
	s := hdfsSink(t, map[string]string{"hdfs.path": in.URL + "/appends", "hdfs.fileType": "DataStream",
		"hdfs.batchSize": "1", "hdfs.rollCount": "0", "hdfs.rollSize": "0", "hdfs.rollInterval": "0"})
	ch := newFakeChannel(nil)
	ch.put(numbered(n)...)
	t0 := time.Now()
	drainHDFS(t, s, ch, nil)
	t.Logf("%d batches of one event, each closed and the next appended: %v per batch", n, time.Since(t0)/n)
	var want strings.Builder
	for i := range n {
		fmt.Fprintf(&want, "e%d\n", i)
	}
	// One file, unless the NameNode refused an append past the wait (its
	// only replica marked corrupt after a late DataNode report, see open in
	// hdfs.go): each such file is rolled and the next batch starts another.
	files := in.Ls(t, "/appends")
	refused, _ := strconv.Atoi(s.FlumeMetrics()["AppendRefusedRollCount"])
	if len(files) != 1+refused {
		t.Fatalf("files %q, want one, and one more per refused append (%d)", files, refused)
	}
	var got strings.Builder
	for _, f := range files {
		got.Write(in.Cat(t, f))
	}
	if got.String() != want.String() {
		t.Errorf("-cat: %q, want e0…e%d", got.String(), n-1)
	}
}

func TestTheSinkWritesFileURLsThatHadoopReads(t *testing.T) {
	in := hdfstest.Get(t)
	dir := t.TempDir()
	s := hdfsSink(t, map[string]string{"hdfs.path": "file://" + dir + "/%{app}/%Y", "hdfs.fileType": "CompressedStream",
		"hdfs.codeC": "gzip", "hdfs.batchSize": "2", "hdfs.rollCount": "0", "hdfs.rollSize": "0", "hdfs.timeZone": "UTC"})
	ch := newFakeChannel(nil)
	es := stamped(6)
	for i := range es {
		es[i].Headers["app"] = []string{"a", "b"}[i%2]
	}
	ch.put(es...)
	drainHDFS(t, s, ch, nil)
	for _, app := range []string{"a", "b"} {
		files, _ := filepath.Glob(filepath.Join(dir, app, "1970", "FlumeData.*.gz"))
		if len(files) != 1 {
			t.Fatalf("%s: files %q, want one FlumeData.<n>.gz", app, files)
		}
		zr, err := gzip.NewReader(bytes.NewReader(must(os.ReadFile(files[0]))))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(zr)
		want := map[string]string{"a": "e0\ne2\ne4\n", "b": "e1\ne3\ne5\n"}[app]
		if string(got) != want {
			t.Errorf("%s: %q, want %q", app, got, want)
		}
		if text := string(in.Text(t, "file://"+files[0])); text != want {
			t.Errorf("%s: -text %q, want %q", app, text, want)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// localFiles lists dir's file names, sorted.
func localFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

func TestFilesRollByAgeIdlenessAndMaxOpenFiles(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake()
	s := hdfsSink(t, map[string]string{"hdfs.path": "file://" + dir, "hdfs.fileType": "DataStream", "hdfs.filePrefix": "%{h}",
		"hdfs.rollCount": "0", "hdfs.rollSize": "0", "hdfs.rollInterval": "60", "hdfs.idleTimeout": "20", "hdfs.maxOpenFiles": "2"})
	s.now = clk.Now
	ch := newFakeChannel(nil)
	if err := s.Start(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	put := func(h string) {
		t.Helper()
		ch.put(channel.Event{Headers: map[string]string{"h": h}, Body: []byte(h)})
		if _, err := s.Process(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	inUse := func() (n int) {
		for _, f := range localFiles(t, dir) {
			if strings.HasSuffix(f, ".tmp") {
				n++
			}
		}
		return n
	}
	put("a")
	clk.Advance(time.Second) // a written before b: the fake clock would tie them, and either could roll
	put("b")
	if n := inUse(); n != 2 {
		t.Fatalf("%d files in use, want 2", n)
	}
	put("c") // a third bucket: the least recently written (a) rolls
	if _, err := os.Stat(filepath.Join(dir, "a."+strconv.FormatInt(s.serial-2, 10))); err != nil {
		t.Fatalf("a's file not rolled at maxOpenFiles: %v (files %q)", err, localFiles(t, dir))
	}
	for range 3 { // b and c written every 15 s: idle never, age 60 s
		clk.Advance(15 * time.Second)
		put("b")
		put("c")
	}
	if n := inUse(); n != 2 {
		t.Fatalf("after 45 s of writes %d files in use, want 2 (%q)", n, localFiles(t, dir))
	}
	clk.Advance(15 * time.Second) // 60 s since b's and c's first write
	put("c")                      // rolls both, then c opens a new file
	if n := inUse(); n != 1 {
		t.Fatalf("after rollInterval %d files in use, want c's new one (%q)", n, localFiles(t, dir))
	}
	clk.Advance(20 * time.Second) // idle
	if _, err := s.Process(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := inUse(); n != 0 {
		t.Fatalf("after idleTimeout %d files in use, want 0 (%q)", n, localFiles(t, dir))
	}
	var all strings.Builder
	for _, f := range localFiles(t, dir) {
		all.Write(must(os.ReadFile(filepath.Join(dir, f))))
	}
	if got := all.Len(); got != 10*len("a\n") {
		t.Errorf("%d bytes in all files, want 10 events of 2 bytes", got)
	}
}

// failingFS fails the nth Write (counting from 1) once, after writing half.
type failingFS struct {
	hdfsFS
	n, writes int
}

func (f *failingFS) Append(p string) (hdfsFile, error) {
	w, err := f.hdfsFS.Append(p)
	return &failingFile{w, f}, err
}

func (f *failingFS) Create(p string) (hdfsFile, error) {
	w, err := f.hdfsFS.Create(p)
	return &failingFile{w, f}, err
}

type failingFile struct {
	hdfsFile
	fs *failingFS
}

func (f *failingFile) Write(p []byte) (int, error) {
	f.fs.writes++
	if f.fs.writes == f.fs.n {
		n, _ := f.hdfsFile.Write(p[:len(p)/2])
		return n, errors.New("injected: pipeline broken")
	}
	return f.hdfsFile.Write(p)
}

func TestAFailedWriteRollsBackAndLeavesEveryEventOnceInFinalFiles(t *testing.T) {
	dir := t.TempDir()
	s := hdfsSink(t, map[string]string{"hdfs.path": "file://" + dir, "hdfs.fileType": "DataStream", "hdfs.batchSize": "3",
		"hdfs.rollCount": "0", "hdfs.rollSize": "0"})
	fs := &failingFS{n: 2}
	s.openFS = func() (hdfsFS, error) { fs.hdfsFS = localFS{fs: fsutil.OS{}}; return fs, nil }
	ch := newFakeChannel(nil)
	ch.put(numbered(9)...)
	if err := s.Start(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Process(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Process(context.Background()); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("second batch: err = %v, want the injected failure", err)
	}
	if got := ch.size(); got != 6 {
		t.Fatalf("%d events in the channel after the failed batch, want 6 (rolled back)", got)
	}
	files := localFiles(t, dir)
	if len(files) != 1 || strings.HasSuffix(files[0], ".tmp") {
		t.Fatalf("files %q: want the abandoned file rolled", files)
	}
	if got := string(must(os.ReadFile(filepath.Join(dir, files[0])))); got != "e0\ne1\ne2\n" {
		t.Fatalf("abandoned file %q: want the committed batch only", got)
	}
	for {
		st, err := s.Process(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st == Backoff {
			break
		}
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, f := range localFiles(t, dir) {
		if strings.HasSuffix(f, ".tmp") {
			t.Errorf("%s still in use after Stop", f)
		}
		all.Write(must(os.ReadFile(filepath.Join(dir, f))))
	}
	var want strings.Builder
	for i := range 9 {
		fmt.Fprintf(&want, "e%d\n", i)
	}
	if all.String() != want.String() {
		t.Errorf("all files: %q, want every event once, in order", all.String())
	}
}

func TestHDFSSinkConfigurationProblems(t *testing.T) {
	base := func(kv map[string]string) map[string]string {
		m := map[string]string{"hdfs.path": "hdfs://nn:8020/x"}
		for k, v := range kv {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name string
		kv   map[string]string
		want string
	}{
		{"no path", map[string]string{}, "hdfs.path: required key is missing"},
		{"Kerberos", base(map[string]string{"hdfs.kerberosPrincipal": "flume/_HOST@X"}), "Kerberos is not supported"},
		{"a keytab", base(map[string]string{"hdfs.kerberosKeytab": "/etc/k.keytab"}), "Kerberos is not supported"},
		{"a proxy user", base(map[string]string{"hdfs.proxyUser": "etl"}), "HADOOP_USER_NAME"},
		{"lzo", base(map[string]string{"hdfs.fileType": "CompressedStream", "hdfs.codeC": "lzo"}), "refused"},
		{"lzop by its class name", base(map[string]string{"hdfs.fileType": "CompressedStream", "hdfs.codeC": "LzopCodec"}), "refused"},
		{"an unknown codec", base(map[string]string{"hdfs.fileType": "CompressedStream", "hdfs.codeC": "zstd"}), `unknown codec "zstd" (gzip, bzip2, snappy or default)`},
		{"a codec on a DataStream", base(map[string]string{"hdfs.fileType": "DataStream", "hdfs.codeC": "gzip"}), "not compressed"},
		{"CompressedStream without a codec", base(map[string]string{"hdfs.fileType": "CompressedStream"}), "required with hdfs.fileType = CompressedStream"},
		{"lzo on a SequenceFile", base(map[string]string{"hdfs.codeC": "lzo"}), "refused"},
		{"another file system", base(map[string]string{"hdfs.path": "s3a://b/x"}), "hdfs:// and file://"},
		{"an unknown static escape", base(map[string]string{"hdfs.path": "hdfs://nn/x/%[host]"}), "%[host]"},
		{"a round value past the hour", base(map[string]string{"hdfs.round": "true", "hdfs.roundValue": "61", "hdfs.roundUnit": "minute"}), "from 1 to 60"},
		{"an unknown time zone", base(map[string]string{"hdfs.timeZone": "Mars/Olympus"}), "unknown time zone"},
		{"a misspelt key", base(map[string]string{"hdfs.rollcount": "5"}), "did you mean hdfs.rollCount"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := config.FromMap("a1.sinks.k1.", tc.kv)
			_, _ = checkedSink("hdfs")("k1", c, nil)
			var msgs []string
			for _, p := range c.Problems().Errors() {
				msgs = append(msgs, p.String())
			}
			if !strings.Contains(strings.Join(msgs, "\n"), tc.want) {
				t.Fatalf("problems %v, want one mentioning %q", msgs, tc.want)
			}
		})
	}
}

// removeFailingFS fails the first Write and the first Remove: the NameNode
// not answering just as a file's first batch fails.
type removeFailingFS struct {
	failingFS
	removes int
}

func (f *removeFailingFS) Remove(p string) error {
	f.removes++
	if f.removes == 1 {
		return errors.New("injected: namenode connection dropped")
	}
	return f.failingFS.hdfsFS.Remove(p)
}

func TestAFirstBatchsFileTheNameNodeDidNotRemoveIsRemovedLater(t *testing.T) {
	dir := t.TempDir()
	s := hdfsSink(t, map[string]string{"hdfs.path": "file://" + dir, "hdfs.fileType": "DataStream", "hdfs.batchSize": "3",
		"hdfs.rollCount": "0", "hdfs.rollSize": "0"})
	fs := &removeFailingFS{failingFS: failingFS{n: 1}}
	s.openFS = func() (hdfsFS, error) { fs.hdfsFS = localFS{fs: fsutil.OS{}}; return fs, nil }
	ch := newFakeChannel(nil)
	ch.put(numbered(3)...)
	if err := s.Start(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Process(context.Background()); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("first batch: err = %v, want the injected failure", err)
	}
	// The failed batch's file, which the NameNode would not remove, is
	// still there, in use; the batch is back in the channel.
	if files := localFiles(t, dir); len(files) != 1 || !strings.HasSuffix(files[0], ".tmp") {
		t.Fatalf("files %q: want the failed batch's in-use file, not yet removed", files)
	}
	if got := ch.size(); got != 3 {
		t.Fatalf("%d events in the channel after the failed batch, want 3 (rolled back)", got)
	}
	if _, err := s.Process(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	files := localFiles(t, dir)
	if len(files) != 1 || strings.HasSuffix(files[0], ".tmp") {
		t.Fatalf("files %q after stop: want one final file, the empty in-use one removed", files)
	}
	if got := string(must(os.ReadFile(filepath.Join(dir, files[0])))); got != "e0\ne1\ne2\n" {
		t.Fatalf("final file %q: want the batch once", got)
	}
}
