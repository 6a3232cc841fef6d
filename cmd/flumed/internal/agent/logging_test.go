package agent

// The process logger writes Flume-like text lines (the message as is, so the
// logger sink's "Event: { ... }" text stays exact; the component in brackets)
// or JSON; levels come from --log-level or Flume's -Dflume.root.logger.
// Repeated identical warnings and errors are rate-limited: the first is
// logged, the others counted, and the first after the interval carries the
// count. -D properties Flume scripts pass are understood or ignored with a
// warning.

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
)

func TestTextLinesKeepTheMessageExactAndNameTheComponent(t *testing.T) {
	var b bytes.Buffer
	log, err := NewLogger(&b, LogOptions{Format: "text", Level: "info"})
	if err != nil {
		t.Fatal(err)
	}
	log.With("component", "k1").Info("Event: { headers:{a=b} body: 41 42 43    ABC }", "n", 3, "why", "two words")
	log.Debug("hidden")
	line := b.String()
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INFO  \[k1\] Event: \{ headers:\{a=b\} body: 41 42 43    ABC \} n=3 why="two words"\n$`)
	if !re.MatchString(line) {
		t.Fatalf("line %q", line)
	}
}

func TestJSONLogs(t *testing.T) {
	var b bytes.Buffer
	log, err := NewLogger(&b, LogOptions{Format: "json", Level: "warn"})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("dropped")
	log.With("component", "c1").Warn("channel full", "size", 100)
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, b.String())
	}
	if m["msg"] != "channel full" || m["component"] != "c1" || m["level"] != "WARN" {
		t.Fatalf("%v", m)
	}
}

func TestBadLogOptionsAreErrors(t *testing.T) {
	if _, err := NewLogger(&bytes.Buffer{}, LogOptions{Format: "xml"}); err == nil {
		t.Error("format xml accepted")
	}
	if _, err := NewLogger(&bytes.Buffer{}, LogOptions{Level: "loud"}); err == nil {
		t.Error("level loud accepted")
	}
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "TRACE": slog.LevelDebug, "Info": slog.LevelInfo, "WARN": slog.LevelWarn, "fatal": slog.LevelError} {
		if got, err := ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v", in, got, err)
		}
	}
}

func TestRepeatedFailuresAreRateLimited(t *testing.T) {
	var b bytes.Buffer
	now := time.Unix(0, 0)
	h := newRepeatLimiter(&textHandler{out: &lockedWriter{w: &b}, level: slog.LevelDebug}, 30*time.Second, func() time.Time { return now })
	root := slog.New(h)
	log := root.With("component", "k1")
	for i := 0; i < 5; i++ {
		log.Error("unable to deliver event", "err", "connection refused", "retry_in", time.Duration(i)*time.Second)
		now = now.Add(time.Second)
	}
	log.Error("unable to deliver event", "err", "timeout") // a different failure
	root.With("component", "k2").Error("unable to deliver event", "err", "connection refused")
	log.Info("Event: same")
	log.Info("Event: same") // info lines are never limited
	now = now.Add(30 * time.Second)
	log.Error("unable to deliver event", "err", "connection refused", "retry_in", time.Second)

	var got []string
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		got = append(got, l[24:]) // without the time
	}
	want := []string{
		"ERROR [k1] unable to deliver event err=\"connection refused\" retry_in=0s",
		"ERROR [k1] unable to deliver event err=timeout",
		"ERROR [k2] unable to deliver event err=\"connection refused\"",
		"INFO  [k1] Event: same",
		"INFO  [k1] Event: same",
		"ERROR [k1] unable to deliver event err=\"connection refused\" retry_in=1s repeated=4",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("\n got %q\nwant %q", got, want)
	}
}

func TestSystemProperties(t *testing.T) {
	sp, err := ParseSystemProperties([]string{
		"flume.root.logger=DEBUG,console",
		"flume.monitoring.type=http",
		"flume.monitoring.port=34545",
		"org.apache.flume.log.rawdata=true",
		"my.own=x",
		"flume.monitoring.hosts=h1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if sp.LogLevel != "DEBUG" || sp.MetricsAddr != "0.0.0.0:34545" || sp.All["my.own"] != "x" {
		t.Fatalf("%+v", sp)
	}
	sort.Strings(sp.Warnings)
	want := []string{
		"-Dflume.monitoring.hosts ignored: flumed's monitoring takes only flume.monitoring.type (http or prometheus) and flume.monitoring.port",
		"-Dmy.own ignored: not a property flumed knows (still usable as ${sys:my.own})",
		"-Dorg.apache.flume.log.rawdata ignored: flumed never logs event payloads",
	}
	if !reflect.DeepEqual(sp.Warnings, want) {
		t.Fatalf("warnings\n got %q\nwant %q", sp.Warnings, want)
	}

	sp, err = ParseSystemProperties([]string{"flume.monitoring.type=HTTP"})
	if err != nil || sp.MetricsAddr != "0.0.0.0:41414" || sp.Prometheus {
		t.Fatalf("Flume's default port: %+v %v", sp, err)
	}
	sp, err = ParseSystemProperties([]string{"flume.monitoring.type=prometheus", "flume.monitoring.port=9100"})
	if err != nil || sp.MetricsAddr != "0.0.0.0:9100" || !sp.Prometheus || len(sp.Warnings) != 0 {
		t.Fatalf("prometheus monitoring: %+v %v", sp, err)
	}
	for _, bad := range []string{"flume.root.logger=LOUD,console", "flume.monitoring.port=x"} {
		if _, err := ParseSystemProperties([]string{"flume.monitoring.type=http", bad}); err == nil {
			t.Errorf("-D%s accepted", bad)
		}
	}
}

func TestJSONLogsWriteDurationsAsGoPrintsThem(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger(&buf, LogOptions{Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("retrying", "retry_in", 2*time.Second, "swap", 150*time.Microsecond)
	if s := buf.String(); !strings.Contains(s, `"retry_in":"2s"`) || !strings.Contains(s, `"swap":"150µs"`) {
		t.Fatalf("log line %s", s)
	}
}

func TestTheLogFileRotatesBySize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flumed.log")
	log, err := NewLogger(io.Discard, LogOptions{File: LogFile{Path: path, MaxSizeMB: 1, MaxBackups: 1}})
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("x", 1000)
	for i := range 2500 { // 2.5 MB: two rotations, one backup kept
		log.Info(line, "i", i)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	await.True(t, "one backup kept (lumberjack removes older ones in the background)", func() bool {
		entries, _ := os.ReadDir(dir)
		return len(entries) == 2
	})
	st, err := os.Stat(path)
	if err != nil || st.Size() > 1<<20 {
		t.Fatalf("current file: %v, %v (files %v)", st, err, names)
	}
}

func TestALogFileThatCannotBeOpenedIsAnError(t *testing.T) {
	_, err := NewLogger(io.Discard, LogOptions{File: LogFile{Path: filepath.Join(t.TempDir(), "no", "such", "dir.log")}})
	if err == nil {
		t.Fatal("no error")
	}
}
