package sink

// The logger sink prints one event per transaction as Flume's LoggerSink does
// (FLUME.md §6): "Event: { headers:{k=v, …} body: <hexdump> }", the hexdump
// being commons-io HexDump of the first maxBytesToLog bytes with the leading
// "00000000" and the final newline removed: uppercase hex, padded to 16
// columns, the printable ASCII column after, "\n00000010 " before a second
// line. An empty body prints "body: }". Headers are printed in sorted order.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// TestLoggerGolden keeps the catalogue (empty body, 3 bytes, 16 bytes,
// 40 bytes with maxBytesToLog=40, non-printable bytes) in a reviewable file.
func TestLoggerGolden(t *testing.T) {
	bin := make([]byte, 40)
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	cases := []struct {
		e   channel.Event
		max int
	}{
		{channel.Event{}, 16},
		{channel.Event{Body: []byte("ABC")}, 16},
		{channel.Event{Headers: map[string]string{"k": "v"}, Body: []byte("sixteen bytes!!!")}, 16},
		{channel.Event{Body: []byte("forty bytes of text, to span three lines")}, 40},
		{channel.Event{Body: bin}, 40},
	}
	var out bytes.Buffer
	l := NewLogger("k1", LoggerOptions{Out: &out}, nil)
	for _, c := range cases {
		ch := newFakeChannel(nil)
		ch.put(c.e)
		l.opts.MaxBytesToLog = c.max
		if err := l.Start(context.Background(), ch); err != nil {
			t.Fatal(err)
		}
		if st, err := l.Process(context.Background()); st != Ready || err != nil {
			t.Fatalf("process = %v, %v", st, err)
		}
		_ = l.Stop()
	}
	golden := filepath.Join("testdata", "logger.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestLoggerGolden -update to create it)", err)
	}
	if out.String() != string(want) {
		t.Fatalf("logger output differs from %s:\n%s\nwant:\n%s", golden, out.String(), want)
	}
}

func TestLoggerTakesOneEventPerTransaction(t *testing.T) {
	ch := newFakeChannel(nil)
	ch.put(bodyEvents("one", "two")...)
	var out bytes.Buffer
	l := NewLogger("k1", LoggerOptions{Out: &out}, nil)
	if err := l.Start(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	for i, want := range []Status{Ready, Ready, Backoff} {
		if st, err := l.Process(context.Background()); st != want || err != nil {
			t.Fatalf("call %d = %v, %v; want %v", i, st, err, want)
		}
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "one }") || !strings.HasSuffix(lines[1], "two }") ||
		!strings.HasPrefix(lines[0], "Event: { headers:{} body: 6F 6E 65 ") {
		t.Fatalf("output:\n%s", out.String())
	}
	if ch.commits != 3 {
		t.Fatalf("%d commits, want 3 (one per call, also the empty one)", ch.commits)
	}
}

func TestLoggerDefaultsToInfoThroughSlogWithTheExactText(t *testing.T) {
	ch := newFakeChannel(nil)
	ch.put(bodyEvents("ABC")...)
	var buf bytes.Buffer
	l := NewLogger("k1", LoggerOptions{}, slog.New(slog.NewJSONHandler(&buf, nil)))
	if err := l.Start(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	if _, err := l.Process(context.Background()); err != nil {
		t.Fatal(err)
	}
	var rec struct{ Level, Msg, Sink string }
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	want := "Event: { headers:{} body: 41 42 43 " + strings.Repeat(" ", 39) + "ABC }"
	if rec.Level != "INFO" || rec.Msg != want || rec.Sink != "k1" {
		t.Fatalf("record = %+v, want INFO %q from k1", rec, want)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("stdout closed") }

func TestLoggerWriteFailureKeepsTheEvent(t *testing.T) {
	ch := newFakeChannel(nil)
	ch.put(bodyEvents("keep me")...)
	l := NewLogger("k1", LoggerOptions{Out: failingWriter{}}, nil)
	if err := l.Start(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	if _, err := l.Process(context.Background()); err == nil || !strings.Contains(err.Error(), "stdout closed") {
		t.Fatalf("err = %v, want the write error", err)
	}
	if got := ch.bodies(); len(got) != 1 || got[0] != "keep me" {
		t.Fatalf("channel = %v, want the event back", got)
	}
}

func TestLoggerConfig(t *testing.T) {
	c := config.FromMap("a1.sinks.k1.", map[string]string{"maxBytesToLog": "40"})
	f, _ := Lookup("LOGGER")
	s, err := f("k1", c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Problems().Err(); err != nil || s.(*Logger).opts.MaxBytesToLog != 40 {
		t.Fatalf("problems %v, maxBytesToLog %d", err, s.(*Logger).opts.MaxBytesToLog)
	}
	c = config.FromMap("a1.sinks.k1.", map[string]string{"maxBytesToLog": "0"})
	if _, err := f("k1", c, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Problems().Err(); err == nil || !strings.Contains(err.Error(), "maxBytesToLog: must be at least 1") {
		t.Fatalf("problems = %v", err)
	}
}

func TestProcessAfterStopIsAnError(t *testing.T) {
	for _, s := range []Sink{NewLogger("k1", LoggerOptions{}, nil), NewNull("k2", 0, nil), NewFileRoll("k3", FileRollOptions{Directory: t.TempDir()}, nil)} {
		if err := s.Start(context.Background(), newFakeChannel(nil)); err != nil {
			t.Fatal(err)
		}
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := s.Stop(); err != nil {
			t.Fatalf("%s: second Stop = %v", s.Name(), err)
		}
		if _, err := s.Process(context.Background()); err == nil {
			t.Fatalf("%s: Process after Stop succeeded", s.Name())
		}
	}
}
