package sink

// The file_roll sink (FLUME.md §2.11) appends each event's body (plus "\n"
// with appendNewline) to the current file of sink.directory and starts a new
// file every sink.rollInterval seconds (0: never). Each batch is written and
// fsynced before its take commits; a failed write or fsync rolls the take back,
// abandons that file and writes the batch again to a new one, so nothing
// committed is ever missing. Files are named <prefix><startMillis>-<n>[.<ext>]
// (DEFAULT) or <prefix><yyyyMMddHHmmss>-<n>[.<ext>] (ROLLTIME), never
// overwrite an existing file, and are only created when there is data.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/config"
)

// tracedFile records writes and syncs in the shared trace and can fail them.
type tracedFile struct {
	f         *os.File
	tr        *trace
	failWrite bool // write half the bytes, then fail
	failSync  bool
}

func (t *tracedFile) Write(p []byte) (int, error) {
	if t.failWrite {
		n, _ := t.f.Write(p[:len(p)/2])
		t.tr.add("write failed")
		return n, errors.New("no space left on device")
	}
	t.tr.add("write %d", len(p))
	return t.f.Write(p)
}

func (t *tracedFile) Sync() error {
	if t.failSync {
		t.tr.add("sync failed")
		return errors.New("input/output error")
	}
	t.tr.add("sync")
	return t.f.Sync()
}

func (t *tracedFile) Close() error { return t.f.Close() }

type rollFixture struct {
	t     *testing.T
	dir   string
	tr    *trace
	ch    *fakeChannel
	clock *fakeClock
	s     *FileRoll
	files []*tracedFile // every file opened, in order
}

func newRollFixture(t *testing.T, opts FileRollOptions) *rollFixture {
	t.Helper()
	fx := &rollFixture{t: t, dir: t.TempDir(), tr: &trace{}, clock: newFakeClock()}
	if opts.Directory == "" {
		opts.Directory = fx.dir
	}
	fx.dir = opts.Directory
	fx.ch = newFakeChannel(fx.tr)
	fx.s = NewFileRoll("k1", opts, nil)
	fx.s.now = fx.clock.Now
	fx.s.openFile = func(path string) (rollFile, error) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return nil, err
		}
		fx.tr.add("open %s", filepath.Base(path))
		tf := &tracedFile{f: f, tr: fx.tr}
		fx.files = append(fx.files, tf)
		return tf, nil
	}
	if err := fx.s.Start(context.Background(), fx.ch); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fx.s.Stop() })
	return fx
}

func (fx *rollFixture) process(want Status) {
	fx.t.Helper()
	if st, err := fx.s.Process(context.Background()); st != want || err != nil {
		fx.t.Fatalf("process = %v, %v; want %v", st, err, want)
	}
}

