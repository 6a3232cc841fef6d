package flumefile

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Layout is where Flume's files are: for each directory, the names of the
// files (and Flume's queueset directory) that belong to a Flume file
// channel. Files of other programs sharing the directories (flumed's own
// log, checkpoint slots and lock) are not listed.
type Layout struct {
	Dirs map[string][]string // directory -> names, sorted
}

// Found reports whether any Flume file is there.
func (l Layout) Found() bool {
	for _, names := range l.Dirs {
		if len(names) > 0 {
			return true
		}
	}
	return false
}

// HasData reports whether the layout holds what a Flume channel needs to
// hold events: a data file or a checkpoint.
func (l Layout) HasData() bool {
	for _, names := range l.Dirs {
		for _, n := range names {
			if logName.MatchString(n) || n == checkpointName || n == checkpointMetaName {
				return true
			}
		}
	}
	return false
}

// Paths lists every Flume file's path, directory by directory.
func (l Layout) Paths() []string {
	var out []string
	dirs := make([]string, 0, len(l.Dirs))
	for d := range l.Dirs {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	for _, d := range dirs {
		for _, n := range l.Dirs[d] {
			out = append(out, filepath.Join(d, n))
		}
	}
	return out
}

// Detect finds Flume's files in o's directories (a directory may be listed
// in several roles, and may not exist).
func Detect(o Options) (Layout, error) {
	l := Layout{Dirs: map[string][]string{}}
	add := func(dir string, keep func(name string, isDir bool) bool) error {
		if dir == "" {
			return nil
		}
		ents, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, e := range ents {
			if keep(e.Name(), e.IsDir()) && !slices.Contains(l.Dirs[dir], e.Name()) {
				l.Dirs[dir] = append(l.Dirs[dir], e.Name())
			}
		}
		slices.Sort(l.Dirs[dir])
		return nil
	}
	isCheckpointFile := func(n string, isDir bool) bool {
		switch n {
		case checkpointName, checkpointMetaName, inflightPuts, inflightTakes:
			return !isDir
		case queueSetName:
			return isDir
		}
		return false
	}
	isBackupFile := func(n string, isDir bool) bool {
		return !isDir && (n == backupComplete || n == checkpointName+snappySuffix || isCheckpointFile(n, isDir))
	}
	isDataFile := func(n string, isDir bool) bool {
		if isDir {
			return false
		}
		for _, suffix := range []string{"", metaSuffix, metaTmpSuffix, metaOldSuffix} {
			if base, ok := strings.CutSuffix(n, suffix); ok && logName.MatchString(base) {
				return true
			}
		}
		return false
	}
	if err := add(o.CheckpointDir, isCheckpointFile); err != nil {
		return l, err
	}
	if err := add(o.BackupCheckpointDir, isBackupFile); err != nil {
		return l, err
	}
	for _, d := range o.DataDirs {
		if err := add(d, isDataFile); err != nil {
			return l, err
		}
	}
	for d, names := range l.Dirs {
		if len(names) == 0 {
			delete(l.Dirs, d)
		}
	}
	return l, nil
}

// Fingerprint identifies what was read: the queued events' places, the data
// files' names and sizes and the checkpoint used. An import interrupted by a
// crash resumes only when the fingerprint is unchanged, that is when the
// same files give the same events in the same order.
func (b *Backlog) Fingerprint() string {
	h := sha256.New()
	var buf [8]byte
	for _, p := range b.ptrs {
		binary.LittleEndian.PutUint64(buf[:], uint64(p))
		h.Write(buf[:])
	}
	for _, id := range slices.Sorted(maps.Keys(b.logs)) {
		lf := b.logs[id]
		h.Write([]byte(filepath.Base(lf.path)))
		binary.LittleEndian.PutUint64(buf[:], uint64(lf.size))
		h.Write(buf[:])
	}
	h.Write([]byte(b.Report.Checkpoint))
	binary.LittleEndian.PutUint64(buf[:], uint64(b.Report.CheckpointWriteOrder))
	h.Write(buf[:])
	return hex.EncodeToString(h.Sum(nil))
}
