package taildir

import (
	"log/slog"
	"path/filepath"
	"slices"
	"time"
)

// restore places the persisted positions on the files found at startup. A
// position belongs to a file by inode (and device when known); a fingerprint,
// when known, must match too, or the inode was reused. A position whose file
// left the pattern while flumed was stopped is looked up by inode in the same
// directory and read to its end. Files without a position start at 0, or at
// their end with skipToEnd.
func (s *Source) restore(entries []tailPos) {
	now := s.clk.Now()
	var found []tailCandidate
	for _, d := range s.dirs {
		if s.watch != nil {
			// Watch before listing, so nothing created in between is missed.
			d.watched = s.watch.watch(d.path)
		}
		if _, err := s.fsys.Stat(d.path); err != nil {
			s.log.Warn("directory does not exist (yet); it is rescanned until it does",
				slog.String("dir", d.path), slog.String("groups", groupsLabel(d.groups)))
		}
		d.listed = now
		found = append(found, s.list(d)...)
	}
	unplaced := slices.Clone(entries)
	take := func(id fileID) (tailPos, bool) {
		for i, e := range unplaced {
			if e.Inode == id.ino && (!e.HasDev || e.Dev == id.dev) {
				unplaced = slices.Delete(unplaced, i, i+1)
				return e, true
			}
		}
		return tailPos{}, false
	}
	var fresh []tailCandidate
	seen := make(map[fileID]bool)
	for _, c := range found {
		if seen[c.id] {
			continue
		}
		seen[c.id] = true
		e, ok := take(c.id)
		if !ok || s.resume(c, e, false, now) == nil {
			fresh = append(fresh, c)
		}
	}
	for _, e := range unplaced {
		if s.findRotated(e, now) {
			continue
		}
		s.log.Info("file of a saved position is gone", slog.String("file", e.File),
			slog.Uint64("inode", e.Inode), slog.Int64("pos", e.Pos))
		s.loseEntry(e, now)
	}
	for _, c := range fresh {
		s.admit(c, true, now)
	}
	s.sortOrder()
}

// resume starts following c from its saved position e. A changed fingerprint
// (inode reused, or rewritten) or a file shorter than the position
// (truncated) restarts at 0.
func (s *Source) resume(c tailCandidate, e tailPos, gone bool, now time.Time) *tailFile {
	f, err := s.fsys.Open(c.path)
	if err != nil {
		return nil
	}
	if id, ok := handleID(f); !ok || id != c.id {
		f.Close()
		return nil
	}
	t := &tailFile{id: c.id, birth: f.Birth(), path: c.path, group: c.group, f: f, mtime: c.mtime, active: now, gone: gone}
	prefix := s.prefix(f)
	size := fileSize(f)
	fp := parseFingerprint(e.FPN, e.FP)
	t.pos, t.tail = e.Pos, unhex(e.Tail)
	switch {
	case fp.n > 0 && !fp.matches(prefix) || e.Birth != 0 && t.birth != 0 && e.Birth != t.birth:
		s.log.Warn("inode holds a different file than the saved position (inode reused or rewritten); reading it from 0",
			slog.String("file", c.path), slog.Uint64("inode", c.id.ino), slog.Int64("savedPos", e.Pos))
		s.loseEntry(e, now)
		t.pos, t.tail = 0, nil
	case e.Pos > size || !s.tailMatches(f, e.Pos, t.tail):
		s.log.Warn("file was truncated while flumed was stopped; reading it from 0",
			slog.String("file", c.path), slog.Int64("savedPos", e.Pos), slog.Int64("size", size))
		s.loseEntry(e, now)
		t.pos, t.tail = 0, nil
	case gone:
		// The journal keeps the name under which the file matched the
		// pattern: the rename may have happened while flumed ran, too.
		s.log.Info("file left the pattern; found by its inode under a new name, reading it to its end",
			slog.String("from", e.File), slog.String("to", c.path), slog.Int64("pos", e.Pos))
	case e.File != c.path:
		s.log.Info("file was renamed while flumed was stopped; keeping its position",
			slog.String("from", e.File), slog.String("to", c.path), slog.Int64("pos", e.Pos))
	}
	t.setHead(prefix)
	t.reset()
	if t.pos > 0 && len(t.tail) == 0 {
		t.keepTail(t.pos)
	}
	s.log.Info("following file", slog.String("file", c.path), slog.String("group", c.group.name),
		slog.Uint64("inode", c.id.ino), slog.Int64("pos", t.pos), slog.Bool("gone", gone))
	s.track(t)
	return t
}

// findRotated looks for the file of e, renamed out of the pattern while
// flumed was stopped, among all files of its directory. Only entries with a
// device and a fingerprint or creation time qualify: an inode alone may have
// been reused.
func (s *Source) findRotated(e tailPos, now time.Time) bool {
	d := s.dirs[filepath.Dir(e.File)]
	if d == nil || !e.HasDev || e.FPN == 0 && e.Birth == 0 {
		return false
	}
	names, err := s.fsys.ReadDir(d.path)
	if err != nil {
		return false
	}
	for _, name := range names {
		c, ok := s.statCandidate(filepath.Join(d.path, name))
		if !ok || c.id != (fileID{dev: e.Dev, ino: e.Inode}) || s.files[c.id] != nil {
			continue
		}
		if !s.sameIdentity(c.path, e) {
			return false // another file got that inode: not ours to read
		}
		c.group = d.groups[0]
		return s.resume(c, e, true, now) != nil
	}
	return false
}

// sameIdentity reports whether path holds the file e was saved for: the same
// first bytes and, where known, the same creation time.
func (s *Source) sameIdentity(path string, e tailPos) bool {
	f, err := s.fsys.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	birth := f.Birth()
	return parseFingerprint(e.FPN, e.FP).matches(s.prefix(f)) && (e.Birth == 0 || birth == 0 || e.Birth == birth)
}

// loseEntry keeps a saved identity for a while, for a copy of its file.
func (s *Source) loseEntry(e tailPos, now time.Time) {
	fp := parseFingerprint(e.FPN, e.FP)
	if fp.n < tailCopyMinFP {
		return
	}
	s.lost = append(s.lost, tailLost{from: fileID{dev: e.Dev, ino: e.Inode}, fp: fp, pos: e.Pos,
		tail: unhex(e.Tail), path: e.File, until: now.Add(tailLostTTL)})
}
