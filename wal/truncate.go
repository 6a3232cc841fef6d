package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrOutOfRange: TruncateFront was asked to keep an index past LastIndex+1.
var ErrOutOfRange = errors.New("index out of range")

// Release declares every record before index consumed and gives their space
// back; FirstIndex afterwards is the first index of the segment holding index
// (records sharing a segment with index stay readable). index past LastIndex
// means all.
//
// Sealed segments wholly before index are removed: the manifest records the
// new front (synced), readers stop seeing them, then their files are deleted
// and sealed/ synced. None of that holds the lock Append and Sync take, and
// nothing is copied. When everything is consumed, the tail is sealed first
// (a roll, under that lock: one fdatasync of a tail already synced, a create
// and a rename), so that the log is left with one empty segment and tidwall
// forgets the tail it held in memory.
//
// It is durable on return. A failure kills the handle.
func (l *Log) Release(index uint64) error { return l.truncate(index, false) }

// TruncateFront removes every record before index, so that FirstIndex
// becomes index exactly; index may be LastIndex+1 to empty the log. It is
// Release with an exact front: the records before index in index's own
// segment can no longer be read, but their bytes stay until that segment is
// released whole. Nothing is copied.
//
// The result is durable on return. An index past LastIndex+1 is refused with
// ErrOutOfRange; any failure kills the handle.
func (l *Log) TruncateFront(index uint64) error { return l.truncate(index, true) }

func (l *Log) truncate(index uint64, exact bool) error {
	l.relMu.Lock()
	defer l.relMu.Unlock()
	front, err := l.newFront(index, exact)
	if err != nil || front == 0 {
		return err
	}
	return l.drop(front)
}

// newFront returns the FirstIndex a truncation to index makes, or 0 when it
// changes nothing. When everything is consumed it rolls first, so that the
// tail goes with the rest and tidwall forgets it.
func (l *Log) newFront(index uint64, exact bool) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return 0, err
	}
	last := l.last.Load()
	if exact && index > last+1 {
		return 0, fmt.Errorf("truncate front to %d (last is %d): %w", index, last, ErrOutOfRange)
	}
	index = min(index, last+1)
	if index <= l.FirstIndex() {
		return 0, nil
	}
	if index == last+1 && l.tailSize > 0 {
		if err := l.roll(last + 1); err != nil {
			return 0, err
		}
	}
	segs := l.segs()
	front := segs[segmentOf(segs, index)].first
	if exact {
		front = index
	}
	if front <= l.FirstIndex() {
		return 0, nil // index is in the first segment: nothing to give back
	}
	if err := l.ensureSealed(); err != nil {
		return 0, l.fail("release", err)
	}
	return front, nil
}

// drop moves the front to front and removes the sealed segments wholly
// before it. Callers hold relMu, not mu.
func (l *Log) drop(front uint64) error {
	freed, err := l.man.setFront(front)
	if err != nil {
		return l.failLocking("release", err)
	}
	l.mu.Lock()
	l.front = max(l.front, front)
	l.setView(l.segs(), len(freed) > 0)
	l.mu.Unlock()
	if len(freed) == 0 {
		return nil
	}
	// Under files, no reader is between finding a freed segment in the view
	// and opening it: those that opened it keep reading (an open file stays
	// readable after its name is removed), later ones no longer find it.
	sealedDir := filepath.Join(l.dir, sealedDirName)
	l.files.Lock()
	for _, s := range freed {
		if err = l.fs.Remove(filepath.Join(sealedDir, segmentName(s.first))); errors.Is(err, os.ErrNotExist) {
			err = nil
		}
		if err != nil {
			break
		}
	}
	l.files.Unlock()
	if err != nil {
		return l.failLocking("release", err)
	}
	if err := l.fs.SyncDir(sealedDir); err != nil {
		return l.failLocking("release", err)
	}
	if err := l.man.setGone(front); err != nil {
		return l.failLocking("release", err)
	}
	return nil
}

// failLocking is fail for callers that do not hold mu.
func (l *Log) failLocking(op string, err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fail(op, err)
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
