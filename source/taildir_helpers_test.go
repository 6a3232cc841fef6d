package source

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
)

// Helpers shared by the taildir and spooldir tests: a recording BatchPutter, a
// captured log, a poll loop standing in for the runner, and a log writer that
// rotates files the way applications and logrotate do.

// tdRecorder records accepted events. refuse, when set, is asked before each
// call (numbered from 1) whether to refuse it as a full channel would; delay
// slows every call down, so a source lags behind a writer; during runs in
// each call, before the answer, as whatever else happens while a channel
// takes a batch.
type tdRecorder struct {
	mu     sync.Mutex
	events []channel.Event
	calls  int
	refuse func(call int) bool
	delay  time.Duration
	during func(call int)
}

func (p *tdRecorder) PutBatch(evs []channel.Event) error {
	p.mu.Lock()
	p.calls++
	call, refuse, delay, during := p.calls, p.refuse, p.delay, p.during
	p.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if during != nil {
		during(call)
	}
	if refuse != nil && refuse(call) {
		return fmt.Errorf("put: %w", channel.ErrFull)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, evs...)
	return nil
}

func (p *tdRecorder) bodies() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, len(p.events))
	for i, e := range p.events {
		out[i] = string(e.Body)
	}
	return out
}

func (p *tdRecorder) all() []channel.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]channel.Event(nil), p.events...)
}

func (p *tdRecorder) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.events)
}

// tdLog captures log output for assertions.
type tdLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *tdLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

func (l *tdLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *tdLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tdTaildir builds a taildir source from relative keys. Unless set, the
// position file lives in dir and the periodic work runs every few
// milliseconds, so tests need no long sleeps.
func tdTaildir(t *testing.T, dir string, kv map[string]string) (*Taildir, *tdLog) {
	t.Helper()
	full := map[string]string{
		"positionFile":     filepath.Join(dir, "pos", "taildir_position.json"),
		"rescanInterval":   "20",
		"writePosInterval": "50",
	}
	for k, v := range kv {
		full[k] = v
	}
	c := config.FromMap("a1.sources.r1.", full)
	lg := &tdLog{}
	src, err := newTaildirSource("r1", c, lg.logger())
	c.Finish()
	if err != nil || len(c.Problems().Errors()) > 0 {
		t.Fatalf("configure taildir: %v %v", err, c.Problems().Errors())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("source log:\n%s", lg)
		}
	})
	return src.(*Taildir), lg
}

