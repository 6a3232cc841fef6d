package taildir

import (
	"bytes"
	"log/slog"
	"slices"
	"time"
)

// This file recognises copies: copytruncate's copy of a log (complete, or
// still being written when a scan sees it) and a file moved across file
// systems. A copy goes on from where its original stopped, so nothing is
// read twice; a new file that only starts like another (the same banner) is
// told apart by the bytes at its end and before the position.

// tailLost is the identity of a file that was truncated or vanished, kept for
// a while so that its copy (copytruncate's, or one moved across file systems)
// is read from where the original stopped instead of from the start.
type tailLost struct {
	from  fileID
	fp    fingerprint
	head  []byte // the fingerprinted bytes, when known (not after a restart)
	pos   int64
	tail  []byte
	path  string
	until time.Time
}

// tailLostTTL is how long a lost identity waits for its copy.
const tailLostTTL = time.Minute

// originOf finds what a new file t copies, given its first bytes and size:
// a lost identity (its original was truncated or vanished) or a followed
// file (the copy is complete or still being written, the original not yet
// truncated). Copytruncate may truncate the original at any moment, also
// after the scan that found t checked the followed files: the originals are
// therefore checked after t's bytes were read, and again when no original
// was found, since a truncation during the comparison makes a copy look like
// a file of its own, which would be read again from 0.
func (s *Source) originOf(t *tailFile, prefix []byte, size int64, now time.Time) (*tailLost, int, *tailFile) {
	s.checkOriginals(t, prefix, now)
	// Each further turn needs another truncation while the previous one
	// compared: a few turns are plenty.
	for range 3 {
		if l, i := s.copyOfLost(t, prefix, size); l != nil {
			return l, i, nil
		}
		if live := s.copyOfLive(t); live != nil {
			return nil, -1, live
		}
		if !s.checkOriginals(t, prefix, now) {
			break
		}
	}
	return nil, -1, nil
}

// checkOriginals checks the open files that t may copy for truncation and
// reports whether one was truncated (and is now a lost identity).
func (s *Source) checkOriginals(t *tailFile, prefix []byte, now time.Time) (truncated bool) {
	for _, o := range slices.Clone(s.order) {
		if o == t || o.f == nil || o.gone || o.copyOf != nil || o.fp.n < tailCopyMinFP || !o.startsLike(prefix) {
			continue
		}
		if _, cut, _ := s.verify(o, now); cut {
			truncated = true
		}
	}
	return truncated
}

// copyOfLost finds a lost identity that the new file copies: same first
// bytes (a long enough prefix) and, where the position falls inside the new
// file, the same bytes just before it.
func (s *Source) copyOfLost(t *tailFile, prefix []byte, size int64) (*tailLost, int) {
	for i := range s.lost {
		l := &s.lost[i]
		if l.from == t.id || l.fp.n < tailCopyMinFP || !l.fp.matches(prefix) {
			continue
		}
		if l.pos <= size && !s.tailMatches(t.f, l.pos, l.tail) {
			continue
		}
		return l, i
	}
	return nil, -1
}

// copyOfLive finds a followed file that the new file is a copy of (or, while
// the copy is still being written, a beginning of).
func (s *Source) copyOfLive(t *tailFile) *tailFile {
	for _, o := range s.order {
		if o.id != t.id && !o.gone && o.copyOf == nil && o.fp.n >= tailCopyMinFP && s.mayCopy(o, t.f) {
			return o
		}
	}
	return nil
}

// tailCopyWindow is how many bytes at the end of a possible copy are compared
// with the original: a file that merely starts like another (the same banner)
// differs there, a copy does not.
const tailCopyWindow = 256

// mayCopy reports whether c holds the same bytes as o at its start and at its
// end: what a copy of o, complete or still being written, holds.
func (s *Source) mayCopy(o *tailFile, c tailHandle) bool {
	size := fileSize(c)
	if size == 0 {
		return false
	}
	n := int(min(size, int64(max(o.fp.n, 1))))
	head := make([]byte, n)
	if k, err := readAtMost(c, head, 0); err != nil || k != n {
		return false
	}
	if n >= o.fp.n {
		if !o.fp.matches(head) {
			return false
		}
	} else if !s.originalHas(o, head, 0) {
		return false
	}
	k := min(size, tailCopyWindow)
	end := make([]byte, k)
	if got, err := readAtMost(c, end, size-k); err != nil || int64(got) != k {
		return false
	}
	return s.originalHas(o, end, size-k)
}

