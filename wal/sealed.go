package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/flumed/flumed/internal/fsutil"
)

// The layout (doc.go, "Files"): the log directory holds the tail segment,
// which tidwall appends to; every segment before it is in sealed/, listed by
// the manifest. Open reads the manifest instead of listing sealed/, and lists
// sealed/ only when the manifest disagrees with the log directory, which only
// a crash leaves (FORMAT.md, "What a crash leaves behind").

// layoutFix sets right at Open what a crash left of the layout.
type layoutFix struct {
	dir     string
	fs      fsutil.FS
	rec     *Recovered
	man     manifestState
	moved   bool // names changed in sealed/ or the log directory
	ensured bool // sealed/ exists, durably
}

// resolveLayout runs after tidyDir and before the tail is repaired. It moves
// every segment file of the log directory but the last into sealed/ (rolls a
// crash interrupted), finds
// the sealed segments (from the manifest, or by listing sealed/ when the
// manifest is missing, damaged or disagrees with the directory), removes
// released segments a crash left behind, creates a tail if a crash lost it,
// and makes all of that durable. It returns the live segments (the last one
// is the tail, in the log directory), the manifest as it now is on disk, and
// whether sealed/ is known durable.
func resolveLayout(dir string, fsys fsutil.FS, st dirState, rec *Recovered) ([]segFile, manifestState, bool, error) {
	man, err := readManifest(dir)
	if err != nil {
		return nil, man, false, err
	}
	x := &layoutFix{dir: dir, fs: fsys, rec: rec, man: man}
	rebuild := man.bad != nil || !man.exists && st.sealed
	rewrite := man.torn || rebuild
	segs, tail := splitTail(st.segs)
	// A segment file before the tail in the log directory: a roll whose
	// move a crash interrupted (after a power loss, maybe several). Only a
	// listing of sealed/ says for sure where the segments around it end.
	for _, s := range segs {
		if err := x.moveIn(s); err != nil {
			return nil, man, false, err
		}
		rebuild = true
	}
	if tail == nil && (st.sealed || man.exists) || tail != nil && man.exists && !x.follows(tail.first) {
		rebuild = true
	}
	// Where the log goes on if no segment is left anywhere: never below an
	// index it already used.
	next := max(x.man.front, x.man.lastEnd())
	if rebuild {
		if tail, err = x.rebuild(tail); err != nil {
			return nil, man, false, err
		}
		rewrite = true
	}
	if tail == nil && next > 1 {
		// No segment anywhere, but records were written and released (the
		// new tail's creation was lost): a new log would restart at 1.
		t, err := x.createTail(next)
		if err != nil {
			return nil, man, false, err
		}
		tail = &t
		x.man.front, x.man.gone = next, next
		rewrite = true
	}
	if len(x.man.dead) > 0 {
		if err := x.sweep(); err != nil {
			return nil, man, false, err
		}
		rewrite = true
	}
	if x.moved {
		// Sealed first: a name must be durable where it arrives before it is
		// durably gone from where it left.
		if err := fsys.SyncDir(filepath.Join(dir, sealedDirName)); err != nil {
			return nil, man, false, err
		}
		if err := fsys.SyncDir(dir); err != nil {
			return nil, man, false, err
		}
	}
	ready := st.sealed && man.exists && !rebuild
	if rewrite {
		if err := x.ensureSealedDir(); err != nil {
			return nil, man, false, err
		}
		m := newManifest(fsys, dir, x.man)
		if err := m.rewrite(); err != nil {
			return nil, man, false, err
		}
		x.man, ready = m.st, true
		rec.Rewrote = true
	}
	out := make([]segFile, 0, len(x.man.live)+1)
	for _, s := range x.man.live {
		out = append(out, segFile{first: s.first, size: s.size, sealed: true})
	}
	if tail != nil {
		out = append(out, *tail)
	}
	return out, x.man, ready, nil
}

// follows reports whether the manifest's sealed segments lead up to a tail
// starting at first: the last one ends there, or, with none, the log starts
// in the tail. Otherwise seals were lost and sealed/ must be listed.
func (x *layoutFix) follows(first uint64) bool {
	if len(x.man.live) > 0 {
		return x.man.lastEnd() == first
	}
	return first <= max(x.man.front, 1)
}

// ensureSealedDir creates sealed/ and makes its name durable before anything
// is moved into it (or a crash could orphan the directory with its files).
func (x *layoutFix) ensureSealedDir() error {
	if x.ensured {
		return nil
	}
	err := os.Mkdir(filepath.Join(x.dir, sealedDirName), 0o750)
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create %s: %w", sealedDirName, err)
	}
	x.ensured = true
	return x.fs.SyncDir(x.dir)
}

