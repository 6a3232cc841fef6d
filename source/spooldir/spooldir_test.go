package spooldir

// The spooling directory source reads each complete file of spoolDir once,
// line by line, oldest first (or youngest, or random), then renames it with
// fileSuffix, records it in trackerDir, or deletes it. A refused batch is read
// again; a crash resumes at the last committed line. A file that changed after
// pickup, or that cannot be decoded under decodeErrorPolicy=FAIL, is reported
// and skipped while the others go on (Flume stops the source). Lines longer
// than deserializer.maxLineLength characters are split, as Flume's
// LineDeserializer does; '\r' stays in the body.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/source/internal/sourcetest"
	"github.com/flumed/flumed/source/sourceapi"
)

// tdSpool builds a spooling directory source over dir.
func tdSpool(t *testing.T, dir string, kv map[string]string) (*Source, *sourcetest.Log) {
	t.Helper()
	full := map[string]string{"spoolDir": dir, "pollDelay": "5"}
	for k, v := range kv {
		full[k] = v
	}
	c := config.FromMap("a1.sources.r1.", full)
	lg := &sourcetest.Log{}
	c.Check(Spec)
	src, err := New("r1", c, lg.Logger())
	if err != nil || len(c.Problems().Errors()) > 0 {
		t.Fatalf("configure spooldir: %v %v", err, c.Problems().Errors())
	}
	lg.ShowOnFailure(t)
	return src.(*Source), lg
}

// tdSpoolFile writes n numbered lines into dir/name with the given mtime
// offset (so consumeOrder has something to order).
func tdSpoolFile(t *testing.T, dir, name string, from, n int, age time.Duration) string {
	t.Helper()
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "seq=%07d gen=000 %s\n", i, name)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	mt := time.Now().Add(-age)
	os.Chtimes(path, mt, mt)
	return path
}

func tdExists(path string) bool { _, err := os.Stat(path); return err == nil }

// tdRun starts src and polls it as the runner would, backing off only 2 ms.
func tdRun(t *testing.T, src sourceapi.Pollable, p sourceapi.BatchPutter) *sourcetest.Poller {
	t.Helper()
	return sourcetest.Run(t, src, p)
}

// tdSettle waits until n lines arrived, then proves no more arrive while
// the source goes on polling for another 150 ms.
func tdSettle(t *testing.T, p *sourcetest.Recorder, r *sourcetest.Poller, n int) {
	t.Helper()
	sourcetest.Settle(t, p, n, r, 150*time.Millisecond)
}

func TestSpoolDirConfiguration(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		kv   map[string]string
		want string
	}{
		{"every key that applies is accepted", map[string]string{"spoolDir": dir, "fileSuffix": ".DONE",
			"deletePolicy": "never", "fileHeader": "true", "fileHeaderKey": "f", "basenameHeader": "true",
			"basenameHeaderKey": "b", "includePattern": ".*", "ignorePattern": "^x", "trackerDir": "/tmp/t",
			"trackingPolicy": "tracker_dir", "consumeOrder": "random", "pollDelay": "100",
			"recursiveDirectorySearch": "true", "maxBackoff": "1000", "batchSize": "5", "inputCharset": "ISO-8859-1",
			"decodeErrorPolicy": "REPLACE", "deserializer": "LINE", "deserializer.maxLineLength": "10",
			"deserializer.outputCharset": "UTF-8"}, ""},
		{"spoolDir is required", map[string]string{"batchSize": "5"}, "spoolDir: required key is missing"},
		{"other charsets are refused", map[string]string{"spoolDir": dir, "inputCharset": "Shift_JIS"}, "UTF-8, US-ASCII and ISO-8859-1 only"},
		{"other deserializers are refused", map[string]string{"spoolDir": dir, "deserializer": "AVRO"}, "LINE deserializer only"},
		{"a misspelt key gets a suggestion", map[string]string{"spoolDir": dir, "fileSufix": ".X"}, "did you mean fileSuffix?"},
		{"consumeOrder has three values", map[string]string{"spoolDir": dir, "consumeOrder": "newest"}, "must be one of oldest, youngest, random"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := config.FromMap("a1.sources.r1.", tc.kv)
			c.Check(Spec)
			_, err := New("r1", c, (&sourcetest.Log{}).Logger())
			msgs := sourcetest.Problems(c)
			all := strings.Join(msgs, "\n")
			if tc.want == "" {
				if err != nil || len(msgs) > 0 {
					t.Fatalf("want valid, got %v: %s", err, all)
				}
				return
			}
			if !strings.Contains(all, tc.want) {
				t.Fatalf("want a problem containing %q, got %q", tc.want, all)
			}
		})
	}
}

