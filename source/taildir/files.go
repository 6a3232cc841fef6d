package taildir

import (
	"errors"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"time"
)

// This file decides which files the taildir source follows and from where:
// directory scans, identity by (device, inode) and fingerprint, rotation,
// truncation, idle files (copies are in copies.go). Only the source's
// goroutine uses it.

// tailDir is a watched directory and the groups whose files live in it.
type tailDir struct {
	path    string
	groups  []*taildirGroup
	mtime   time.Time // at the last listing (cachePatternMatching)
	listed  time.Time // when it was last listed
	watched bool
}

// tailCandidate is a file found by a scan.
type tailCandidate struct {
	path  string
	id    fileID
	size  int64
	mtime time.Time
	group *taildirGroup
}

// list returns the files of d matching its groups, oldest first. A missing
// directory is not an error: it may be created later.
func (s *Source) list(d *tailDir) []tailCandidate {
	names, err := s.fsys.ReadDir(d.path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Error("cannot list directory", slog.String("dir", d.path), slog.Any("err", err))
		}
		return nil
	}
	var out []tailCandidate
	for _, name := range names {
		for _, g := range d.groups {
			if !g.re.MatchString(name) {
				continue
			}
			if c, ok := s.statCandidate(filepath.Join(d.path, name)); ok {
				c.group = g
				out = append(out, c)
			}
			break
		}
	}
	slices.SortStableFunc(out, func(a, b tailCandidate) int { return a.mtime.Compare(b.mtime) })
	return out
}

// statCandidate stats path, following symlinks as Flume does; only regular
// files qualify.
func (s *Source) statCandidate(path string) (tailCandidate, bool) {
	st, err := s.fsys.Stat(path)
	if err != nil || !st.regular {
		return tailCandidate{}, false
	}
	return tailCandidate{path: path, id: st.id, size: st.size, mtime: st.mtime}, true
}

// rescan lists directories again: those fsnotify flagged, or all of them
// (periodic: only those whose mtime changed when cachePatternMatching).
func (s *Source) rescan(dirty map[string]bool, all, periodic bool, now time.Time) {
	var found []tailCandidate
	listed := make(map[string]bool)
	for _, d := range s.dirs {
		if s.watch != nil && !d.watched {
			d.watched = s.watch.watch(d.path)
			if d.watched {
				all = true // events before the watch were missed
			}
		}
		need := all || dirty[d.path]
		if !need && periodic {
			need = true
			if st, err := s.fsys.Stat(d.path); s.cfg.cachePatternMatching && err == nil {
				m := st.mtime
				// Re-list when the mtime changed, or when it is so close to the
				// last listing that a coarse clock could hide a change.
				need = !m.Equal(d.mtime) || d.listed.Sub(m) < 2*time.Second
				d.mtime = m
			}
		}
		if !need {
			continue
		}
		d.listed = now
		listed[d.path] = true
		found = append(found, s.list(d)...)
	}
	if len(listed) > 0 {
		s.reconcile(found, listed, now)
	}
}

