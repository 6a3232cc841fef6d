package sink

// The hdfs sink's list of its own in-use files, kept on the local disk so
// that a restart after a crash finds them, and recovery on start.
//
// Why a local list: in-use files live in directories made from the events'
// escapes (%Y/%m/%d, %{host}), so no scan of HDFS can find them all; a
// marker in their names would still need that scan, and could not tell this
// agent's files from another's writing to the same directory. The list
// names exactly the files this sink created and has not yet renamed. It is
// rewritten (temp file, fsync, rename, directory sync) when a file is
// created and when one is renamed: twice per file, never per batch.
//
// What a crash leaves, and what recovery does with each entry:
//   - no file at the in-use name: it was renamed (or never created); dropped;
//   - a file closed after its last batch (the common case: every batch
//     closes its file): renamed to its final name;
//   - a file left open by a crash mid-batch: its lease is held by the dead
//     process until the NameNode's hard limit (1 h). The NameNode's length
//     for it is still the length at its last close, the end of its last
//     committed batch; recovery notes it, has the NameNode recover the
//     lease (hdfs_lease.go), cuts the uncommitted batch's bytes off (they
//     are delivered again from the channel), and renames the file. A file
//     that never completed a batch is removed.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/flumed/flumed/internal/fsutil"
)

// inUseList is the sink's in-use files (in-use name → final name), mirrored
// in a local file. Owned by the runner goroutine.
type inUseList struct {
	path  string
	files map[string]string
}

// defaultInUseList is where the list goes when hdfs.inUseList is not set:
// ~/.flume/hdfs-sink/<sink>-<hash of hdfs.path>.inuse, beside Flume's own
// defaults (~/.flume/file-channel, ~/.flume/taildir_position.json). The
// hash keeps two sinks of one name writing to different places apart.
func defaultInUseList(sink, hdfsPath string) string {
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	h := fnv.New32a()
	h.Write([]byte(hdfsPath))
	return filepath.Join(home, ".flume", "hdfs-sink", fmt.Sprintf("%s-%08x.inuse", sink, h.Sum32()))
}

// openInUseList reads the list at path (empty when there is none yet).
func openInUseList(path string) (*inUseList, error) {
	l := &inUseList{path: path, files: map[string]string{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read in-use list: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		tmp, final, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			continue // a line cut by a crash cannot happen (atomic rewrite); skip garbage
		}
		l.files[tmp] = final
	}
	return l, nil
}

// add records a file before it is created: a crash after the create then
// leaves it on the list.
func (l *inUseList) add(tmp, final string) error {
	if l == nil {
		return nil
	}
	l.files[tmp] = final
	return l.save()
}

// remove drops a file once it is renamed (or gone).
func (l *inUseList) remove(tmp string) error {
	if l == nil {
		return nil
	}
	if _, ok := l.files[tmp]; !ok {
		return nil
	}
	delete(l.files, tmp)
	return l.save()
}

func (l *inUseList) save() error {
	var b strings.Builder
	tmps := make([]string, 0, len(l.files))
	for t := range l.files {
		tmps = append(tmps, t)
	}
	sort.Strings(tmps)
	for _, t := range tmps {
		b.WriteString(t + "\t" + l.files[t] + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return fmt.Errorf("in-use list: %w", err)
	}
	// Atomic and durable: a crash leaves the old list or the new one.
	if err := fsutil.WriteFileAtomic(fsutil.OS{}, l.path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("in-use list: %w", err)
	}
	return nil
}

// recoverInUse closes, cuts and renames the files an earlier run left in
// use. A file it cannot recover stays on the list for the next start, and
// the error says which.
func (s *HDFS) recoverInUse(ctx context.Context) error {
	var errs []error
	for tmp, final := range s.inUse.files {
		if err := s.recover1(ctx, tmp, final); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := s.inUse.remove(tmp); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

func (s *HDFS) recover1(ctx context.Context, tmp, final string) error {
	// Before the lease is recovered, the NameNode's length of an open file
	// is that of its last close: the end of its last committed batch.
	return s.recoverFile(ctx, tmp, final, -1)
}

// recoverFile recovers tmp's lease, cuts it to size (-1: its length as the
// NameNode has it now) and renames it to final (removes it when empty).
func (s *HDFS) recoverFile(ctx context.Context, tmp, final string, size int64) error {
	stat, exists, err := s.fs.Stat(tmp)
	if err != nil {
		return fmt.Errorf("recover %s: %w", tmp, err)
	}
	if !exists {
		return nil
	}
	if size < 0 {
		size = stat
	}
	if err := s.fs.RecoverLease(ctx, tmp); err != nil {
		return fmt.Errorf("recover %s: %w", tmp, err)
	}
	if size == 0 {
		if err := s.fs.Remove(tmp); err != nil {
			return fmt.Errorf("recover %s: remove the empty file: %w", tmp, err)
		}
		s.log.Info("removed an in-use file with no committed batch", "sink", s.name, "file", tmp)
		return nil
	}
	now, _, err := s.fs.Stat(tmp)
	if err != nil {
		return fmt.Errorf("recover %s: %w", tmp, err)
	}
	if now > size {
		// The bytes of the batch in flight at the crash: it was never
		// committed, and the channel delivers it again.
		if err := s.fs.Truncate(tmp, size); err != nil && !errors.Is(err, errTruncateRecovering) {
			return fmt.Errorf("recover %s: cut the uncommitted batch: %w", tmp, err)
		}
		if err := s.fs.RecoverLease(ctx, tmp); err != nil {
			return fmt.Errorf("recover %s: %w", tmp, err)
		}
	}
	if err := s.fs.Rename(tmp, final); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("recover %s: rename to %s: %w", tmp, final, err)
	}
	s.log.Info("recovered in-use file of an earlier run", "sink", s.name, "file", final, "size", size, "cut", max(now-size, 0))
	return nil
}
