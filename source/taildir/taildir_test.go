package taildir

// The taildir source follows files matching each group's pattern and puts
// every complete line as an event, with the group's static headers and,
// when asked, the file's path and the line's byte offset. A line's position
// advances only when the channel processor accepted it; a refused batch is read
// again, never skipped. A trailing line without a newline waits for it until
// the file goes idle. A line longer than maxLineLength is split into pieces or
// truncated, and counted. Unknown and invalid keys are configuration errors.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/source/internal/sourcetest"
)

func TestTaildirConfiguration(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		kv   map[string]string
		want string // a substring of the problems; "" means valid
	}{
		{"every Flume key is accepted", map[string]string{
			"filegroups": "g1 g2", "filegroups.g1": dir + "/.*\\.log", "filegroups.g2": dir + "/app.txt",
			"positionFile": dir + "/p.json", "headers.g1.topic": "a", "headers.g2.app.name": "b",
			"byteOffsetHeader": "true", "skipToEnd": "false", "idleTimeout": "1000", "writePosInterval": "100",
			"batchSize": "10", "maxBatchCount": "5", "backoffSleepIncrement": "10", "maxBackoffSleep": "20",
			"cachePatternMatching": "false", "fileHeader": "true", "fileHeaderKey": "path",
			"maxLineLength": "100", "lineOverflow": "truncate", "positionSync": "interval", "rescanInterval": "100",
		}, ""},
		{"filegroups is required", map[string]string{"positionFile": dir + "/p.json"}, "filegroups: required key is missing"},
		{"a group needs its path", map[string]string{"filegroups": "g1"}, "filegroups.g1: required key is missing"},
		{"a group configured but not listed is an error", map[string]string{"filegroups": "g1", "filegroups.g1": dir + "/a", "filegroups.g2": dir + "/b"},
			"group g2 is configured but not listed in a1.sources.r1.filegroups"},
		{"a bad pattern is reported", map[string]string{"filegroups": "g1", "filegroups.g1": dir + "/(.log"}, "file name pattern"},
		{"a misspelt key gets a suggestion", map[string]string{"filegroups": "g1", "filegroups.g1": dir + "/a", "batchSzie": "5"}, "did you mean batchSize?"},
		{"batchSize must be positive", map[string]string{"filegroups": "g1", "filegroups.g1": dir + "/a", "batchSize": "0"}, "batchSize: must be positive"},
		{"lineOverflow has two values", map[string]string{"filegroups": "g1", "filegroups.g1": dir + "/a", "lineOverflow": "drop"}, "must be one of split, truncate"},
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

func TestTaildirLines(t *testing.T) {
	t.Run("lines get the group headers, the file header and their byte offset", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "a.log")
		os.WriteFile(path, []byte("one\r\ntwo\nthree\n"), 0o644)
		src, _ := tdTaildir(t, dir, map[string]string{
			"filegroups": "g", "filegroups.g": dir + "/.*\\.log", "headers.g.topic": "t1", "headers.g.app.name": "web",
			"fileHeader": "true", "fileHeaderKey": "path", "byteOffsetHeader": "true",
		})
		p := &sourcetest.Recorder{}
		tdRun(t, src, p)
		await.True(t, "3 lines", func() bool { return p.Count() == 3 })
		wantOff := []string{"0", "5", "9"}
		for i, e := range p.Events() {
			if want := []string{"one", "two", "three"}[i]; string(e.Body) != want {
				t.Errorf("line %d: body %q, want %q", i, e.Body, want)
			}
			if e.Headers["topic"] != "t1" || e.Headers["app.name"] != "web" || e.Headers["path"] != path || e.Headers["byteoffset"] != wantOff[i] {
				t.Errorf("line %d: headers %v", i, e.Headers)
			}
		}
	})

	t.Run("a trailing partial line waits for its newline", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "a.log")
		os.WriteFile(path, []byte("done\npart"), 0o644)
		src, _ := tdTaildir(t, dir, map[string]string{"filegroups": "g", "filegroups.g": dir + "/a.log"})
		p := &sourcetest.Recorder{}
		r := tdRun(t, src, p)
		await.True(t, "first line", func() bool { return p.Count() == 1 })
		// Each poll reads the file's end again: three of them would have
		// delivered the partial line if it were going to be.
		seen := time.Now()
		await.Never(t, "the partial line delivered early", func() bool { return p.Count() > 1 },
			func() bool { return r.PolledSince(seen) >= 3 })
		f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		f.WriteString("ial\n")
		f.Close()
		await.True(t, "completed line", func() bool { return p.Count() == 2 })
		if got := p.Bodies(); got[1] != "partial" {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("a partial line is delivered when the file goes idle, and the file reopens when it grows", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "a.log")
		os.WriteFile(path, []byte("a\nno newline"), 0o644)
		src, lg := tdTaildir(t, dir, map[string]string{"filegroups": "g", "filegroups.g": dir + "/a.log", "idleTimeout": "50"})
		p := &sourcetest.Recorder{}
		tdRun(t, src, p)
		await.True(t, "idle flush", func() bool { return p.Count() == 2 })
		await.True(t, "file closed", func() bool { return strings.Contains(lg.String(), "closed idle file") })
		f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		f.WriteString("more\n")
		f.Close()
		await.True(t, "line after reopening", func() bool { return p.Count() == 3 })
		if got := p.Bodies(); strings.Join(got, "|") != "a|no newline|more" {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("a refused batch is read again, never skipped", func(t *testing.T) {
		dir := t.TempDir()
		w := newTDWriter(t, dir, "a.log", 40)
		w.write(500)
		src, _ := tdTaildir(t, dir, map[string]string{"filegroups": "g", "filegroups.g": dir + "/a.log", "batchSize": "7"})
		p := &sourcetest.Recorder{Refuse: func(call int) bool { return call%3 != 0 }}
		r := tdRun(t, src, p)
		tdSettle(t, p, r, 500)
		sourcetest.ExactlyOnce(t, p.Bodies(), 500)
		m := src.FlumeMetrics()
		if m["ChannelWriteFail"] == "0" || m["EventAcceptedCount"] != "500" {
			t.Fatalf("counters: %v", m)
		}
	})
}

func TestTaildirBatchMemory(t *testing.T) {
	t.Run("a batch of a few short lines does not pin a large buffer", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "a.log")
		os.WriteFile(path, []byte("one\ntwo\n"), 0o644)
		f, err := osFS{}.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		tf := &tailFile{f: f, rd: tailReader{buf: make([]byte, tailReadSize)}}
		var b tailBatch
		if err := tf.readBatch(&b, 100, 1<<20, false, false); err != nil {
			t.Fatal(err)
		}
		if len(b.lines) != 2 || b.reserved != 6 || cap(b.lines[1].body) != 3 {
			t.Fatalf("lines %d, reserved %d bytes for 6", len(b.lines), b.reserved)
		}
	})
}