// moveIn moves a segment file of the log directory into sealed/. If sealed/
// already has it under the same name (a rename a crash left half done), the
// log directory's name is dropped; a different file there is set aside as
// evidence first.
func (x *layoutFix) moveIn(s segFile) error {
	if err := x.ensureSealedDir(); err != nil {
		return err
	}
	name := s.name()
	from, to := filepath.Join(x.dir, name), filepath.Join(x.dir, sealedDirName, name)
	x.moved = true
	if same, err := sameFile(from, to); err != nil {
		return err
	} else if same {
		if err := x.fs.Remove(from); err != nil {
			return fmt.Errorf("finish moving %s: %w", name, err)
		}
		x.rec.Moved = append(x.rec.Moved, name+" -> "+sealedDirName+"/")
		return nil
	}
	if err := x.setAside(to); err != nil {
		return err
	}
	if err := x.fs.Rename(from, to); err != nil {
		return fmt.Errorf("seal %s: %w", name, err)
	}
	x.rec.Moved = append(x.rec.Moved, name+" -> "+sealedDirName+"/")
	return nil
}

// sameFile reports whether a and b are two names of one file; false when b
// does not exist.
func sameFile(a, b string) (bool, error) {
	fb, err := os.Lstat(b)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	fa, err := os.Lstat(a)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}

// setAside renames path, if it exists, to the first free path.broken[.N].
func (x *layoutFix) setAside(path string) error {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	for i := 0; ; i++ {
		cand := path + suffixBroken
		if i > 0 {
			cand += "." + strconv.Itoa(i)
		}
		if _, err := os.Lstat(cand); errors.Is(err, os.ErrNotExist) {
			if err := x.fs.Rename(path, cand); err != nil {
				return fmt.Errorf("set aside %s: %w", path, err)
			}
			x.moved = true
			x.rec.Moved = append(x.rec.Moved, relTo(x.dir, path)+" -> "+relTo(x.dir, cand))
			return nil
		}
	}
}

func relTo(dir, path string) string {
	if r, err := filepath.Rel(dir, path); err == nil {
		return r
	}
	return path
}

// rebuild lists sealed/ and makes it the truth: the sealed segments are the
// files there, each ending where the next begins; those wholly before the
// manifest's front are removed; one at or after the tail is a move a crash
// interrupted (the same file as the tail: dropped) or a stray (set aside).
// Without a tail, the last sealed segment moves back to be the tail. It
// returns the tail.
func (x *layoutFix) rebuild(tail *segFile) (*segFile, error) {
	l, err := listSealed(x.dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", sealedDirName, err)
	}
	x.rec.Rebuilt = true
	segs := l.segs
	if tail == nil && len(segs) > 0 {
		last := segs[len(segs)-1]
		name := last.name()
		from, to := filepath.Join(x.dir, sealedDirName, name), filepath.Join(x.dir, name)
		if err := x.fs.Rename(from, to); err != nil {
			return nil, fmt.Errorf("move %s back: %w", name, err)
		}
		x.moved = true
		x.rec.Moved = append(x.rec.Moved, sealedDirName+"/"+name+" -> .")
		last.sealed = false
		tail, segs = &last, segs[:len(segs)-1]
	}
	live, released, after := chain(segs, tail, x.man.front)
	for _, s := range after {
		path := s.path(x.dir)
		same, err := sameFile(tail.path(x.dir), path)
		if err != nil {
			return nil, err
		}
		if !same {
			if err := x.setAside(path); err != nil {
				return nil, err
			}
			continue
		}
		if err := x.fs.Remove(path); err != nil {
			return nil, fmt.Errorf("finish moving %s: %w", s.name(), err)
		}
		x.moved = true
		x.rec.Moved = append(x.rec.Moved, sealedDirName+"/"+s.name()+" -> .")
	}
	for _, s := range released {
		if err := x.remove(s.path(x.dir)); err != nil {
			return nil, err
		}
	}
	x.man.live, x.man.dead = nil, nil
	for i, s := range live {
		end := tail.first
		if i+1 < len(live) {
			end = live[i+1].first
		}
		x.man.live = append(x.man.live, sealEntry{first: s.first, end: end, size: s.size})
	}
	// Nothing before the first segment exists: say so, or the next Open
	// would wonder where the segments before it went.
	if len(live) > 0 {
		x.man.front = max(x.man.front, live[0].first)
	} else if tail != nil {
		x.man.front = max(x.man.front, tail.first)
	}
	x.man.gone = x.man.front
	return tail, nil
}

// sweep removes the released segments the manifest does not know removed
// (a crash during Release).
func (x *layoutFix) sweep() error {
	for _, s := range x.man.dead {
		if err := x.remove(filepath.Join(x.dir, sealedDirName, segmentName(s.first))); err != nil {
			return err
		}
	}
	x.man.dead, x.man.gone = nil, x.man.front
	return nil
}

func (x *layoutFix) remove(path string) error {
	err := x.fs.Remove(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove released segment: %w", err)
	}
	x.moved = true
	x.rec.Removed = append(x.rec.Removed, relTo(x.dir, path))
	return nil
}

// createTail creates an empty tail segment at index first.
func (x *layoutFix) createTail(first uint64) (segFile, error) {
	name := segmentName(first)
	f, err := x.fs.OpenFile(filepath.Join(x.dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return segFile{}, fmt.Errorf("create tail segment: %w", err)
	}
	if err := f.Close(); err != nil {
		return segFile{}, err
	}
	x.moved = true
	x.rec.Created = name
	return segFile{first: first}, nil
}
