package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The read-only view of a log directory, for Inspect, Verify and OpenReader:
// it lists the log directory and sealed/ (unlike Open, which trusts the
// manifest) and resolves them the same way, changing nothing.

// sealedListing is what sealed/ holds.
type sealedListing struct {
	segs   []segFile // segment files, oldest first
	broken []string  // evidence files
	other  []string  // anything else with a segment-like name
}

// listSealed lists sealed/ with the size of every segment. A missing sealed/
// lists as empty.
func listSealed(dir string) (sealedListing, error) {
	var l sealedListing
	ents, err := os.ReadDir(filepath.Join(dir, sealedDirName))
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return l, err
	}
	for _, e := range ents {
		name := e.Name()
		first, rest, ok := parseSegmentName(name)
		if e.IsDir() || !ok {
			continue
		}
		switch {
		case rest == "":
			info, err := e.Info()
			if errors.Is(err, os.ErrNotExist) {
				continue // released while we listed
			}
			if err != nil {
				return l, err
			}
			l.segs = append(l.segs, segFile{first: first, size: info.Size(), sealed: true})
		case strings.HasPrefix(rest, suffixBroken):
			l.broken = append(l.broken, name)
		default:
			l.other = append(l.other, name)
		}
	}
	return l, nil
}

// chain orders the sealed segments in front of the tail (nil when the log
// directory holds none) and splits off what cannot be part of the log:
// sealed segments wholly before front (released, not yet removed) and any at
// or after the tail's first index (a move a crash interrupted, or a stray).
func chain(sealed []segFile, tail *segFile, front uint64) (live, released, after []segFile) {
	sealed = slices.Clone(sealed)
	slices.SortFunc(sealed, func(a, b segFile) int { return cmpUint(a.first, b.first) })
	for i, s := range sealed {
		if tail != nil && s.first >= tail.first {
			after = append(after, sealed[i:]...)
			break
		}
		end := uint64(0)
		switch {
		case i+1 < len(sealed) && (tail == nil || sealed[i+1].first < tail.first):
			end = sealed[i+1].first
		case tail != nil:
			end = tail.first
		}
		if end != 0 && end <= front {
			released = append(released, s)
			continue
		}
		live = append(live, s)
	}
	return live, released, after
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// dirView is a log directory as the next Open would see it, read without
// changing anything.
type dirView struct {
	st       dirState
	man      manifestState
	segs     []segFile // live segments, oldest first; the last is the tail
	front    uint64    // FirstIndex
	released []string  // files of released segments still in sealed/
	unsealed []string  // segment files before the tail in the log directory (an interrupted roll)
	broken   []string  // evidence, in the log directory and in sealed/
	strays   []string  // sealed/ files that are no part of the log
}

// viewDir lists dir and sealed/ and resolves them the way Open would.
func viewDir(dir string) (*dirView, error) {
	st, err := readDirState(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	man, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	l, err := listSealed(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", sealedDirName, err)
	}
	v := &dirView{st: st, man: man, broken: st.broken}
	for _, b := range l.broken {
		v.broken = append(v.broken, sealedDirName+"/"+b)
	}
	for _, o := range l.other {
		v.strays = append(v.strays, sealedDirName+"/"+o)
	}
	sealed := l.segs
	segs, tail := splitTail(st.segs)
	for _, s := range segs {
		v.unsealed = append(v.unsealed, s.name())
		if !slices.ContainsFunc(sealed, func(x segFile) bool { return x.first == s.first }) {
			sealed = append(sealed, s)
		}
	}
	if tail == nil && len(sealed) > 0 {
		slices.SortFunc(sealed, func(a, b segFile) int { return cmpUint(a.first, b.first) })
		t := sealed[len(sealed)-1]
		tail, sealed = &t, sealed[:len(sealed)-1]
	}
	live, released, after := chain(sealed, tail, man.front)
	for _, s := range released {
		v.released = append(v.released, relTo(dir, s.path(dir)))
	}
	for _, s := range after {
		if s.first != tail.first {
			v.strays = append(v.strays, relTo(dir, s.path(dir)))
		}
	}
	v.segs = live
	if tail != nil {
		v.segs = append(v.segs, *tail)
	}
	v.front = 1
	if len(v.segs) > 0 {
		v.front = max(man.front, v.segs[0].first)
	}
	return v, nil
}
