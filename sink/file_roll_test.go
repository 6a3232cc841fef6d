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
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/clock"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/fsutil"
)

// tracingFS records file opens, writes and syncs in the shared trace.
type tracingFS struct {
	fsutil.FS
	tr *trace
}

func (t tracingFS) OpenFile(name string, flag int, perm os.FileMode) (fsutil.File, error) {
	f, err := t.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	t.tr.add("open %s", filepath.Base(name))
	return tracedFile{f, t.tr}, nil
}

type tracedFile struct {
	fsutil.File
	tr *trace
}

func (t tracedFile) Write(p []byte) (int, error) {
	n, err := t.File.Write(p)
	t.tr.add("write %d", n)
	return n, err
}

func (t tracedFile) Sync() error {
	err := t.File.Sync()
	t.tr.add("sync")
	return err
}

type rollFixture struct {
	t      *testing.T
	dir    string
	tr     *trace
	ch     *fakeChannel
	clock  *clock.Fake
	faults *fsutil.Faulty // above the real disk, below the sink
	s      *FileRoll
}

func newRollFixture(t *testing.T, opts FileRollOptions) *rollFixture {
	t.Helper()
	fx := &rollFixture{t: t, dir: t.TempDir(), tr: &trace{}, clock: clock.NewFake()}
	if opts.Directory == "" {
		opts.Directory = fx.dir
	}
	fx.dir = opts.Directory
	fx.ch = newFakeChannel(fx.tr)
	fx.s = NewFileRoll("k1", opts, nil)
	fx.s.now = fx.clock.Now
	// The trace sits under the faults, so it shows what reached the disk.
	fx.faults = fsutil.NewFaulty(tracingFS{fsutil.OS{}, fx.tr})
	fx.s.fsys = fx.faults
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
	fx := newRollFixture(t, FileRollOptions{Serializer: SerializerOptions{AppendNewline: true}})
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
	fx := newRollFixture(t, FileRollOptions{Serializer: SerializerOptions{AppendNewline: false}, Prefix: "out-", Extension: "bin"})
	fx.ch.put(bodyEvents("ab", "cd")...)
	fx.process(Ready)
	want := map[string]string{"out-" + fx.series() + "-1.bin": "abcd"}
	if got := fx.contents(); !mapsEqual(got, want) {
		t.Fatalf("files = %q, want %q", got, want)
	}
}

func TestFileRollFsyncsBeforeTheTakeCommits(t *testing.T) {
	fx := newRollFixture(t, FileRollOptions{Serializer: SerializerOptions{AppendNewline: true}})
	fx.ch.put(bodyEvents("a", "b", "c")...)
	fx.process(Ready)
	want := []string{"take 3", "open " + fx.series() + "-1", "write 6", "sync", "commit"}
	if got := fx.tr.list(); !slices.Equal(got, want) {
		t.Fatalf("ops = %v, want %v", got, want)
	}
}

