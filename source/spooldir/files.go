package spooldir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flumed/flumed/internal/fsutil"
)

// This file holds the spooling directory source's files: which file comes
// next, the persisted state (the current file's committed offset and the
// files skipped), and what happens to a file once read. Only the goroutine
// holding the source's lock uses it.

// spoolStateFile is flumed's state in trackerDir. (Flume keeps the current
// file's position in .flumespool-main.meta, an Avro file flumed does not read.)
const spoolStateFile = "flumed-spool.json"

// spoolIdentity is what a file was when picked up.
type spoolIdentity struct {
	Path  string `json:"path"`
	Dev   uint64 `json:"dev"`
	Inode uint64 `json:"inode"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtimeNs"`
	// Birth is the creation time where the file system records one: a file
	// replaced by another that got the same inode number differs there.
	Birth int64 `json:"birthNs,omitempty"`
}

// sameFile reports whether two identities name the same file (not
// necessarily with the same content).
func (id spoolIdentity) sameFile(dev, ino uint64, birth int64) bool {
	return id.Dev == dev && id.Inode == ino && (id.Birth == 0 || birth == 0 || id.Birth == birth)
}

// birthTime is path's creation time in ns, or 0 where unknown.
func birthTime(path string) int64 {
	var stx unix.Statx_t
	if unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_BTIME, &stx) != nil || stx.Mask&unix.STATX_BTIME == 0 {
		return 0
	}
	return stx.Btime.Sec*1e9 + int64(stx.Btime.Nsec)
}

type spoolPosition struct {
	spoolIdentity
	Offset int64 `json:"offset"` // every line before it is committed
}

type spoolSkipped struct {
	spoolIdentity
	Reason string `json:"reason"`
}

type spoolState struct {
	Current *spoolPosition `json:"current,omitempty"`
	Skipped []spoolSkipped `json:"skipped,omitempty"`
}

// spoolCurrent is the file being read.
type spoolCurrent struct {
	spoolIdentity
	path   string
	f      *os.File
	rd     *spoolReader
	offset int64 // committed
	failed error // a decode error met after the lines before it were handed out
}

// rewind drops what was read past the committed offset.
func (c *spoolCurrent) rewind() {
	c.rd.r, c.rd.w, c.rd.off, c.rd.eof = 0, 0, c.offset, false
}

// verify reports a file that changed since it was picked up: Flume's
// "File has changed size since being read" and friends.
func (c *spoolCurrent) verify() error {
	id, err := identify(c.f, c.path)
	if err != nil {
		return err
	}
	switch {
	case id.Size != c.Size:
		return fmt.Errorf("changed after pickup: size %d, was %d (spooled files must not change)", id.Size, c.Size)
	case id.Mtime != c.Mtime:
		return fmt.Errorf("changed after pickup: modification time changed (spooled files must not change)")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(c.path, &st); err != nil || uint64(st.Dev) != c.Dev || st.Ino != c.Inode {
		return fmt.Errorf("moved or deleted while being read")
	}
	return nil
}

// identify describes an open file.
func identify(f *os.File, path string) (spoolIdentity, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return spoolIdentity{}, fmt.Errorf("stat %s: %w", path, err)
	}
	return spoolIdentity{Path: path, Dev: uint64(st.Dev), Inode: st.Ino, Size: st.Size,
		Mtime: st.Mtim.Sec*1e9 + st.Mtim.Nsec, Birth: birthTime(path)}, nil
}

// spoolCandidate is a file waiting to be read.
type spoolCandidate struct {
	path  string
	mtime time.Time
}

func ensureDir(dir string) error { return os.MkdirAll(dir, 0o755) }

func (s *Source) statePath() string { return filepath.Join(s.cfg.trackerDir, spoolStateFile) }