// tdRun starts src and polls it until the returned stop is called; stop also
// stops the source. Backoff sleeps 2 ms instead of the runner's seconds.
func tdRun(t *testing.T, src Pollable, p BatchPutter) (stop func()) {
	t.Helper()
	if err := src.Start(context.Background(), p); err != nil {
		t.Fatalf("start: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			st, err := src.Poll(ctx)
			if err != nil {
				t.Errorf("process: %v", err)
			}
			if st == Backoff {
				select {
				case <-ctx.Done():
				case <-time.After(2 * time.Millisecond):
				}
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			if err := src.Stop(); err != nil {
				t.Errorf("stop: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// tdWriter is an application appending numbered lines of lineLen bytes
// (newline included) to dir/name, with the
// rotations logrotate and applications do. Every line is "seq=N gen=G name
// pad", where G counts the files written so far, so a test can check that
// lines of one file arrive in order and every line exactly once.
type tdWriter struct {
	t    *testing.T
	dir  string
	name string
	pad  string

	mu  sync.Mutex
	f   *os.File
	seq int
	gen int
}

func newTDWriter(t *testing.T, dir, name string, lineLen int) *tdWriter {
	w := &tdWriter{t: t, dir: dir, name: name, pad: strings.Repeat("x", max(0, lineLen-22-len(name)))}
	w.reopen()
	t.Cleanup(func() { w.f.Close() })
	return w
}

func (w *tdWriter) path() string { return filepath.Join(w.dir, w.name) }

// reopen opens the file by name again, as an application does after a
// rotation (O_APPEND, created when missing).
func (w *tdWriter) reopen() {
	if w.f != nil {
		w.f.Close()
		w.gen++
	}
	f, err := os.OpenFile(w.path(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		w.t.Fatalf("open %s: %v", w.path(), err)
	}
	w.f = f
}

// write appends n lines in one write call per 64 lines.
func (w *tdWriter) write(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeLocked(n)
}

func (w *tdWriter) writeLocked(n int) {
	var buf []byte
	for i := 0; i < n; i++ {
		buf = fmt.Appendf(buf, "seq=%07d gen=%03d %s %s\n", w.seq, w.gen, w.name, w.pad)
		w.seq++
		if len(buf) > 32<<10 || i == n-1 {
			if _, err := w.f.Write(buf); err != nil {
				w.t.Errorf("write: %v", err)
			}
			buf = buf[:0]
		}
	}
}

func (w *tdWriter) written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seq
}

// rotate runs fn with the writer paused (no line is half written).
func (w *tdWriter) rotate(fn func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fn()
}

// shift renames name.N to name.N+1 down to name.1, deleting name.keep, as
// logrotate does before it rotates name itself.
func (w *tdWriter) shift(keep int) {
	os.Remove(fmt.Sprintf("%s.%d", w.path(), keep))
	for i := keep - 1; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", w.path(), i), fmt.Sprintf("%s.%d", w.path(), i+1))
	}
}

// copyTo copies the file's current content to dst, as copytruncate does.
func (w *tdWriter) copyTo(dst string) {
	data, err := os.ReadFile(w.path())
	if err != nil {
		w.t.Fatalf("copy: %v", err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		w.t.Fatalf("copy: %v", err)
	}
}

// tdLine parses a line written by tdWriter.
func tdLine(t *testing.T, body string) (seq, gen int) {
	t.Helper()
	f := strings.Fields(body)
	if len(f) < 2 || !strings.HasPrefix(f[0], "seq=") || !strings.HasPrefix(f[1], "gen=") {
		t.Fatalf("not a test line: %q", body)
	}
	seq, err1 := strconv.Atoi(strings.TrimPrefix(f[0], "seq="))
	gen, err2 := strconv.Atoi(strings.TrimPrefix(f[1], "gen="))
	if err1 != nil || err2 != nil {
		t.Fatalf("not a test line: %q", body)
	}
	return seq, gen
}

// tdExactlyOnce checks that bodies hold every line 0..n-1 exactly once, and
// the lines of each written file in the order they were written.
func tdExactlyOnce(t *testing.T, bodies []string, n int) {
	t.Helper()
	tdExactlyRange(t, bodies, 0, n)
}

// tdExactlyRange is tdExactlyOnce for lines from..to-1.
func tdExactlyRange(t *testing.T, bodies []string, from, to int) {
	t.Helper()
	seen := make(map[int]int)
	lastInGen := make(map[int]int)
	disorder := 0
	for _, b := range bodies {
		seq, gen := tdLine(t, b)
		seen[seq]++
		if last, ok := lastInGen[gen]; ok && seq < last {
			if disorder++; disorder <= 5 {
				t.Errorf("file %d: line %d delivered after line %d", gen, seq, last)
			}
		}
		lastInGen[gen] = seq
	}
	var missing, twice []int
	for i := from; i < to; i++ {
		switch seen[i] {
		case 0:
			missing = append(missing, i)
		case 1:
		default:
			twice = append(twice, i)
		}
	}
	if len(missing) > 0 || len(twice) > 0 || len(bodies) != to-from {
		t.Fatalf("delivered %d lines for %d written; missing %d %v; more than once %d %v",
			len(bodies), to-from, len(missing), tdHead(missing), len(twice), tdHead(twice))
	}
}

func tdHead(xs []int) []int { return xs[:min(len(xs), 10)] }

// tdSettle waits until n lines arrived, then lets the source run a little
// longer (several rescans) so a late duplicate would show.
func tdSettle(t *testing.T, p *tdRecorder, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d lines", n), func() bool { return p.count() >= n })
	time.Sleep(150 * time.Millisecond)
}