func TestSpoolDir(t *testing.T) {
	t.Run("files are read oldest first with their headers and renamed with the suffix", func(t *testing.T) {
		dir := t.TempDir()
		b := tdSpoolFile(t, dir, "b.log", 100, 100, time.Minute)
		a := tdSpoolFile(t, dir, "a.log", 0, 100, 2*time.Minute)
		tdSpoolFile(t, dir, ".hidden", 500, 1, 0)
		src, _ := tdSpool(t, dir, map[string]string{"fileHeader": "true", "basenameHeader": "true", "batchSize": "7"})
		p := &sourcetest.Recorder{}
		r := tdRun(t, src, p)
		tdSettle(t, p, r, 200)
		sourcetest.ExactlyOnce(t, p.Bodies(), 200) // in order: a before b
		evs := p.Events()
		if evs[0].Headers["file"] != a || evs[0].Headers["basename"] != "a.log" || evs[199].Headers["file"] != b {
			t.Errorf("headers: %v ... %v", evs[0].Headers, evs[199].Headers)
		}
		await.True(t, "both completed", func() bool { return tdExists(a+".COMPLETED") && tdExists(b+".COMPLETED") })
		if tdExists(a) || tdExists(b) || !tdExists(filepath.Join(dir, ".hidden")) {
			t.Errorf("files left: %v %v; hidden file touched", tdExists(a), tdExists(b))
		}
	})

	t.Run("consumeOrder=youngest reads the newest file first", func(t *testing.T) {
		dir := t.TempDir()
		tdSpoolFile(t, dir, "old.log", 10, 10, 2*time.Minute)
		tdSpoolFile(t, dir, "new.log", 0, 10, time.Minute)
		src, _ := tdSpool(t, dir, map[string]string{"consumeOrder": "youngest"})
		p := &sourcetest.Recorder{}
		r := tdRun(t, src, p)
		tdSettle(t, p, r, 20)
		sourcetest.ExactlyOnce(t, p.Bodies(), 20)
	})

	t.Run("deletePolicy=immediate removes a file once read", func(t *testing.T) {
		dir := t.TempDir()
		a := tdSpoolFile(t, dir, "a.log", 0, 50, 0)
		src, _ := tdSpool(t, dir, map[string]string{"deletePolicy": "immediate"})
		p := &sourcetest.Recorder{}
		r := tdRun(t, src, p)
		tdSettle(t, p, r, 50)
		await.True(t, "removal", func() bool { return !tdExists(a) })
		if tdExists(a + ".COMPLETED") {
			t.Error("deleted file was also renamed")
		}
	})

	t.Run("trackingPolicy=tracker_dir leaves files in place; a name reused for new content is read", func(t *testing.T) {
		dir := t.TempDir()
		a := tdSpoolFile(t, dir, "a.log", 0, 50, 0)
		kv := map[string]string{"trackingPolicy": "tracker_dir"}
		src, _ := tdSpool(t, dir, kv)
		p := &sourcetest.Recorder{}
		r := tdRun(t, src, p)
		tdSettle(t, p, r, 50)
		r.Stop()
		if !tdExists(a) || !tdExists(filepath.Join(dir, ".flumespool", "a.log.COMPLETED")) {
			t.Fatal("file moved or not recorded")
		}
		os.Remove(a)
		tdSpoolFile(t, dir, "a.log", 50, 20, 0)
		src2, _ := tdSpool(t, dir, kv)
		p2 := &sourcetest.Recorder{}
		r2 := tdRun(t, src2, p2)
		tdSettle(t, p2, r2, 20)
		sourcetest.ExactlyOnce(t, append(p.Bodies(), p2.Bodies()...), 70)
	})

	t.Run("a refused batch is read again after the backoff", func(t *testing.T) {
		dir := t.TempDir()
		tdSpoolFile(t, dir, "a.log", 0, 100, 0)
		src, _ := tdSpool(t, dir, map[string]string{"batchSize": "10", "maxBackoff": "20"})
		p := &sourcetest.Recorder{Refuse: func(call int) bool { return call%2 == 0 }}
		r := tdRun(t, src, p)
		tdSettle(t, p, r, 100)
		sourcetest.ExactlyOnce(t, p.Bodies(), 100)
		if src.FlumeMetrics()["ChannelWriteFail"] == "0" {
			t.Error("refusals not counted")
		}
	})

	t.Run("a crash mid-file resumes at the last committed line", func(t *testing.T) {
		dir := t.TempDir()
		tdSpoolFile(t, dir, "a.log", 0, 1000, 0)
		var all []string
		for run := range 20 {
			src, _ := tdSpool(t, dir, map[string]string{"batchSize": "10"})
			p := &sourcetest.Recorder{}
			r := tdRun(t, src, p)
			// Crash after a few batches, a different number each run.
			after := 10 * (1 + run%4)
			await.True(t, fmt.Sprintf("%d lines before the crash", after), func() bool {
				return p.Count() >= after || tdExists(filepath.Join(dir, "a.log.COMPLETED"))
			})
			src.abandon()
			r.Stop()
			all = append(all, p.Bodies()...)
			if tdExists(filepath.Join(dir, "a.log.COMPLETED")) {
				break
			}
		}
		src, _ := tdSpool(t, dir, map[string]string{"batchSize": "10"})
		p := &sourcetest.Recorder{}
		tdRun(t, src, p)
		await.True(t, "completion", func() bool { return tdExists(filepath.Join(dir, "a.log.COMPLETED")) })
		all = append(all, p.Bodies()...)
		sourcetest.ExactlyOnce(t, all, 1000)
	})

	t.Run("a file changed after pickup is reported and skipped; the others are read", func(t *testing.T) {
		dir := t.TempDir()
		a := tdSpoolFile(t, dir, "a.log", 0, 100, 2*time.Minute)
		tdSpoolFile(t, dir, "b.log", 100, 100, time.Minute)
		src, lg := tdSpool(t, dir, map[string]string{"batchSize": "10"})
		first, grown := make(chan struct{}), make(chan struct{})
		p := &sourcetest.Recorder{During: func(call int) {
			if call == 1 { // a.log grows while its first batch is put
				close(first)
				<-grown
			}
		}}
		tdRun(t, src, p)
		await.Done(t, "the first batch", first)
		f, _ := os.OpenFile(a, os.O_WRONLY|os.O_APPEND, 0)
		f.WriteString("appended later\n")
		f.Close()
		close(grown)
		await.True(t, "b completed", func() bool { return tdExists(filepath.Join(dir, "b.log.COMPLETED")) })
		if tdExists(a + ".COMPLETED") {
			t.Fatal("the changed file was completed")
		}
		if !strings.Contains(lg.String(), "skipping file") || !strings.Contains(lg.String(), "changed after pickup") {
			t.Errorf("not reported:\n%s", lg)
		}
		if got := src.FlumeMetrics()["GenericProcessingFail"]; got != "1" {
			t.Errorf("GenericProcessingFail = %s", got)
		}
		got := p.Bodies()
		if len(got) < 110 || !strings.Contains(strings.Join(got, "\n"), "seq=0000199") {
			t.Fatalf("b.log not read: %d lines", len(got))
		}
	})

	t.Run("a file skipped stays skipped after a restart until it is replaced", func(t *testing.T) {
		dir := t.TempDir()
		a := filepath.Join(dir, "a.log")
		os.WriteFile(a, []byte("ok\n\xff\xfe bad\n"), 0o644)
		src, lg := tdSpool(t, dir, nil)
		p := &sourcetest.Recorder{}
		r := tdRun(t, src, p)
		await.True(t, "the good line", func() bool { return p.Count() == 1 })
		await.True(t, "the bad line to skip the file", func() bool { return strings.Contains(lg.String(), "skipping file") })
		r.Stop()
		src2, _ := tdSpool(t, dir, nil)
		p2 := &sourcetest.Recorder{}
		started := time.Now()
		r2 := tdRun(t, src2, p2)
		// Every poll lists the directory: three would have read the file.
		await.Never(t, "the skipped file read again", func() bool { return p2.Count() > 0 },
			func() bool { return r2.PolledSince(started) >= 3 })
		r2.Stop()
		os.WriteFile(a+".new", []byte("fixed\n"), 0o644) // a new inode, whatever the file system reuses
		os.Rename(a+".new", a)
		src3, _ := tdSpool(t, dir, nil)
		p3 := &sourcetest.Recorder{}
		tdRun(t, src3, p3)
		await.True(t, "the replaced file", func() bool { return p3.Count() == 1 })
	})

	t.Run("decodeErrorPolicy decides what a malformed byte does", func(t *testing.T) {
		for policy, want := range map[string]string{"FAIL": "ok", "REPLACE": "ok|a\uFFFDb|end", "IGNORE": "ok|ab|end"} {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "a.log"), []byte("ok\na\xffb\nend\n"), 0o644)
			src, _ := tdSpool(t, dir, map[string]string{"decodeErrorPolicy": policy})
			p := &sourcetest.Recorder{}
			r := tdRun(t, src, p)
			n := strings.Count(want, "|") + 1
			tdSettle(t, p, r, n)
			r.Stop()
			if got := strings.Join(p.Bodies(), "|"); got != want {
				t.Errorf("%s: got %q, want %q", policy, got, want)
			}
		}
	})

	t.Run("ISO-8859-1 input becomes UTF-8 bodies", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "a.log"), []byte("caf\xe9\n"), 0o644)
		src, _ := tdSpool(t, dir, map[string]string{"inputCharset": "ISO-8859-1"})
		p := &sourcetest.Recorder{}
		r := tdRun(t, src, p)
		tdSettle(t, p, r, 1)
		if got := p.Bodies()[0]; got != "café" {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("long lines are split at maxLineLength characters and \\r is kept, as Flume", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "a.log"), []byte("ééééé12345xyz\r\n0123456789\nlast"), 0o644)
		src, _ := tdSpool(t, dir, map[string]string{"deserializer.maxLineLength": "10"})
		p := &sourcetest.Recorder{}
		r := tdRun(t, src, p)
		tdSettle(t, p, r, 4)
		if got := strings.Join(p.Bodies(), "|"); got != "ééééé12345|xyz\r|0123456789|last" {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("recursiveDirectorySearch reads subdirectories but not hidden ones or the tracker", func(t *testing.T) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "sub", "deeper"), 0o755)
		os.MkdirAll(filepath.Join(dir, ".hid"), 0o755)
		tdSpoolFile(t, dir, "sub/x.log", 0, 5, 0)
		tdSpoolFile(t, dir, "sub/deeper/y.log", 5, 5, 0)
		tdSpoolFile(t, dir, ".hid/z.log", 10, 5, 0)
		src, _ := tdSpool(t, dir, map[string]string{"recursiveDirectorySearch": "true"})
		p := &sourcetest.Recorder{}
		r := tdRun(t, src, p)
		tdSettle(t, p, r, 10)
		if p.Count() != 10 {
			t.Fatalf("got %d lines", p.Count())
		}
	})

	t.Run("ignorePattern wins over includePattern", func(t *testing.T) {
		dir := t.TempDir()
		tdSpoolFile(t, dir, "a.log", 0, 5, 0)
		tdSpoolFile(t, dir, "a.tmp", 5, 5, 0)
		tdSpoolFile(t, dir, "skip.log", 10, 5, 0)
		src, _ := tdSpool(t, dir, map[string]string{"includePattern": `.*\.log`, "ignorePattern": "^skip"})
		p := &sourcetest.Recorder{}
		r := tdRun(t, src, p)
		tdSettle(t, p, r, 5)
		sourcetest.ExactlyOnce(t, p.Bodies(), 5)
	})

	t.Run("a reused name is completed under a free name; the same content is removed", func(t *testing.T) {
		dir := t.TempDir()
		a := tdSpoolFile(t, dir, "a.log", 0, 5, 0)
		os.WriteFile(a+".COMPLETED", []byte("other\n"), 0o644)
		src, lg := tdSpool(t, dir, nil)
		p := &sourcetest.Recorder{}
		r := tdRun(t, src, p)
		await.True(t, "completion", func() bool { return tdExists(a + ".1.COMPLETED") })
		r.Stop()
		if !strings.Contains(lg.String(), "file name was reused") {
			t.Errorf("not logged:\n%s", lg)
		}
		// Now the same content arrives again under the same name.
		tdSpoolFile(t, dir, "a.log", 0, 5, 0)
		os.Rename(a+".1.COMPLETED", a+".COMPLETED")
		src2, _ := tdSpool(t, dir, nil)
		tdRun(t, src2, &sourcetest.Recorder{})
		await.True(t, "removal", func() bool { return !tdExists(a) })
		if tdExists(a + ".1.COMPLETED") {
			t.Error("identical file completed under a new name")
		}
	})

	t.Run("a second source on the same directory fails to start", func(t *testing.T) {
		dir := t.TempDir()
		src, _ := tdSpool(t, dir, nil)
		tdRun(t, src, &sourcetest.Recorder{})
		src2, _ := tdSpool(t, dir, nil)
		if err := src2.Start(t.Context(), &sourcetest.Recorder{}); err == nil {
			src2.Stop()
			t.Fatal("second source started")
		}
	})
}
