package wal

// The layout contract: the log directory holds the tail, sealed/ every
// segment before it, and the manifest lists them. A power loss may keep any
// subset of the renames, creations and manifest appends made since the last
// sync; each case below builds one such directory by hand, and Open must find
// every record exactly once (a segment under two names counts once, a
// segment in no name the log looks at is found by listing sealed/), set right
// what the crash left, and leave a directory the next Open does not touch.
// Inspect, before that Open, must foresee the same records.

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// sealedEnv is a clean sealed log of n records to damage.
type sealedEnv struct {
	t    *testing.T
	dir  string
	n    uint64
	segs []SegmentInfo // as the log listed them before the damage
}

func (e sealedEnv) sealed(name string) string { return filepath.Join(e.dir, sealedDirName, name) }
func (e sealedEnv) top(name string) string    { return filepath.Join(e.dir, name) }
func (e sealedEnv) tail() SegmentInfo         { return e.segs[len(e.segs)-1] }
func (e sealedEnv) lastSealed() SegmentInfo   { return e.segs[len(e.segs)-2] }

func (e sealedEnv) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// dropEntries cuts the last k entries off the manifest.
func (e sealedEnv) dropEntries(k int) {
	e.t.Helper()
	path := e.top(manifestName)
	fi, err := os.Stat(path)
	e.must(err)
	e.must(os.Truncate(path, fi.Size()-int64(k)*manifestEntry))
}

// editManifest rewrites the manifest as edit leaves its state.
func (e sealedEnv) editManifest(edit func(m *manifestState)) {
	e.t.Helper()
	m, err := readManifest(e.dir)
	e.must(err)
	edit(&m)
	e.must(os.WriteFile(e.top(manifestName), m.encode(), 0o640))
}

func (e sealedEnv) appendManifest(b []byte) {
	e.t.Helper()
	f, err := os.OpenFile(e.top(manifestName), os.O_WRONLY|os.O_APPEND, 0)
	e.must(err)
	_, err = f.Write(b)
	e.must(err)
	e.must(f.Close())
}

// layoutCase is one directory a crash may leave.
type layoutCase struct {
	name   string
	damage func(e sealedEnv) (first uint64)
	check  func(e sealedEnv, rec Recovered) bool // what repair must say it did
}

