package wal

// The crash-point contract: whatever the step at which the process dies
// (every write, sync, create, rename and removal that goes through the
// fsutil seam, in turn), while Open finishes rolls a power loss interrupted,
// while Append rolls to new segments, while Release and TruncateFront remove
// sealed segments or roll the tail, or while the manifest is compacted, the
// next Open finds
// every acknowledged record that was not released, exactly once, intact, at
// its index, and nothing else; Inspect foresees what that Open finds; and the
// Open after it has nothing left to repair.
//
// A process crash keeps every operation that was made (the page cache
// survives it): stopFS performs the first n operations and refuses every
// later one, tearing the write it stops in, and the test sweeps n from 0 to
// the length of the whole scenario.

import (
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/flumed/flumed/internal/fsutil"
)

var errCrashed = errors.New("crashed here")

// stopFS lets left more operations through, then fails every operation.
type stopFS struct {
	mu   sync.Mutex
	left int
	ops  int
}

func (s *stopFS) step() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.left == 0 {
		return errCrashed
	}
	s.left--
	s.ops++
	return nil
}

func (s *stopFS) OpenFile(name string, flag int, perm os.FileMode) (fsutil.File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND) != 0 {
		if err := s.step(); err != nil {
			return nil, err
		}
	}
	f, err := fsutil.OS{}.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &stopFile{File: f, fs: s}, nil
}

func (s *stopFS) Rename(a, b string) error {
	if err := s.step(); err != nil {
		return err
	}
	return os.Rename(a, b)
}

func (s *stopFS) Remove(name string) error {
	if err := s.step(); err != nil {
		return err
	}
	return os.Remove(name)
}

func (s *stopFS) SyncDir(dir string) error {
	if err := s.step(); err != nil {
		return err
	}
	return fsutil.OS{}.SyncDir(dir)
}

func (s *stopFS) Statfs(dir string) (fsutil.Space, error) { return fsutil.OS{}.Statfs(dir) }

// CheckWrite stands for tidwall's own write of a batch.
func (s *stopFS) CheckWrite(string, int64) error { return s.step() }

type stopFile struct {
	fsutil.File
	fs *stopFS
}

func (f *stopFile) Write(p []byte) (int, error) {
	if err := f.fs.step(); err != nil {
		n, _ := f.File.Write(p[:len(p)/2]) // the write the crash tore
		return n, err
	}
	return f.File.Write(p)
}