func TestFileRollRollsOnTheInterval(t *testing.T) {
	fx := newRollFixture(t, FileRollOptions{Serializer: SerializerOptions{AppendNewline: true}, RollInterval: 30 * time.Second})
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
	fx := newRollFixture(t, FileRollOptions{Serializer: SerializerOptions{AppendNewline: true}, RollInterval: 0})
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
	fx := newRollFixture(t, FileRollOptions{Serializer: SerializerOptions{AppendNewline: true}, RollInterval: time.Second, PathManager: "ROLLTIME", Prefix: "app-", Extension: "log"})
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
	clk := clock.NewFake()
	existing := filepath.Join(dir, strconv.FormatInt(clk.Now().UnixMilli(), 10)+"-1")
	if err := os.WriteFile(existing, []byte("older data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fx := newRollFixture(t, FileRollOptions{Directory: dir, Serializer: SerializerOptions{AppendNewline: true}})
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
		inject func(*fsutil.Faulty)
	}{
		{"write fails halfway (disk full)", func(f *fsutil.Faulty) { f.FailWrites(3, syscall.ENOSPC) }},
		{"fsync fails (device error)", func(f *fsutil.Faulty) { f.FailSyncs(0, syscall.EIO) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newRollFixture(t, FileRollOptions{Serializer: SerializerOptions{AppendNewline: true}})
			fx.ch.put(bodyEvents("a")...)
			fx.process(Ready) // opens file -1
			tc.inject(fx.faults)
			fx.ch.put(bodyEvents("b", "c", "d")...)
			// The fault persists: every attempt fails and keeps the batch.
			for range 3 {
				if st, err := fx.s.Process(context.Background()); st != Backoff || err == nil {
					t.Fatalf("process = %v, %v; want an error", st, err)
				}
				if got := fx.ch.bodies(); !slices.Equal(got, []string{"b", "c", "d"}) {
					t.Fatalf("channel = %v, want the batch rolled back in order", got)
				}
			}
			if fx.s.counter.EventWriteFail.Load() != 3 {
				t.Fatalf("EventWriteFail = %d, want 3", fx.s.counter.EventWriteFail.Load())
			}
			// The disk recovers: the whole batch goes to a new file, and the
			// abandoned file was cut back to its committed batch.
			fx.faults.Heal()
			fx.process(Ready)
			got := fx.contents()
			var whole []string
			for name, data := range got {
				if data == "b\nc\nd\n" {
					whole = append(whole, name)
				}
			}
			if len(got) != 2 || len(whole) != 1 || got[fx.series()+"-1"] != "a\n" {
				t.Fatalf("files = %q, want -1 = a and one file with the whole batch (no empty leftovers)", got)
			}
			if fx.s.counter.EventDrainSuccess.Load() != 4 || fx.ch.size() != 0 {
				t.Fatalf("EventDrainSuccess = %d, left %d; want 4, 0", fx.s.counter.EventDrainSuccess.Load(), fx.ch.size())
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
	if err := c.Problems().Err(); err != nil {
		t.Fatal(err)
	}
	want := FileRollOptions{Directory: "/var/flume/out", RollInterval: 0, BatchSize: 500, Serializer: SerializerOptions{Type: "text"},
		PathManager: "rolltime", Prefix: "web-", Extension: "txt"}
	if got := s.(*FileRoll).opts; got != want {
		t.Fatalf("options = %+v, want %+v", got, want)
	}

	c = config.FromMap("a1.sinks.k1.", map[string]string{"sink.directory": "/d"})
	s, _ = f("k1", c, nil)
	if o := s.(*FileRoll).opts; o.RollInterval != 30*time.Second || o.BatchSize != 100 || o.Serializer != (SerializerOptions{Type: "text", AppendNewline: true}) || o.PathManager != "default" {
		t.Fatalf("defaults = %+v", o)
	}

	c = config.FromMap("a1.sinks.k1.", map[string]string{
		"sink.serializer":   "com.example.CsvSerializer$Builder",
		"sink.pathManager":  "rolltme",
		"sink.rollInterval": "-5",
		// Not checked under a refused serializer: reported once, at the serializer.
		"sink.serializer.appendNewline": "false",
	})
	f("k1", c, nil)
	var got []string
	for _, p := range c.Problems().Errors() {
		got = append(got, p.String())
	}
	wantErrs := []string{
		`<inline>:1: a1.sinks.k1.sink.directory: required key is missing`,
		`<inline>:1: a1.sinks.k1.sink.pathManager: must be one of default, rolltime, not "rolltme" (did you mean rolltime?)`,
		`<inline>:2: a1.sinks.k1.sink.rollInterval: must be 0 (never roll) or a number of seconds, not -5`,
		`<inline>:3: a1.sinks.k1.sink.serializer: unknown serializer type "com.example.CsvSerializer$Builder" (known: avro_event, header_and_text, text)`,
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