// reconcile applies a scan of the listed directories: known files may have a
// new name, new files are admitted, and files no longer found become gone.
func (s *Source) reconcile(found []tailCandidate, listed map[string]bool, now time.Time) {
	seen := make(map[fileID]bool, len(found))
	var fresh []tailCandidate
	for _, c := range found {
		if seen[c.id] {
			continue // hard links: the first name wins
		}
		seen[c.id] = true
		t := s.files[c.id]
		if t == nil {
			fresh = append(fresh, c)
			continue
		}
		if t.f == nil && !s.sameFile(t, c.path) {
			// Closed while idle and the inode now holds another file.
			s.log.Info("inode reused by a different file", slog.String("file", c.path), slog.Uint64("inode", c.id.ino))
			s.forget(t, now)
			fresh = append(fresh, c)
			continue
		}
		if t.path != c.path {
			s.log.Info("file renamed; keeping its position", slog.String("from", t.path),
				slog.String("to", c.path), slog.Int64("pos", t.pos))
			t.path = c.path
		}
		t.mtime = c.mtime
		t.gone, t.missed = false, false
	}
	for _, t := range slices.Clone(s.order) {
		if seen[t.id] || !listed[t.group.dir] || t.gone {
			continue
		}
		if t.f == nil {
			// A listing is not a snapshot: while logrotate renames app.log.1
			// to app.log.2, it may miss the file under both names. Forgotten
			// now, the file would be read again from 0 once found; so only a
			// second listing in a row that misses it forgets it.
			if !t.missed {
				t.missed = true
				continue
			}
			s.log.Info("file vanished while closed", slog.String("file", t.path), slog.Int64("pos", t.pos))
			s.forget(t, now)
			continue
		}
		s.log.Info("file rotated away or deleted; reading it to its end",
			slog.String("file", t.path), slog.Int64("pos", t.pos))
		t.gone = true
	}
	for _, c := range fresh {
		s.admit(c, false, now)
	}
	s.sortOrder()
}

// sameFile reports whether path still holds the file t fingerprinted.
func (s *Source) sameFile(t *tailFile, path string) bool {
	if t.fp.n == 0 {
		return true
	}
	f, err := s.fsys.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, t.fp.n)
	n, err := readAtMost(f, buf, 0)
	return err == nil && t.fp.matches(buf[:n])
}

// sortOrder keeps files oldest first, as Flume reads them, and the cursor on
// the same file.
func (s *Source) sortOrder() {
	var cur *tailFile
	if s.cursor < len(s.order) {
		cur = s.order[s.cursor]
	}
	slices.SortStableFunc(s.order, func(a, b *tailFile) int { return a.mtime.Compare(b.mtime) })
	s.cursor = max(0, slices.Index(s.order, cur))
}

// admit starts following a file not known before. It starts where a lost
// identity it copies stopped, waits when it copies a live file, and otherwise
// starts at 0, or at its end with skipToEnd at startup.
func (s *Source) admit(c tailCandidate, startup bool, now time.Time) *tailFile {
	f, err := s.fsys.Open(c.path)
	if err != nil {
		s.log.Info("file disappeared before it could be opened", slog.String("file", c.path))
		return nil
	}
	id, ok := handleID(f)
	if !ok || id != c.id {
		f.Close()
		return nil // replaced between scan and open; the next scan sees it
	}
	t := &tailFile{id: id, birth: f.Birth(), path: c.path, group: c.group, f: f, mtime: c.mtime, active: now}
	prefix := s.prefix(f)
	t.setHead(prefix)
	size := fileSize(f)
	l, i, live := s.originOf(t, prefix, size, now)
	switch {
	case l != nil:
		t.pos = min(l.pos, size)
		s.log.Info("new file is a copy of a truncated or vanished file; starting where that one stopped",
			slog.String("file", c.path), slog.String("original", l.path), slog.Int64("pos", t.pos))
		s.lost = slices.Delete(s.lost, i, i+1)
	case live != nil:
		t.copyOf = live
		s.log.Info("new file is a copy of a file still being read; waiting until that one is truncated or gone",
			slog.String("file", c.path), slog.String("original", live.path))
	case startup && s.cfg.skipToEnd:
		t.pos = size
	default:
		t.fresh = size < tailFPMax
	}
	t.reset()
	if t.pos > 0 {
		t.keepTail(t.pos)
	}
	s.log.Info("following file", slog.String("file", c.path), slog.String("group", c.group.name),
		slog.Uint64("inode", id.ino), slog.Int64("pos", t.pos))
	s.track(t)
	if t.copyOf == nil {
		// Record it now, not at its first batch: if it is renamed out of the
		// pattern while flumed is down, a restart must still know to finish it.
		s.journal(t)
	}
	return t
}