func (s *Source) loadState() error {
	s.state = spoolState{}
	data, err := os.ReadFile(s.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(s.cfg.trackerDir, ".flumespool-main.meta")); err == nil {
			s.log.Warn("Flume's position file is not read by flumed: a file Flume was in the middle of is read again from its start",
				slog.String("trackerDir", s.cfg.trackerDir))
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(data, &s.state); err != nil {
		// Written atomically, so this is damage from outside: re-reading the
		// current file from its start repeats lines but loses none.
		s.log.Error("state file is damaged; the file in progress will be read again from its start",
			slog.String("file", s.statePath()), slog.Any("err", err))
		s.state = spoolState{}
	}
	return nil
}

func (s *Source) saveState() error {
	data, _ := json.Marshal(s.state) // plain structs: cannot fail
	return fsutil.WriteFileAtomic(s.fs, s.statePath(), data, 0o644)
}

// next opens the next file to read: the one saved as current (a restart),
// else the next candidate in consumeOrder. It reports false when there is
// none.
func (s *Source) next() bool {
	if p := s.state.Current; p != nil {
		s.state.Current = nil
		if s.resume(p) {
			return true
		}
	}
	for {
		if len(s.queue) == 0 {
			s.queue = s.list()
			if len(s.queue) == 0 {
				return false
			}
		}
		c := s.queue[0]
		s.queue = s.queue[1:]
		if s.open(c.path, 0, nil) {
			return true
		}
	}
}

// resume reopens the file saved as current, if it is still the same file.
func (s *Source) resume(p *spoolPosition) bool {
	if _, err := os.Stat(p.Path); errors.Is(err, fs.ErrNotExist) {
		s.log.Info("the file of the saved position is gone (completed before the restart?)", slog.String("file", p.Path))
		return false
	}
	if !s.open(p.Path, p.Offset, &p.spoolIdentity) {
		return false
	}
	s.log.Info("resuming file at its last committed line", slog.String("file", p.Path), slog.Int64("offset", p.Offset))
	return true
}

// open makes path the current file, read from offset. With was set (a
// resume), the file must still be what was picked up.
func (s *Source) open(path string, offset int64, was *spoolIdentity) bool {
	f, err := os.Open(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Error("cannot open file", slog.String("file", path), slog.Any("err", err))
		}
		return false
	}
	id, err := identify(f, path)
	if err != nil {
		f.Close()
		return false
	}
	if was != nil && !was.sameFile(id.Dev, id.Inode, id.Birth) {
		s.log.Info("the file of the saved position was replaced; reading the new one as a new file", slog.String("file", path))
		f.Close()
		return false
	}
	c := &spoolCurrent{spoolIdentity: id, path: path, f: f, offset: offset}
	c.rd = newSpoolReader(f, offset, id.Size, s.cfg.charset, s.cfg.decodePolicy, s.cfg.maxLineLength)
	s.cur = c
	if was != nil && (was.Size != id.Size || was.Mtime != id.Mtime) {
		c.spoolIdentity = *was
		s.skip(c, "changed after pickup (found at restart; spooled files must not change)")
		return false
	}
	s.state.Current = &spoolPosition{spoolIdentity: id, Offset: offset}
	if was == nil {
		s.log.Info("reading file", slog.String("file", path), slog.Int64("size", id.Size))
	}
	return true
}

// list finds the files to read, in consumeOrder.
func (s *Source) list() []spoolCandidate {
	s.pruneSkipped()
	var out []spoolCandidate
	err := filepath.WalkDir(s.cfg.spoolDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == s.cfg.spoolDir {
				return err
			}
			return nil // vanished meanwhile
		}
		name := d.Name()
		if path == s.cfg.spoolDir {
			return nil
		}
		if d.IsDir() {
			if !s.cfg.recursive || strings.HasPrefix(name, ".") || path == s.cfg.trackerDir {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(name, ".") || !d.Type().IsRegular() ||
			(s.cfg.fileSuffix != "" && strings.HasSuffix(name, s.cfg.fileSuffix)) ||
			!s.cfg.include.MatchString(name) || s.cfg.ignore.MatchString(name) {
			return nil
		}
		info, err := d.Info()
		if err != nil || s.isSkipped(path, info) || (s.cfg.trackerPolicy && s.tracked(path, info)) {
			return nil
		}
		out = append(out, spoolCandidate{path: path, mtime: info.ModTime()})
		return nil
	})
	if err != nil {
		s.log.Error("cannot list the spool directory", slog.String("dir", s.cfg.spoolDir), slog.Any("err", err))
		return nil
	}
	switch s.cfg.consumeOrder {
	case "random":
		rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	case "youngest":
		slices.SortStableFunc(out, func(a, b spoolCandidate) int { return b.mtime.Compare(a.mtime) })
	default:
		slices.SortStableFunc(out, func(a, b spoolCandidate) int { return a.mtime.Compare(b.mtime) })
	}
	return out
}

func statID(info fs.FileInfo) (dev, ino uint64) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino
	}
	return 0, 0
}

func (s *Source) isSkipped(path string, info fs.FileInfo) bool {
	dev, ino := statID(info)
	for _, k := range s.state.Skipped {
		if k.Path == path && k.sameFile(dev, ino, birthTime(path)) {
			return true
		}
	}
	return false
}

