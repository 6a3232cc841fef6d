package e2e

// The harness must see exactly what the processes deliver, or the end-to-end
// tests prove nothing: a logger sink line gives back the body the sink was
// given; a file_roll directory read while it is being written yields every
// whole line once and never half a line; the ledger's tally counts missing
// events, duplicates and events outside the range; the writer numbers its
// lines without gaps; /proc usage reads real figures; and a Proc really
// runs flumed, serves its metrics, dies on SIGKILL and starts again.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/await"
)

func TestLoggerLineReadsTheBodyBackFromTheLoggerSinksDump(t *testing.T) {
	for _, body := range []string{"ev-000001", "ev-999999", "0", "1234567890123456"} {
		line := "2026-01-01 00:00:00.000 INFO  [k1] Event: " + channel.DumpEvent(channel.Event{Body: []byte(body)}, 16)
		got, ok := LoggerLine(line)
		if !ok || got != body {
			t.Errorf("LoggerLine(%q) = %q, %v; want %q", line, got, ok, body)
		}
		stdout := "Event: " + channel.DumpEvent(channel.Event{Headers: map[string]string{"a": "b"}, Body: []byte(body)}, 16)
		if got, ok := LoggerLine(stdout); !ok || got != body {
			t.Errorf("LoggerLine(%q) = %q, %v; want %q", stdout, got, ok, body)
		}
	}
	if _, ok := LoggerLine("2026-01-01 INFO agent started"); ok {
		t.Error("a log line that is not an event was read as one")
	}
}

func TestRollReaderReadsWholeLinesOnceAndLeavesAPartialLineForLater(t *testing.T) {
	dir := t.TempDir()
	l := NewLedger()
	r := &RollReader{Dir: filepath.Join(dir, "out"), Collector: "c", Ledger: l, Parse: ParseEvent}
	if err := r.Poll(); err != nil {
		t.Fatalf("a directory not yet created is not an error: %v", err)
	}
	if err := os.Mkdir(r.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(r.Dir, "1000-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	write := func(s string) {
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
		if err := r.Poll(); err != nil {
			t.Fatal(err)
		}
	}
	write("ev-000001\nev-000002\nev-00")
	if got := l.Total("c"); got != 2 {
		t.Fatalf("after two whole lines and a partial one: %d events, want 2", got)
	}
	write("0003\nev-000002\ngarbage\n")
	if got := l.Total("c"); got != 4 {
		t.Fatalf("after the rest: %d events, want 4", got)
	}
	if !l.Has("c", 3) || l.Times(2) != 2 {
		t.Errorf("event 3 seen %v, event 2 seen %d times; want true, 2", l.Has("c", 3), l.Times(2))
	}
	if g := l.GarbageLines()["c"]; len(g) != 1 || g[0] != "garbage" {
		t.Errorf("garbage lines %q, want [garbage]", g)
	}
}

func TestTallyCountsWhereEveryEventLanded(t *testing.T) {
	l := NewLedger()
	now := time.Now()
	for _, s := range []int{1, 2, 3, 3} {
		l.Record("c1", s, now)
	}
	for _, s := range []int{3, 4, 6, 9} {
		l.Record("c2", s, now)
	}
	got := l.Tally(1, 6)
	if len(got.Missing) != 1 || got.Missing[0] != 5 {
		t.Errorf("missing %v, want [5]", got.Missing)
	}
	if got.Only["c1"] != 2 || got.Only["c2"] != 2 || got.Both != 1 {
		t.Errorf("only c1 %d, only c2 %d, both %d; want 2, 2, 1", got.Only["c1"], got.Only["c2"], got.Both)
	}
	if got.Duplicates != 2 || got.Foreign != 1 {
		t.Errorf("duplicates %d, foreign %d; want 2 (event 3 three times), 1 (event 9)", got.Duplicates, got.Foreign)
	}
	if s := Ranges([]int{1, 2, 3, 5, 7, 8}); s != "[1-3 5 7-8]" {
		t.Errorf("Ranges = %s", s)
	}
}

func TestWriterNumbersItsLinesWithoutGaps(t *testing.T) {
	w := &Writer{Path: filepath.Join(t.TempDir(), "app.log"), Every: 5 * time.Millisecond, PerTick: 3}
	if err := w.Open(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(2); err != nil {
		t.Fatal(err)
	}
	w.Start()
	await.True(t, "20 lines written", func() bool { return w.Written() >= 20 })
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(w.Path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != w.Written() {
		t.Fatalf("%d lines in the file, Written says %d", len(lines), w.Written())
	}
	for i, line := range lines {
		if seq, ok := ParseEvent(line); !ok || seq != i+1 {
			t.Fatalf("line %d is %q", i+1, line)
		}
	}
	if w.WrittenAt(1).IsZero() || !w.WrittenAt(w.Written()+1).IsZero() {
		t.Error("WrittenAt knows the lines written and only those")
	}
}

func TestUsageReadsThisProcesssCPUAndMemory(t *testing.T) {
	u, err := Usage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.RSS <= 0 || u.HWM < u.RSS {
		t.Errorf("RSS %d, peak %d: want 0 < RSS <= peak", u.RSS, u.HWM)
	}
	if _, err := Usage(1 << 30); err == nil {
		t.Error("a pid that does not exist gave no error")
	}
}

func TestProcRunsFlumedServesMetricsAndStartsAgainAfterSIGKILL(t *testing.T) {
	c := newCluster(t)
	port := c.ports(1)[0]
	conf := c.config("seq.properties",
		"a1.sources = r1",
		"a1.channels = c1",
		"a1.sinks = k1",
		"a1.sources.r1.type = seq",
		"a1.sources.r1.totalEvents = 3",
		"a1.sources.r1.channels = c1",
		"a1.channels.c1.type = memory",
		"a1.sinks.k1.type = logger",
		"a1.sinks.k1.channel = c1",
	)
	l := NewLedger()
	p := c.proc(ProcOptions{Name: "seq", Configs: []string{conf}, MetricsPort: port, OnLine: LoggerHook(l, "seq", ParseDecimal)})
	for run := 1; run <= 2; run++ {
		c.start(p)
		await.True(t, fmt.Sprintf("run %d: the logger sink to print %d events", run, 3*run), func() bool { return l.Total("seq") == 3*run })
		c.metric(p, "CHANNEL.c1", "EventTakeSuccessCount", "the channel counts the takes", func(v int64) bool { return v == 3 })
		c.kill(p)
		if err, ok := p.Exited(); !ok || err == nil {
			t.Fatalf("run %d: after SIGKILL: exited %v, err %v", run, ok, err)
		}
	}
	if got := l.Tally(0, 2); got.Duplicates != 3 || len(got.Missing) != 0 {
		t.Errorf("two runs of seq 0..2: %s", got)
	}
}
