package taildir

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/source/internal/sourcetest"
	"github.com/flumed/flumed/source/sourceapi"
)

// Helpers of the taildir tests: a source built from a few keys, and a log
// writer that rotates files the way applications and logrotate do. What the
// spooldir tests share with these (a recording BatchPutter, the poll loop,
// the exactly-once checks) is in sourcetest.

// tdTaildir builds a taildir source from relative keys. Unless set, the
// position file lives in dir and the periodic work runs every few
// milliseconds, so tests need no long sleeps.
func tdTaildir(t *testing.T, dir string, kv map[string]string) (*Source, *sourcetest.Log) {
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
	lg := &sourcetest.Log{}
	c.Check(Spec)
	src, err := New("r1", c, lg.Logger())
	if err != nil || len(c.Problems().Errors()) > 0 {
		t.Fatalf("configure taildir: %v %v", err, c.Problems().Errors())
	}
	lg.ShowOnFailure(t)
	return src.(*Source), lg
}

// tdRun starts src and polls it as the runner would, backing off only 2 ms.
func tdRun(t *testing.T, src sourceapi.Pollable, p sourceapi.BatchPutter) *sourcetest.Poller {
	t.Helper()
	return sourcetest.Run(t, src, p)
}

// tdWriter is an application appending numbered lines of lineLen bytes
// (newline included) to dir/name, with the rotations logrotate and
// applications do. Every line is "seq=N gen=G name pad", where G counts the
// files written so far: sourcetest's checks read that format.
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

// tdSettle waits until n lines arrived, then proves no more arrive while
// the source goes on: its polls run for another 150 ms, several rescans
// (rescanInterval is 20 ms here), in which a late duplicate would show.
func tdSettle(t *testing.T, p *sourcetest.Recorder, r *sourcetest.Poller, n int) {
	t.Helper()
	sourcetest.Settle(t, p, n, r, 150*time.Millisecond)
}