// originalHas reports whether o holds want at off, opening o by name when it
// is closed.
func (s *Source) originalHas(o *tailFile, want []byte, off int64) bool {
	f := o.f
	if f == nil {
		var err error
		if f, err = s.fsys.Open(o.path); err != nil {
			return false
		}
		defer f.Close()
		if id, ok := handleID(f); !ok || id != o.id {
			return false
		}
	}
	got := make([]byte, len(want))
	n, err := readAtMost(f, got, off)
	return err == nil && n == len(got) && bytes.Equal(got, want)
}

// recheckCopy looks at a waiting copy again: once it stops holding the same
// bytes as its original (someone wrote to it), it is read as a file of its
// own, from 0. A copy that stays identical waits as long as the original
// lives: everything in it is read from the original.
func (s *Source) recheckCopy(t *tailFile) {
	if s.mayCopy(t.copyOf, t.f) {
		return
	}
	s.log.Info("file is not a copy any more; reading it from 0",
		slog.String("file", t.path), slog.String("original", t.copyOf.path))
	t.copyOf, t.pos = nil, 0
	t.setHead(s.prefix(t.f))
	t.reset()
	s.journal(t) // a waiting copy was not journaled
}

func (s *Source) tailMatches(f tailHandle, pos int64, tail []byte) bool {
	if len(tail) == 0 || int64(len(tail)) > pos {
		return len(tail) == 0
	}
	buf := make([]byte, len(tail))
	n, err := readAtMost(f, buf, pos-int64(len(tail)))
	return err == nil && n == len(tail) && bytes.Equal(buf, tail)
}

// resolveCopies starts the copies waiting for orig, now that orig was
// truncated or is gone: they go on from where orig stopped.
func (s *Source) resolveCopies(orig *tailFile) {
	for _, c := range s.order {
		if c.copyOf != orig {
			continue
		}
		c.copyOf = nil
		c.setHead(s.prefix(c.f))
		size := fileSize(c.f)
		if !orig.fp.matches(s.prefix(c.f)) || orig.pos <= size && !s.tailMatches(c.f, orig.pos, orig.tail) {
			s.log.Info("file is not a copy after all; reading it from 0", slog.String("file", c.path))
		} else {
			c.pos = min(orig.pos, size)
			c.reset()
			c.keepTail(c.pos)
			s.log.Info("copy of a truncated or vanished file goes on where that one stopped",
				slog.String("file", c.path), slog.String("original", orig.path), slog.Int64("pos", c.pos))
		}
		s.journal(c) // a waiting copy was not journaled
	}
}

// keepLost remembers t's identity for a while, for a copy of it.
func (s *Source) keepLost(t *tailFile, now time.Time) {
	if t.fp.n >= tailCopyMinFP {
		s.lost = append(s.lost, tailLost{from: t.id, fp: t.fp, head: slices.Clone(t.head), pos: t.pos,
			tail: slices.Clone(t.tail), path: t.path, until: now.Add(tailLostTTL)})
	}
}

// classify decides about a file admitted short: once it has content it is
// either a copy (complete, or still being written) or a file of its own. It
// reports whether t may be read now.
func (s *Source) classify(t *tailFile, now time.Time) bool {
	prefix := s.prefix(t.f)
	if len(prefix) == 0 {
		return false
	}
	size := fileSize(t.f)
	l, i, live := s.originOf(t, prefix, size, now)
	if l != nil {
		t.fresh, t.pos = false, min(l.pos, size)
		s.log.Info("new file is a copy of a truncated or vanished file; starting where that one stopped",
			slog.String("file", t.path), slog.String("original", l.path), slog.Int64("pos", t.pos))
		s.lost = slices.Delete(s.lost, i, i+1)
		t.setHead(prefix)
		t.reset()
		t.keepTail(t.pos)
		s.journal(t)
		return true
	}
	if live != nil {
		t.fresh, t.copyOf = false, live
		s.log.Info("new file is a copy of a file still being read; waiting until that one is truncated or gone",
			slog.String("file", t.path), slog.String("original", live.path))
		return false
	}
	if size < tailFPMax {
		for _, l := range s.lost {
			if len(prefix) < l.fp.n && len(l.head) >= len(prefix) && bytes.Equal(l.head[:len(prefix)], prefix) {
				return false // may be a copy still being written: wait for more of it
			}
		}
	}
	t.fresh = false
	t.setHead(prefix)
	return true
}