// contents maps file names in the directory to their contents.
func (fx *rollFixture) contents() map[string]string {
	fx.t.Helper()
	entries, err := os.ReadDir(fx.dir)
	if err != nil {
		fx.t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(fx.dir, e.Name()))
		if err != nil {
			fx.t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func (fx *rollFixture) series() string { return strconv.FormatInt(fx.clock.Now().UnixMilli(), 10) }

func TestFileRollWritesExactlyTheBodies(t *testing.T) {
	fx := newRollFixture(t, FileRollOptions{AppendNewline: true})
	series := fx.series()
	fx.ch.put(bodyEvents("first", "", "third line")...)
	fx.process(Ready)
	fx.process(Backoff)
	want := map[string]string{series + "-1": "first\n\nthird line\n"}
	if got := fx.contents(); !mapsEqual(got, want) {
		t.Fatalf("files = %q, want %q", got, want)
	}
	_ = fx.s.Stop()
	m := fx.s.FlumeMetrics()
	for k, v := range map[string]string{
		"Type": "SINK", "ConnectionCreatedCount": "1", "ConnectionClosedCount": "1",
		"EventDrainAttemptCount": "3", "EventDrainSuccessCount": "3", "BatchUnderflowCount": "1", "BatchEmptyCount": "1",
	} {
		if m[k] != v {
			t.Errorf("%s = %s, want %s", k, m[k], v)
		}
	}
}

func TestFileRollWithoutNewlineConcatenatesBodies(t *testing.T) {
	fx := newRollFixture(t, FileRollOptions{AppendNewline: false, Prefix: "out-", Extension: "bin"})
	fx.ch.put(bodyEvents("ab", "cd")...)
	fx.process(Ready)
	want := map[string]string{"out-" + fx.series() + "-1.bin": "abcd"}
	if got := fx.contents(); !mapsEqual(got, want) {
		t.Fatalf("files = %q, want %q", got, want)
	}
}

func TestFileRollFsyncsBeforeTheTakeCommits(t *testing.T) {
	fx := newRollFixture(t, FileRollOptions{AppendNewline: true})
	fx.ch.put(bodyEvents("a", "b", "c")...)
	fx.process(Ready)
	want := []string{"take 3", "open " + fx.series() + "-1", "write 6", "sync", "commit"}
	if got := fx.tr.list(); !slices.Equal(got, want) {
		t.Fatalf("ops = %v, want %v", got, want)
	}
}

func TestFileRollRollsOnTheInterval(t *testing.T) {
	fx := newRollFixture(t, FileRollOptions{AppendNewline: true, RollInterval: 30 * time.Second})
	series := fx.series()
	fx.ch.put(bodyEvents("1")...)
	fx.process(Ready)
	fx.clock.Advance(29 * time.Second)
	fx.ch.put(bodyEvents("2")...)
	fx.process(Ready) // same file: not 30 s old yet
	fx.clock.Advance(time.Second)
	fx.process(Backoff) // rolls the idle file; no empty file is created
	if fx.s.counter.ConnectionClosed.Load() != 1 || len(fx.contents()) != 1 {
		t.Fatalf("after the roll: closed %d, files %q", fx.s.counter.ConnectionClosed.Load(), fx.contents())
	}
	fx.ch.put(bodyEvents("3")...)
	fx.process(Ready)
	want := map[string]string{series + "-1": "1\n2\n", series + "-2": "3\n"}
	if got := fx.contents(); !mapsEqual(got, want) {
		t.Fatalf("files = %q, want %q", got, want)
	}
}

func TestFileRollIntervalZeroNeverRolls(t *testing.T) {
	fx := newRollFixture(t, FileRollOptions{AppendNewline: true, RollInterval: 0})
	for i := range 3 {
		fx.ch.put(bodyEvents(strconv.Itoa(i))...)
		fx.process(Ready)
		fx.clock.Advance(24 * time.Hour)
	}
	want := map[string]string{fx.s.path[len(fx.dir)+1:]: "0\n1\n2\n"}
	if got := fx.contents(); !mapsEqual(got, want) {
		t.Fatalf("files = %q, want %q", got, want)
	}
}

func TestFileRollRollTimeNames(t *testing.T) {
	fx := newRollFixture(t, FileRollOptions{AppendNewline: true, RollInterval: time.Second, PathManager: "ROLLTIME", Prefix: "app-", Extension: "log"})
	write := func(body string) {
		fx.ch.put(bodyEvents(body)...)
		fx.process(Ready)
		fx.s.closeFile()
	}
	write("a")                    // 2024-01-02 03:04:05, first file of that second
	write("b")                    // same second: -2
	fx.clock.Advance(time.Second) // a new second restarts the count
	write("c")
	want := map[string]string{"app-20240102030405-1.log": "a\n", "app-20240102030405-2.log": "b\n", "app-20240102030406-1.log": "c\n"}
	if got := fx.contents(); !mapsEqual(got, want) {
		t.Fatalf("files = %q, want %q", got, want)
	}
}

func TestFileRollNeverOverwritesAnExistingFile(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	existing := filepath.Join(dir, strconv.FormatInt(clock.Now().UnixMilli(), 10)+"-1")
	if err := os.WriteFile(existing, []byte("older data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fx := newRollFixture(t, FileRollOptions{Directory: dir, AppendNewline: true})
	fx.ch.put(bodyEvents("new")...)
	fx.process(Ready)
	want := map[string]string{fx.series() + "-1": "older data\n", fx.series() + "-2": "new\n"}
	if got := fx.contents(); !mapsEqual(got, want) {
		t.Fatalf("files = %q, want %q", got, want)
	}
}

func TestFileRollWriteOrSyncFailureLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inject func(*tracedFile)
	}{
		{"write fails halfway", func(f *tracedFile) { f.failWrite = true }},
		{"fsync fails", func(f *tracedFile) { f.failSync = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newRollFixture(t, FileRollOptions{AppendNewline: true})
			fx.ch.put(bodyEvents("a")...)
			fx.process(Ready) // opens file -1
			tc.inject(fx.files[0])
			fx.ch.put(bodyEvents("b", "c", "d")...)
			if st, err := fx.s.Process(context.Background()); st != Backoff || err == nil {
				t.Fatalf("process = %v, %v; want an error", st, err)
			}
			if got := fx.ch.bodies(); !slices.Equal(got, []string{"b", "c", "d"}) {
				t.Fatalf("channel = %v, want the batch rolled back in order", got)
			}
			if fx.s.counter.EventWriteFail.Load() != 1 {
				t.Fatalf("EventWriteFail = %d, want 1", fx.s.counter.EventWriteFail.Load())
			}
			// The broken file is abandoned; the batch goes whole to a new file.
			fx.process(Ready)
			got := fx.contents()
			if f2 := got[fx.series()+"-2"]; f2 != "b\nc\nd\n" {
				t.Fatalf("files = %q, want the whole batch in -2", got)
			}
			if f1 := got[fx.series()+"-1"]; !strings.HasPrefix(f1, "a\n") {
				t.Fatalf("file -1 = %q, want the committed batch kept", f1)
			}
			if fx.s.counter.EventDrainSuccess.Load() != 4 {
				t.Fatalf("EventDrainSuccess = %d, want 4", fx.s.counter.EventDrainSuccess.Load())
			}
		})
	}
}

func TestFileRollStartCreatesTheDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s := NewFileRoll("k1", FileRollOptions{Directory: dir}, nil)
	if err := s.Start(context.Background(), newFakeChannel(nil)); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("directory not created: %v", err)
	}
}

