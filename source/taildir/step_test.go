package taildir

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/flumed/flumed/internal/clock"
	"github.com/flumed/flumed/source/internal/sourcetest"
	"github.com/flumed/flumed/source/sourceapi"
)

// A harness that drives a taildir source by hand: the test's goroutine makes
// every poll, a fake clock decides when the periodic work (rescans,
// checkpoints) runs, there is no directory watch, and the file system runs a
// test's action between two chosen calls of the source. A race with
// logrotate is then replayed exactly, every run, instead of hoped for under
// load.

// tdOp is one call of the source to its file system.
type tdOp struct {
	kind string // "readdir", "stat", "open", "read", "fstat"
	path string
	off  int64 // read: the offset
	n    int   // read: the bytes asked for
}

// tdStepFS is the real file system with triggers: a trigger's action runs
// once, before the first call it matches.
type tdStepFS struct {
	base tailFS

	mu       sync.Mutex
	triggers []*tdTrigger
}

type tdTrigger struct {
	match func(tdOp) bool
	do    func()
	fired bool
}

// before arms do to run once, before the first call that match accepts.
// fired reports whether it has run.
func (fs *tdStepFS) before(match func(tdOp) bool, do func()) (fired func() bool) {
	tr := &tdTrigger{match: match, do: do}
	fs.mu.Lock()
	fs.triggers = append(fs.triggers, tr)
	fs.mu.Unlock()
	return func() bool {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		return tr.fired
	}
}

func (fs *tdStepFS) call(op tdOp) {
	fs.mu.Lock()
	var run []func()
	for _, tr := range fs.triggers {
		if !tr.fired && tr.match(op) {
			tr.fired = true
			run = append(run, tr.do)
		}
	}
	fs.mu.Unlock()
	for _, do := range run {
		do()
	}
}

func (fs *tdStepFS) ReadDir(dir string) ([]string, error) {
	fs.call(tdOp{kind: "readdir", path: dir})
	return fs.base.ReadDir(dir)
}

func (fs *tdStepFS) Stat(path string) (tailStat, error) {
	fs.call(tdOp{kind: "stat", path: path})
	return fs.base.Stat(path)
}

func (fs *tdStepFS) Open(path string) (tailHandle, error) {
	fs.call(tdOp{kind: "open", path: path})
	h, err := fs.base.Open(path)
	if err != nil {
		return nil, err
	}
	return &tdStepHandle{tailHandle: h, fs: fs, path: path}, nil
}

type tdStepHandle struct {
	tailHandle
	fs   *tdStepFS
	path string
}

func (h *tdStepHandle) ReadAt(p []byte, off int64) (int, error) {
	h.fs.call(tdOp{kind: "read", path: h.path, off: off, n: len(p)})
	return h.tailHandle.ReadAt(p, off)
}

func (h *tdStepHandle) Stat() (tailStat, error) {
	h.fs.call(tdOp{kind: "fstat", path: h.path})
	return h.tailHandle.Stat()
}

// tdStepper is a taildir source driven by hand.
type tdStepper struct {
	t   *testing.T
	src *Source
	lg  *sourcetest.Log
	fs  *tdStepFS
	clk *clock.Fake
	p   *sourcetest.Recorder
}

// tdStepped builds a taildir source from kv (see tdTaildir) on the stepping
// file system and a fake clock, and starts it.
func tdStepped(t *testing.T, dir string, kv map[string]string) *tdStepper {
	t.Helper()
	src, lg := tdTaildir(t, dir, kv)
	s := &tdStepper{t: t, src: src, lg: lg, fs: &tdStepFS{base: src.fsys}, clk: clock.NewFake(), p: &sourcetest.Recorder{}}
	src.fsys, src.clk = s.fs, s.clk
	src.startWatch = func(*slog.Logger) (*dirWatcher, error) { return nil, errors.New("no watch: the test steps") }
	if err := src.Start(context.Background(), s.p); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := src.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s
}

// poll runs one poll and reports whether it delivered a batch.
func (s *tdStepper) poll() bool {
	s.t.Helper()
	st, err := s.src.Poll(context.Background())
	if err != nil {
		s.t.Fatalf("poll: %v", err)
	}
	return st == sourceapi.Ready
}

// round polls until the source has nothing to read, then moves the clock
// past the rescan and checkpoint intervals, so the next poll lists the
// directories again.
func (s *tdStepper) round() {
	s.t.Helper()
	for i := 0; s.poll(); i++ {
		if i > 10000 {
			s.t.Fatal("the source never runs out of lines")
		}
	}
	s.clk.Advance(s.src.cfg.rescanInterval + s.src.cfg.writePosInterval)
}

// settle runs rounds until n lines arrived, or until five rounds in a row
// brought none (the test's checks then say what is missing), then three more:
// rescans and polls that would deliver a late duplicate.
func (s *tdStepper) settle(n int) {
	s.t.Helper()
	for idle := 0; s.p.Count() < n && idle < 5; {
		before := s.p.Count()
		s.round()
		if s.p.Count() == before {
			idle++
		} else {
			idle = 0
		}
	}
	for range 3 {
		s.round()
	}
}