func TestTaildirLongLines(t *testing.T) {
	long := strings.Repeat("a", 25) + "\n" + strings.Repeat("b", 10) + "\n" + strings.Repeat("c", 23)
	t.Run("split cuts a long line into pieces and counts them", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "a.log"), []byte(long+"\nend\n"), 0o644)
		src, _ := tdTaildir(t, dir, map[string]string{"filegroups": "g", "filegroups.g": dir + "/a.log", "maxLineLength": "10",
			"byteOffsetHeader": "true"})
		p := &sourcetest.Recorder{}
		tdRun(t, src, p)
		await.True(t, "pieces", func() bool { return p.Count() == 8 })
		want := "aaaaaaaaaa|aaaaaaaaaa|aaaaa|bbbbbbbbbb|cccccccccc|cccccccccc|ccc|end"
		if got := strings.Join(p.Bodies(), "|"); got != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
		if off := p.Events()[1].Headers["byteoffset"]; off != "10" {
			t.Errorf("second piece starts at %s, want 10", off)
		}
		if n := src.FlumeMetrics()["LongLineSplitCount"]; n != "4" {
			t.Errorf("LongLineSplitCount = %s, want 4", n)
		}
	})
	t.Run("truncate keeps the start of a long line and skips the rest, even across reads", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "a.log")
		os.WriteFile(path, []byte(long), 0o644)
		src, _ := tdTaildir(t, dir, map[string]string{"filegroups": "g", "filegroups.g": dir + "/a.log", "maxLineLength": "10",
			"lineOverflow": "truncate"})
		p := &sourcetest.Recorder{}
		tdRun(t, src, p)
		await.True(t, "two lines", func() bool { return p.Count() == 2 })
		f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		f.WriteString(strings.Repeat("c", 100) + "\nend\n")
		f.Close()
		await.True(t, "four lines", func() bool { return p.Count() == 4 })
		if got := strings.Join(p.Bodies(), "|"); got != "aaaaaaaaaa|bbbbbbbbbb|cccccccccc|end" {
			t.Fatalf("got %s", got)
		}
		if n := src.FlumeMetrics()["LongLineTruncatedCount"]; n != "2" {
			t.Errorf("LongLineTruncatedCount = %s, want 2", n)
		}
	})
}