// pruneSkipped forgets skipped files that were removed or replaced.
func (s *Source) pruneSkipped() {
	kept := s.state.Skipped[:0]
	for _, k := range s.state.Skipped {
		if info, err := os.Stat(k.Path); err == nil {
			if dev, ino := statID(info); k.sameFile(dev, ino, birthTime(k.Path)) {
				kept = append(kept, k)
			}
		}
	}
	s.state.Skipped = kept
}

// markerPath is where trackingPolicy=tracker_dir records a completed file.
func (s *Source) markerPath(path string) string {
	rel, err := filepath.Rel(s.cfg.spoolDir, path)
	if err != nil {
		rel = filepath.Base(path)
	}
	return filepath.Join(s.cfg.trackerDir, rel+s.cfg.fileSuffix)
}

// tracked reports whether trackerDir records path as completed. Flume's
// markers are empty and match any file of that name; flumed's hold the
// identity, so a new file reusing the name is read.
func (s *Source) tracked(path string, info fs.FileInfo) bool {
	data, err := os.ReadFile(s.markerPath(path))
	if err != nil {
		return false
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return true
	}
	var id spoolIdentity
	if json.Unmarshal(data, &id) != nil {
		return true
	}
	dev, ino := statID(info)
	return id.sameFile(dev, ino, birthTime(path)) && id.Size == info.Size()
}

// finish completes the current file once every line of it is committed:
// delete it, record it in trackerDir, or rename it with fileSuffix.
func (s *Source) finish() {
	c := s.cur
	if err := c.verify(); err != nil {
		s.skip(c, err.Error())
		return
	}
	var err error
	switch {
	case s.cfg.deleteImmediate:
		err = s.fs.Remove(c.path)
	case s.cfg.trackerPolicy:
		m := s.markerPath(c.path)
		if err = ensureDir(filepath.Dir(m)); err == nil {
			data, _ := json.Marshal(c.spoolIdentity)
			err = fsutil.WriteFileAtomic(s.fs, m, data, 0o644)
		}
	default:
		err = s.rename(c)
	}
	if err == nil && !s.cfg.trackerPolicy {
		// The removal or rename must survive a crash, or the file is read again.
		err = s.fs.SyncDir(filepath.Dir(c.path))
	}
	if err != nil {
		s.skip(c, fmt.Sprintf("cannot complete: %v", err))
		return
	}
	c.f.Close()
	s.cur, s.state.Current = nil, nil
	if err := s.saveState(); err != nil {
		s.log.Error("cannot save the state", slog.Any("err", err))
	}
	s.log.Info("completed file", slog.String("file", c.path), slog.Int64("bytes", c.Size))
}

// rename adds fileSuffix. Flume stops when the new name exists; flumed
// removes the file when it has the same content as the completed one, and
// otherwise picks a free name (name.1.COMPLETED, ...).
func (s *Source) rename(c *spoolCurrent) error {
	dest := c.path + s.cfg.fileSuffix
	if _, err := os.Stat(dest); err == nil {
		if sameContent(c.path, dest) {
			s.log.Warn("completed file already exists with the same content; removing this one",
				slog.String("file", c.path))
			return s.fs.Remove(c.path)
		}
		for n := 1; ; n++ {
			d := fmt.Sprintf("%s.%d%s", c.path, n, s.cfg.fileSuffix)
			if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("file name was reused (spooled names must be unique); completing under another name",
					slog.String("file", c.path), slog.String("as", d))
				dest = d
				break
			}
		}
	}
	return s.fs.Rename(c.path, dest)
}

func sameContent(a, b string) bool {
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// skip reports a file that cannot be read as Flume requires, leaves it in
// place, and goes on with the others. It stays skipped until it is removed
// or replaced.
func (s *Source) skip(c *spoolCurrent, reason string) {
	s.counters.GenericProcessingFail.Add(1)
	s.log.Error("skipping file; remove or replace it to have it read", slog.String("file", c.path),
		slog.String("reason", reason), slog.Int64("committedOffset", c.offset))
	c.f.Close()
	s.cur, s.state.Current = nil, nil
	s.state.Skipped = append(s.state.Skipped, spoolSkipped{spoolIdentity: c.spoolIdentity, Reason: reason})
	if err := s.saveState(); err != nil {
		s.log.Error("cannot save the state", slog.Any("err", err))
	}
}
