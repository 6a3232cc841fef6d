package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	tidwall "github.com/tidwall/wal"
)

// ErrOutOfRange: TruncateFront was asked to keep an index past LastIndex+1.
var ErrOutOfRange = errors.New("index out of range")

const (
	// releaseCopyLimit bounds what Release lets tidwall copy on the common
	// path: it truncates inside the tail segment only while the tail is this
	// small, so the stall stays in the low milliseconds.
	releaseCopyLimit = 1 << 20
	// maxTombstones bounds the emptied segment files Release leaves for
	// tidwall to forget (1024 × 16 MiB = 16 GiB consumed without the reader
	// ever catching up with a small tail): past it Release accepts one copy of
	// at most one segment to let tidwall remove them.
	maxTombstones = 1024
)

// TruncateFront removes every record before index, so that FirstIndex
// becomes index; index may be LastIndex+1 to empty the log. It goes through
// tidwall's TruncateFront, which rewrites the rest of the segment holding
// index (synced, then renamed) while every other call waits: up to one whole
// segment is copied (doc.go has the measured stall). Prefer Release.
//
// The result is durable on return. A segment tidwall could not frame is
// refused with a *CorruptionError and the handle stays usable; any other
// failure kills the handle.
func (l *Log) TruncateFront(index uint64) error {
	l.relMu.Lock()
	defer l.relMu.Unlock()
	if err := l.checkTarget(index); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	if last := l.last.Load(); index > last+1 {
		return fmt.Errorf("truncate front to %d (last is %d): %w", index, last, ErrOutOfRange)
	}
	return l.truncateFront(index)
}

// checkTarget refuses a truncation inside a closed segment tidwall would not
// frame right: its loader fails on a broken frame or, worse, mis-slices a
// re-framed one (the tail was checked by Open and is ours since). It reads
// the segment without mu, so the writer does not wait for it; callers hold
// relMu, so the segment cannot go away meanwhile.
func (l *Log) checkTarget(index uint64) error {
	segs := l.segs()
	if i := segmentOf(segs, index); i < len(segs)-1 && index > segs[0].first {
		return l.checkFraming(segs[i], segs[i+1].first)
	}
	return nil
}

// truncateFront truncates through tidwall. Callers hold relMu and mu and
// have called checkTarget.
func (l *Log) truncateFront(index uint64) error {
	if index <= l.segs()[0].first {
		return nil
	}
	// No reader opens a file while tidwall removes and renames them, and none
	// sees the new list before it is complete.
	l.files.Lock()
	defer l.files.Unlock()
	if err := l.tl.TruncateFront(index); err != nil {
		if _, ferr := l.tl.FirstIndex(); errors.Is(ferr, tidwall.ErrCorrupt) {
			return l.fail("truncate front", err) // files changed half way
		}
		return fmt.Errorf("truncate front to %d: %w", index, err) // nothing changed
	}
	l.tl.ClearCache()
	if err := l.reloadReplaced(); err != nil {
		return l.fail("truncate front", err)
	}
	// tidwall renamed the rewritten segment into place and removed the old
	// ones without syncing the directory.
	if err := l.fs.SyncDir(l.dir); err != nil {
		return l.fail("truncate front", err)
	}
	return nil
}

// checkFraming verifies that tidwall would frame seg into exactly the
// entries [seg.first, end).
func (l *Log) checkFraming(seg segFile, end uint64) error {
	data, err := os.ReadFile(filepath.Join(l.dir, seg.file))
	if err != nil {
		return fmt.Errorf("read segment %s: %w", seg.name(), err)
	}
	if n, ok := countFrames(data); !ok || n != end-seg.first {
		return &CorruptionError{Segment: seg.name(), Index: seg.first, Err: ErrLength}
	}
	return nil
}

// Release declares every record before index consumed and gives their space
// back cheaply; FirstIndex afterwards is at most index (records sharing a
// segment with index may stay readable). index past LastIndex means all.
//
//   - When the log is fully consumed it truncates through tidwall, which
//     copies nothing, and the log is left with one empty segment.
//   - Otherwise every segment wholly before index is emptied in place
//     (ftruncate to 0 and a data sync, oldest first), outside the lock that
//     Append and Sync take: no copy and no stall for the writer. tidwall,
//     which still lists those files, never reads them again. Open removes
//     them; so does the next truncation through tidwall, which Release does
//     when index lies in a tail segment of at most 1 MiB, or when 1024
//     emptied files have piled up (then copying at most one segment).
//
// It is durable on return. A failure kills the handle.
func (l *Log) Release(index uint64) error {
	l.relMu.Lock()
	defer l.relMu.Unlock()
	l.mu.Lock()
	if err := l.usable(); err != nil {
		l.mu.Unlock()
		return err
	}
	last := l.last.Load()
	index = min(index, last+1)
	segs := l.segs()
	i := segmentOf(segs, index)
	switch {
	case index <= segs[0].first:
		l.mu.Unlock()
		return nil
	case index == last+1, i == len(segs)-1 && l.tailSize <= releaseCopyLimit:
		defer l.mu.Unlock()
		return l.truncateFront(index)
	case l.tombstones+i > l.maxTombstones:
		l.mu.Unlock()
		err := l.checkTarget(index)
		var ce *CorruptionError
		if errors.As(err, &ce) {
			// tidwall cannot frame the segment holding index: leave it,
			// and empty the ones before it anyway.
			return l.empty(segs, i)
		}
		if err != nil {
			return err
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if err := l.usable(); err != nil {
			return err
		}
		return l.truncateFront(index)
	}
	l.mu.Unlock()
	return l.empty(segs, i)
}

// empty truncates the first n segment files of all to zero bytes, oldest first, each
// synced before the next so that after a crash the emptied files are always
// a prefix of the log, which is how Open recognizes them. It runs without mu
// (the files are no longer the writer's business) but under relMu, so that
// no tidwall truncation removes them meanwhile.
func (l *Log) empty(all []segFile, n int) error {
	if n == 0 {
		return nil
	}
	segs := all[:n]
	l.mu.Lock()
	l.dropBelow = max(l.dropBelow, all[n].first)
	l.setView(l.segs(), true) // before the files shrink under any reader
	l.tombstones += n         // tidwall still lists them
	l.mu.Unlock()
	for _, s := range segs {
		f, err := l.fs.OpenFile(filepath.Join(l.dir, s.file), os.O_WRONLY, 0)
		if err == nil {
			err = f.Truncate(0)
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.fail("release", err)
		}
	}
	return nil
}

func (l *Log) segs() []segFile {
	l.view.RLock()
	defer l.view.RUnlock()
	return l.view.segs
}

// segmentOf returns the position of the segment holding index.
func segmentOf(segs []segFile, index uint64) int {
	i := len(segs) - 1
	for i > 0 && segs[i].first > index {
		i--
	}
	return i
}