func (f *stopFile) Sync() error {
	if err := f.fs.step(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *stopFile) Truncate(size int64) error {
	if err := f.fs.step(); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

// crashScenario opens dir (left by interrupted rolls) through fsys and works
// on it,
// noting in acked the last record a Sync acknowledged and in released the
// highest index a Release or TruncateFront was asked for, and in compactions
// how often the manifest was compacted. It stops at the first error.
func crashScenario(dir string, fsys fsutil.FS, acked, released *uint64, compactions *int) error {
	l, err := Open(dir, Options{SegmentSize: 4096, FS: fsys})
	if err != nil {
		return err
	}
	defer l.Close()
	l.man.compactAt = 6 // compact often
	next := l.LastIndex() + 1
	appendSync := func(n int) error {
		ps := make([][]byte, n)
		for i := range ps {
			ps[i] = payloadFor(next + uint64(i))
		}
		if _, _, err := l.Append(ps...); err != nil {
			return err
		}
		if err := l.Sync(); err != nil {
			return err
		}
		next += uint64(n)
		*acked = next - 1
		return nil
	}
	release := func(index uint64, exact bool) error {
		*released = max(*released, index)
		if exact {
			return l.TruncateFront(index)
		}
		return l.Release(index)
	}
	steps := []func() error{
		func() error { return appendSync(40) }, // several rolls in one batch
		func() error { return appendSync(5) },
		func() error { return release(l.Segments()[2].First, false) },
		func() error { return appendSync(30) },
		func() error { return release(l.Segments()[1].First+2, true) },
		func() error { return release(l.Segments()[1].First, false) },
		func() error { return appendSync(3) },
		func() error { return release(l.LastIndex()+1, false) }, // everything: the tail rolls
		func() error { return appendSync(60) },
		func() error { return release(l.Segments()[2].First, false) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	*compactions = l.man.compactions
	return l.Close()
}

func TestACrashAtAnyStepLosesNothingAcknowledged(t *testing.T) {
	src := t.TempDir()
	buildLog(t, src, 60)
	interruptRolls(t, src, 2)
	for n := 0; ; n++ {
		dir := t.TempDir()
		copyTree(t, src, dir)
		acked, released, compactions := uint64(60), uint64(0), 0
		fsys := &stopFS{left: n}
		err := crashScenario(dir, fsys, &acked, &released, &compactions)
		if err != nil && !errors.Is(err, errCrashed) {
			t.Fatalf("crash after %d operations: the scenario failed otherwise: %v", n, err)
		}

		info, ierr := Inspect(dir)
		l, oerr := Open(dir, Options{SegmentSize: 4096})
		if oerr != nil {
			t.Fatalf("crash after %d operations: open: %v", n, oerr)
		}
		intact, corrupt := scan(t, l)
		switch {
		case len(corrupt) > 0:
			t.Fatalf("crash after %d operations: damaged records %v (%s)", n, corrupt, l.Recovered())
		case l.LastIndex() < acked:
			t.Fatalf("crash after %d operations: LastIndex %d, but %d was acknowledged", n, l.LastIndex(), acked)
		case ierr != nil || info.FirstIndex != l.FirstIndex() || info.LastIndex != l.LastIndex():
			t.Fatalf("crash after %d operations: Inspect foresaw %+v (%v), Open found %d..%d", n, info, ierr, l.FirstIndex(), l.LastIndex())
		}
		for i := max(released, 1); i <= acked; i++ {
			if !intact[i] {
				t.Fatalf("crash after %d operations: acknowledged record %d (released below %d) is gone; log %d..%d, repair: %s",
					n, i, released, l.FirstIndex(), l.LastIndex(), l.Recovered())
			}
		}
		checkTiles(t, l)
		appendRange(t, l, l.LastIndex()+1, l.LastIndex()+2, 2)
		l.Close()
		l, err = Open(dir, Options{SegmentSize: 4096})
		if err != nil {
			t.Fatal(err)
		}
		if l.Recovered().Changed() {
			t.Fatalf("crash after %d operations: the second open repaired again: %s", n, l.Recovered())
		}
		l.Close()
		if fsys.left > 0 {
			if compactions == 0 {
				t.Fatal("the scenario never compacted the manifest: its crash points went untested")
			}
			t.Logf("the scenario takes %d operations; every crash point passed", fsys.ops)
			return
		}
	}
}

// interruptRolls leaves dir as a power loss after k rolls of one batch may:
// the last k sealed segments back in the log directory and their seals gone
// from the manifest, so that Open must move them and rebuild the list.
func interruptRolls(t *testing.T, dir string, k int) {
	t.Helper()
	l := openTest(t, dir)
	e := sealedEnv{t: t, dir: dir, segs: l.Segments()}
	e.must(l.Close())
	if len(e.segs) < k+1 {
		t.Fatalf("setup: %d segments, want more than %d", len(e.segs), k)
	}
	for _, s := range e.segs[len(e.segs)-1-k : len(e.segs)-1] {
		e.must(os.Rename(e.sealed(s.Name), e.top(s.Name)))
	}
	e.dropEntries(k)
}

// checkTiles fails unless the segments follow each other without a gap or an
// overlap, and their files are where the log says.
func checkTiles(t *testing.T, l *Log) {
	t.Helper()
	segs := l.Segments()
	for i, s := range segs {
		if i > 0 && s.First != segs[i-1].Last+1 {
			t.Fatalf("segments do not tile the log: %+v", segs)
		}
		path := segPath(l.Dir(), s.Name)
		if s.Sealed != (path != l.Dir()+"/"+s.Name) || !exists(path) {
			t.Fatalf("segment %s (sealed %v) is not where the log says", s.Name, s.Sealed)
		}
	}
	if segs[len(segs)-1].Sealed {
		t.Fatalf("the tail is in sealed/: %+v", segs)
	}
}