// journal records t's position and identity at once. A restart finds a file
// renamed out of the pattern while flumed was down only through what the
// journal says of it, so a file is journaled when it is taken up, when it
// first has bytes to fingerprint, and when its position is set other than by
// a batch (a copy going on where its original stopped).
func (s *Source) journal(t *tailFile) {
	if err := s.pos.record(tailJournalRecord{tailPos: t.persisted()}); err != nil {
		s.log.Error("cannot record a position", slog.Any("err", err))
	}
}

func (s *Source) track(t *tailFile) {
	s.files[t.id] = t
	s.order = append(s.order, t)
}

// prefix reads up to tailFPMax leading bytes of f.
func (s *Source) prefix(f tailHandle) []byte {
	buf := make([]byte, tailFPMax)
	n, _ := readAtMost(f, buf, 0)
	return buf[:n]
}

// restartTruncated handles a file that shrank under the position or changed
// its first bytes: copytruncate. It restarts at 0; a copy of it (if watched)
// takes over from the old position.
func (s *Source) restartTruncated(t *tailFile, size int64, now time.Time) {
	s.log.Warn("file was truncated or rewritten (copytruncate?); restarting at 0",
		slog.String("file", t.path), slog.Uint64("inode", t.id.ino), slog.Int64("pos", t.pos), slog.Int64("size", size))
	s.resolveCopies(t)
	s.keepLost(t, now)
	// Fingerprint the new content at once: the next copytruncate may come
	// before the next read, and its copy must be recognised too.
	t.pos, t.tail, t.head = 0, t.tail[:0], nil
	t.setHead(s.prefix(t.f))
	t.reset()
	t.active = now
	s.journal(t)
}

// ensureOpen reopens a file closed while idle once it changed: grown, or
// written again to the size it had (copytruncate, and as many new bytes as
// were read before, between two polls). It reports whether t can be read
// now.
func (s *Source) ensureOpen(t *tailFile) bool {
	if t.f != nil {
		return true
	}
	c, ok := s.statCandidate(t.path)
	if !ok || c.id != t.id || [2]int64{c.size, c.mtime.UnixNano()} == t.closed {
		return false // unchanged, or renamed away (the next scan decides)
	}
	f, err := s.fsys.Open(t.path)
	if err != nil {
		return false
	}
	if id, ok := handleID(f); !ok || id != t.id {
		f.Close()
		return false
	}
	t.f, t.idle, t.active = f, false, s.clk.Now()
	t.reset()
	s.log.Info("reopened file", slog.String("file", t.path), slog.Int64("pos", t.pos))
	return true
}

// closeIdle closes a file idle for idleTimeout whose lines are all
// delivered; a gone file is forgotten.
func (s *Source) closeIdle(t *tailFile) {
	t.idle = false
	if t.f == nil || !t.rd.empty() {
		return
	}
	// Its size alone would not tell a file truncated and written again to
	// the same size from one left alone: keep the mtime too.
	if st, err := t.f.Stat(); err == nil {
		t.closed = [2]int64{st.size, st.mtime.UnixNano()}
	} else {
		t.closed = [2]int64{-1, 0} // unknown: look again at the next poll
	}
	t.f.Close()
	t.f = nil
	s.releaseBuffer(t)
	s.log.Info("closed idle file", slog.String("file", t.path), slog.Int64("pos", t.pos))
	if t.gone {
		s.forget(t, s.clk.Now())
	}
}

// forget stops tracking t. Its identity is kept for a while for a copy.
func (s *Source) forget(t *tailFile, now time.Time) {
	s.resolveCopies(t)
	s.keepLost(t, now)
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
	delete(s.files, t.id)
	if i := slices.Index(s.order, t); i >= 0 {
		s.order = slices.Delete(s.order, i, i+1)
		if s.cursor > i {
			s.cursor--
		}
	}
	if err := s.pos.record(tailJournalRecord{Forget: true, tailPos: tailPos{Dev: t.id.dev, Inode: t.id.ino}}); err != nil {
		s.log.Error("cannot record a position", slog.Any("err", err))
	}
}