func TestOpenSetsRightWhatACrashLeftInTheLayout(t *testing.T) {
	const n = 150
	cases := []layoutCase{
		{"a seal whose rename was lost: the segment is still in the log directory", func(e sealedEnv) uint64 {
			s := e.lastSealed().Name
			e.must(os.Rename(e.sealed(s), e.top(s)))
			return 1
		}, func(e sealedEnv, r Recovered) bool { return len(r.Moved) == 1 && r.Rebuilt }},
		{"a seal whose rename and manifest entry were both lost", func(e sealedEnv) uint64 {
			s := e.lastSealed().Name
			e.must(os.Rename(e.sealed(s), e.top(s)))
			e.dropEntries(1)
			return 1
		}, func(e sealedEnv, r Recovered) bool { return len(r.Moved) == 1 && r.Rebuilt }},
		{"a seal whose rename persisted but not its manifest entry", func(e sealedEnv) uint64 {
			e.dropEntries(1)
			return 1
		}, func(e sealedEnv, r Recovered) bool { return r.Rebuilt && len(r.Moved) == 0 }},
		{"several rolls of one batch whose renames a power loss undid: the segments go back into sealed/", func(e sealedEnv) uint64 {
			for _, s := range e.segs[len(e.segs)-4 : len(e.segs)-1] {
				e.must(os.Rename(e.sealed(s.Name), e.top(s.Name)))
			}
			return 1
		}, func(e sealedEnv, r Recovered) bool { return len(r.Moved) == 3 && r.Rebuilt }},
		{"several rolls whose renames and manifest entries were lost", func(e sealedEnv) uint64 {
			for _, s := range e.segs[len(e.segs)-4 : len(e.segs)-1] {
				e.must(os.Rename(e.sealed(s.Name), e.top(s.Name)))
			}
			e.dropEntries(3)
			return 1
		}, func(e sealedEnv, r Recovered) bool { return len(r.Moved) == 3 && r.Rebuilt }},
		{"a rename half done: the segment under both names counts once", func(e sealedEnv) uint64 {
			s := e.lastSealed().Name
			e.must(os.Link(e.sealed(s), e.top(s)))
			return 1
		}, func(e sealedEnv, r Recovered) bool { return !exists(e.top(e.lastSealed().Name)) }},
		{"two different files under one segment name: one is set aside", func(e sealedEnv) uint64 {
			s := e.lastSealed().Name
			b, err := os.ReadFile(e.sealed(s))
			e.must(err)
			e.must(os.WriteFile(e.top(s), b, 0o640))
			return 1
		}, func(e sealedEnv, r Recovered) bool { return exists(e.sealed(e.lastSealed().Name + suffixBroken)) }},
		{"the new tail's creation lost after the old one was sealed", func(e sealedEnv) uint64 {
			tail := e.tail()
			e.must(os.Rename(e.top(tail.Name), e.sealed(tail.Name)))
			e.appendManifest(sealBytes(nil, sealEntry{first: tail.First, end: e.n + 1, size: tail.Size}))
			return 1
		}, func(e sealedEnv, r Recovered) bool { return movedBack(e, r) }},
		{"the new tail's creation and the seal's manifest entry both lost", func(e sealedEnv) uint64 {
			tail := e.tail()
			e.must(os.Rename(e.top(tail.Name), e.sealed(tail.Name)))
			return 1
		}, func(e sealedEnv, r Recovered) bool { return r.Rebuilt && movedBack(e, r) }},
		{"every seal entry lost while the renames persisted: found by listing", func(e sealedEnv) uint64 {
			e.dropEntries(len(e.segs) - 1) // the header alone is left
			return 1
		}, func(e sealedEnv, r Recovered) bool { return r.Rebuilt }},
		{"a torn manifest entry: rewritten, nothing listed", func(e sealedEnv) uint64 {
			e.appendManifest([]byte{kindSeal, 0, 0, 0, 1, 2, 3, 4, 5, 6})
			return 1
		}, func(e sealedEnv, r Recovered) bool { return r.Rewrote && !r.Rebuilt }},
		{"a zeroed last manifest entry: rewritten, nothing listed", func(e sealedEnv) uint64 {
			e.appendManifest(make([]byte, manifestEntry))
			return 1
		}, func(e sealedEnv, r Recovered) bool { return r.Rewrote && !r.Rebuilt }},
		{"a manifest damaged in the middle: rebuilt from sealed/", func(e sealedEnv) uint64 {
			b, err := os.ReadFile(e.top(manifestName))
			e.must(err)
			b[2*manifestEntry+5] ^= 0x20
			e.must(os.WriteFile(e.top(manifestName), b, 0o640))
			return 1
		}, func(e sealedEnv, r Recovered) bool { return r.Rebuilt }},
		{"a lost manifest: rebuilt from sealed/", func(e sealedEnv) uint64 {
			e.must(os.Remove(e.top(manifestName)))
			return 1
		}, func(e sealedEnv, r Recovered) bool { return r.Rebuilt }},
		{"a Release interrupted after the front was recorded: the released files go", func(e sealedEnv) uint64 {
			return e.interruptedRelease(false)
		}, func(e sealedEnv, r Recovered) bool {
			return len(r.Removed) == 2 && !exists(e.sealed(e.segs[0].Name)) && !r.Rebuilt
		}},
		{"a Release interrupted and the manifest lost: released records come back, none is lost", func(e sealedEnv) uint64 {
			e.interruptedRelease(true)
			return 1
		}, func(e sealedEnv, r Recovered) bool { return r.Rebuilt }},
		{"a stray segment file in sealed/ past the tail, found when the manifest is lost: set aside", func(e sealedEnv) uint64 {
			e.must(os.WriteFile(e.sealed(segmentName(e.n+10)), []byte("not ours"), 0o640))
			e.must(os.Remove(e.top(manifestName)))
			return 1
		}, func(e sealedEnv, r Recovered) bool { return exists(e.sealed(segmentName(e.n+10) + suffixBroken)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			buildLog(t, dir, n)
			l := openTest(t, dir)
			e := sealedEnv{t: t, dir: dir, n: n, segs: l.Segments()}
			l.Close()
			if len(e.segs) < 5 || !e.lastSealed().Sealed {
				t.Fatalf("setup: %+v", e.segs)
			}
			first := tc.damage(e)
			rec := checkOpens(t, dir, first, n)
			if !tc.check(e, rec) {
				t.Fatalf("repair did not do what it should: %s (%+v)", rec, rec)
			}
		})
	}
}

// movedBack reports whether repair moved the last segment back out of sealed/
// to be the tail.
func movedBack(e sealedEnv, r Recovered) bool {
	return slices.Contains(r.Moved, sealedDirName+"/"+e.tail().Name+" -> .")
}

// interruptedRelease releases the first two segments, then puts their files
// back as a crash before their removal would have left them (and drops the
// manifest if lost). It returns the FirstIndex the Release set.
func (e sealedEnv) interruptedRelease(lostManifest bool) uint64 {
	e.t.Helper()
	saved := map[string][]byte{}
	for _, s := range e.segs[:2] {
		b, err := os.ReadFile(e.sealed(s.Name))
		e.must(err)
		saved[s.Name] = b
	}
	l, err := Open(e.dir, Options{SegmentSize: 4096})
	e.must(err)
	e.must(l.Release(e.segs[2].First))
	e.must(l.Close())
	for name, b := range saved {
		e.must(os.WriteFile(e.sealed(name), b, 0o640))
	}
	// As the manifest was before the gone entry: the front recorded, the
	// released segments not known removed.
	e.editManifest(func(m *manifestState) {
		for _, s := range e.segs[:2] {
			m.dead = append(m.dead, sealEntry{first: s.First, end: s.Last + 1, size: s.Size})
		}
		m.gone = 0
	})
	if lostManifest {
		e.must(os.Remove(e.top(manifestName)))
	}
	return e.segs[2].First
}

// checkOpens checks that Inspect foresees first..last, that Open then holds
// exactly the records first..last, intact, in segments that tile the log,
// and that a second Open changes nothing. It returns what the first repaired.
func checkOpens(t *testing.T, dir string, first, last uint64) Recovered {
	t.Helper()
	info, err := Inspect(dir)
	if err != nil || info.FirstIndex != first || info.LastIndex != last {
		t.Fatalf("Inspect foresees %d..%d (%v), want %d..%d", info.FirstIndex, info.LastIndex, err, first, last)
	}
	l, err := Open(dir, Options{SegmentSize: 4096})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	rec := l.Recovered()
	if l.FirstIndex() != first || l.LastIndex() != last {
		t.Fatalf("log holds %d..%d, want %d..%d (%s)", l.FirstIndex(), l.LastIndex(), first, last, rec)
	}
	intact, corrupt := scan(t, l)
	if len(corrupt) > 0 || uint64(len(intact)) != last-first+1 {
		t.Fatalf("%d intact, corrupt %v; want %d..%d intact (%s)", len(intact), corrupt, first, last, rec)
	}
	checkTiles(t, l)
	appendRange(t, l, last+1, last+5, 5)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir, Options{SegmentSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Recovered().Changed() {
		t.Fatalf("the second open repaired again: %s", l.Recovered())
	}
	if intact, corrupt := scan(t, l); len(corrupt) > 0 || uint64(len(intact)) != last+5-first+1 {
		t.Fatalf("after the second open: %d intact, corrupt %v", len(intact), corrupt)
	}
	return rec
}

// After Release of everything, a power loss may undo the roll that sealed the
// tail: the old tail is back in the log directory, wholly released. It opens
// as an empty log that goes on at the end, and is sealed again by the next
// roll without the manifest looking damaged.
func TestAReleasedTailThatAPowerLossBroughtBackIsSealedAgain(t *testing.T) {
	dir := t.TempDir()
	buildLog(t, dir, 150)
	l := openTest(t, dir)
	tail := l.Segments()[len(l.Segments())-1]
	saved, err := os.ReadFile(filepath.Join(dir, tail.Name))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(151); err != nil {
		t.Fatal(err)
	}
	l.Close()
	e := sealedEnv{t: t, dir: dir}
	e.must(os.Remove(e.top(segmentName(151))))
	e.must(os.WriteFile(e.top(tail.Name), saved, 0o640))
	e.editManifest(func(m *manifestState) { m.gone = 0 }) // before the gone entry
	checkOpens(t, dir, 151, 150)

	l = openTest(t, dir)
	appendRange(t, l, 156, 200, 15) // fills the old tail: it is sealed again
	if s := l.Segments(); len(s) < 2 || s[0].Name != tail.Name || !s[0].Sealed {
		t.Fatalf("segments %+v: the old tail was not sealed again", s)
	}
	l.Close()
	l = openTest(t, dir)
	if l.Recovered().Changed() || l.FirstIndex() != 151 || l.LastIndex() != 200 {
		t.Fatalf("reopened: %d..%d, repair: %s", l.FirstIndex(), l.LastIndex(), l.Recovered())
	}
}