func TestFileRollConfig(t *testing.T) {
	f, ok := Lookup("org.apache.flume.sink.RollingFileSink")
	if !ok {
		t.Fatal("file_roll class name not registered")
	}
	c := config.FromMap("a1.sinks.k1.", map[string]string{
		"sink.directory":                "/var/flume/out",
		"sink.rollInterval":             "0",
		"sink.batchSize":                "500",
		"sink.serializer":               "text",
		"sink.serializer.appendNewline": "false",
		"sink.pathManager":              "rolltime",
		"sink.pathManager.prefix":       "web-",
		"sink.pathManager.extension":    "txt",
	})
	s, _ := f("k1", c, nil)
	c.Finish()
	if err := c.Problems().Err(); err != nil {
		t.Fatal(err)
	}
	want := FileRollOptions{Directory: "/var/flume/out", RollInterval: 0, BatchSize: 500, AppendNewline: false,
		PathManager: "rolltime", Prefix: "web-", Extension: "txt"}
	if got := s.(*FileRoll).opts; got != want {
		t.Fatalf("options = %+v, want %+v", got, want)
	}

	c = config.FromMap("a1.sinks.k1.", map[string]string{"sink.directory": "/d"})
	s, _ = f("k1", c, nil)
	if o := s.(*FileRoll).opts; o.RollInterval != 30*time.Second || o.BatchSize != 100 || !o.AppendNewline || o.PathManager != "default" {
		t.Fatalf("defaults = %+v", o)
	}

	c = config.FromMap("a1.sinks.k1.", map[string]string{
		"sink.serializer":   "avro_event",
		"sink.pathManager":  "rolltme",
		"sink.rollInterval": "-5",
	})
	f("k1", c, nil)
	c.Finish()
	var got []string
	for _, p := range c.Problems().Errors() {
		got = append(got, p.String())
	}
	wantErrs := []string{
		`<inline>:1: a1.sinks.k1.sink.directory: required key is missing`,
		`<inline>:1: a1.sinks.k1.sink.pathManager: must be one of default, rolltime, not "rolltme" (did you mean rolltime?)`,
		`<inline>:2: a1.sinks.k1.sink.rollInterval: must be 0 (never roll) or a number of seconds, not -5`,
		`<inline>:3: a1.sinks.k1.sink.serializer: avro_event is not supported by flumed (use TEXT)`,
	}
	if !slices.Equal(got, wantErrs) {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantErrs, "\n"))
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