func TestTaildirFiles(t *testing.T) {
	t.Run("many files in one group are all read while being written", func(t *testing.T) {
		dir := t.TempDir()
		var ws []*tdWriter
		for i := range 8 {
			ws = append(ws, newTDWriter(t, dir, "f"+string(rune('a'+i))+".log", 60))
		}
		src, _ := tdTaildir(t, dir, map[string]string{"filegroups": "g", "filegroups.g": dir + "/f.\\.log", "batchSize": "13",
			"fileHeader": "true"})
		p := &sourcetest.Recorder{}
		r := tdRun(t, src, p)
		for range 20 {
			for _, w := range ws {
				w.write(7)
			}
		}
		tdSettle(t, p, r, 8*140)
		byFile := map[string][]string{}
		for _, e := range p.Events() {
			byFile[e.Headers["file"]] = append(byFile[e.Headers["file"]], string(e.Body))
		}
		if len(byFile) != 8 {
			t.Fatalf("lines from %d files, want 8", len(byFile))
		}
		for _, w := range ws {
			sourcetest.ExactlyOnce(t, byFile[w.path()], 140)
		}
	})

	t.Run("a file appearing after start is read from its beginning", func(t *testing.T) {
		dir := t.TempDir()
		src, _ := tdTaildir(t, dir, map[string]string{"filegroups": "g", "filegroups.g": dir + "/.*\\.log"})
		p := &sourcetest.Recorder{}
		r := tdRun(t, src, p)
		await.True(t, "the source to have polled an empty directory", func() bool { return r.PolledSince(time.Time{}) >= 1 })
		w := newTDWriter(t, dir, "late.log", 50)
		for range 10 {
			w.write(50)
		}
		tdSettle(t, p, r, 500)
		sourcetest.ExactlyOnce(t, p.Bodies(), 500)
	})

	t.Run("skipToEnd starts files without a position at their end", func(t *testing.T) {
		dir := t.TempDir()
		w := newTDWriter(t, dir, "a.log", 30)
		w.write(100)
		src, _ := tdTaildir(t, dir, map[string]string{"filegroups": "g", "filegroups.g": dir + "/a.log", "skipToEnd": "true"})
		p := &sourcetest.Recorder{}
		r := tdRun(t, src, p)
		w.write(5)
		tdSettle(t, p, r, 5)
		if got := p.Bodies(); len(got) != 5 || !strings.HasPrefix(got[0], "seq=0000100") {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("maxBatchCount moves on to the next file", func(t *testing.T) {
		dir := t.TempDir()
		a, b := newTDWriter(t, dir, "a.log", 30), newTDWriter(t, dir, "b.log", 30)
		a.write(100)
		b.write(100)
		src, _ := tdTaildir(t, dir, map[string]string{"filegroups": "g", "filegroups.g": dir + "/.\\.log",
			"batchSize": "10", "maxBatchCount": "2", "fileHeader": "true"})
		p := &sourcetest.Recorder{}
		r := tdRun(t, src, p)
		tdSettle(t, p, r, 200)
		// Two batches of 10 from one file, then two from the other, and so on.
		evs := p.Events()
		for i := 20; i < len(evs); i++ {
			same := evs[i].Headers["file"] == evs[i-1].Headers["file"]
			if want := i%20 != 0; same != want {
				t.Fatalf("line %d: same file as the line before = %v, want %v", i, same, want)
			}
		}
		sourcetest.ExactlyOnce(t, tdBodiesOf(evs, a.path()), 100)
		sourcetest.ExactlyOnce(t, tdBodiesOf(evs, b.path()), 100)
	})
}

func tdBodiesOf(evs []channel.Event, file string) []string {
	var out []string
	for _, e := range evs {
		if e.Headers["file"] == file {
			out = append(out, string(e.Body))
		}
	}
	return out
}
