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
	// tidwall to forget: past it Release accepts one bounded copy (at most
	// one segment) to let tidwall remove them.
	maxTombstones = 64
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

func (l *Log) truncateFront(index uint64) error {
	segs := l.segs()
	if index <= segs[0].first {
		return nil
	}
	// tidwall frames the segment it truncates in with its own loader, which
	// fails on a broken frame or, worse, mis-slices a re-framed one: check
	// closed segments first (the tail was checked by Open and is ours since).
	if i := segmentOf(segs, index); i < len(segs)-1 && index <= l.last.Load() {
		if err := l.checkFraming(segs[i], segs[i+1].first); err != nil {
			return err
		}
	}
	l.view.Lock()
	l.view.replaced++
	err := l.tl.TruncateFront(index)
	l.view.Unlock()
	if err != nil {
		if _, ferr := l.tl.FirstIndex(); errors.Is(ferr, tidwall.ErrCorrupt) {
			return l.fail("truncate front", err) // files changed half way
		}
		return fmt.Errorf("truncate front to %d: %w", index, err) // nothing changed
	}
	// tidwall renamed the rewritten segment into place and removed the old
	// ones without syncing the directory.
	if err := l.fs.SyncDir(l.dir); err != nil {
		return l.fail("truncate front", err)
	}
	l.tl.ClearCache()
	if err := l.reload(); err != nil {
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
//     (ftruncate to 0 and a data sync, oldest first): no copy, and tidwall,
//     which still lists those files, never reads them again. Open removes
//     them; so does the next truncation through tidwall, which Release does
//     when index lies in a tail segment of at most 1 MiB, or when 64 emptied
//     files have piled up (then copying at most one segment).
//
// It is durable on return. A failure kills the handle.
func (l *Log) Release(index uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	last := l.last.Load()
	index = min(index, last+1)
	segs := l.segs()
	if index <= segs[0].first {
		return nil
	}
	if index == last+1 {
		return l.truncateFront(index)
	}
	i := segmentOf(segs, index)
	if i == len(segs)-1 && l.tailSize <= releaseCopyLimit {
		return l.truncateFront(index)
	}
	if i > 0 {
		if err := l.empty(segs[:i]); err != nil {
			return err
		}
	}
	if l.tombstones >= maxTombstones {
		err := l.truncateFront(index)
		var ce *CorruptionError
		if errors.As(err, &ce) {
			return nil // a damaged segment stays; the emptied files wait for Open
		}
		return err
	}
	return nil
}

// empty truncates released segment files to zero bytes, oldest first, each
// synced before the next so that after a crash the emptied files are always
// a prefix of the log, which is how Open recognizes them.
func (l *Log) empty(segs []segFile) error {
	l.view.Lock()
	l.view.replaced++ // before the files shrink under any reader
	l.view.segs = l.view.segs[len(segs):]
	l.view.Unlock()
	for _, s := range segs {
		f, err := l.fs.OpenFile(filepath.Join(l.dir, s.file), os.O_WRONLY, 0)
		if err != nil {
			return l.fail("release", err)
		}
		err = f.Truncate(0)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return l.fail("release", err)
		}
		l.tombstones++
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
