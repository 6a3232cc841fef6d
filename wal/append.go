package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/flumed/flumed/internal/fsutil"
)

// writebackBytes is how much an Append leaves unsynced in the tail before it
// asks the kernel to start writing it out (fsutil.StartWriteback): more than
// a group commit of small events writes between two syncs, so the commit
// path never pays the extra call, and a fraction of a segment, so a roll's
// sync finds most of the segment on disk already.
const writebackBytes = 4 << 20

// Append writes payloads as consecutive records and returns the indexes of
// the first and last. Nothing is durable until Sync returns nil. Appending
// nothing returns (0, 0, nil).
//
// Records go to the tail segment with one tidwall WriteBatch (one write(2));
// when the tail reaches SegmentSize, the batch is split there and the log
// rolls to a new tail (see roll). A failed write or roll kills the handle
// (ErrFailed); a payload over MaxPayload is refused with ErrTooLarge and
// changes nothing.
func (l *Log) Append(payloads ...[]byte) (first, last uint64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return 0, 0, err
	}
	if len(payloads) == 0 {
		return 0, 0, nil
	}
	for _, p := range payloads {
		if len(p) > MaxPayload {
			return 0, 0, fmt.Errorf("append %d bytes: %w", len(p), ErrTooLarge)
		}
	}
	prev := l.last.Load()
	next := prev + 1
	if l.tailSize >= l.opts.SegmentSize {
		if err := l.roll(next); err != nil {
			return 0, 0, err
		}
	}
	for len(payloads) > 0 {
		// The records up to the one that fills the tail (tidwall's own
		// cycling rule: a segment ends with the entry that reaches the size).
		n, size := 0, l.tailSize
		for n < len(payloads) && (n == 0 || size < l.opts.SegmentSize) {
			size += frameSize(len(payloads[n]))
			n++
		}
		for i, p := range payloads[:n] {
			l.enc = appendRecord(l.enc[:0], next+uint64(i), p)
			l.batch.Write(next+uint64(i), l.enc)
		}
		if err := l.fs.CheckWrite(l.tailSeg.path(l.dir), size-l.tailSize); err != nil {
			l.batch.Clear()
			return 0, 0, l.fail("append", err)
		}
		if err := l.tl.WriteBatch(&l.batch); err != nil {
			l.batch.Clear()
			return 0, 0, l.fail("append", err)
		}
		l.tailSize = size
		l.tailBytes.Store(size)
		if size-l.written >= writebackBytes {
			// A large append (an import, a big batch): the disk starts on
			// it now, while the caller prepares the next one, instead of
			// at the Sync or roll that must wait for all of it.
			fsutil.StartWriteback(l.tail, l.written, size-l.written)
			l.written = size
		}
		next += uint64(n)
		payloads = payloads[n:]
		if size >= l.opts.SegmentSize {
			if err := l.roll(next); err != nil {
				return 0, 0, err
			}
		}
	}
	l.last.Store(next - 1)
	return prev + 1, next - 1, nil
}

// roll seals the full tail and starts a new one at index next. In order:
// the tail's data is synced (so a sealed segment is whole), the new tail file
// is created, the manifest gets the seal, the old tail is renamed into
// sealed/, and tidwall is reopened on the log directory, where it finds only
// the new, empty tail. The names and the manifest entry become durable at the
// next Sync (sealed/ first, then the log directory); FORMAT.md has what a crash
// at each step leaves. Callers hold mu.
func (l *Log) roll(next uint64) error {
	old := l.tailSeg
	if err := l.tail.Sync(); err != nil {
		return l.fail("roll", err)
	}
	if err := l.ensureSealed(); err != nil {
		return l.fail("roll", err)
	}
	tail := segFile{first: next}
	nf, err := l.fs.OpenFile(tail.path(l.dir), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
	if err != nil {
		return l.fail("roll", fmt.Errorf("create segment: %w", err))
	}
	sealed := segFile{first: old.first, size: l.tailSize, sealed: true}
	if err := l.man.seal(sealEntry{first: old.first, end: next, size: l.tailSize}); err != nil {
		nf.Close()
		return l.fail("roll", err)
	}
	tl := l.tl
	l.tl = nil
	if err := tl.Close(); err != nil {
		nf.Close()
		return l.fail("roll", err)
	}
	l.files.Lock()
	err = l.fs.Rename(old.path(l.dir), sealed.path(l.dir))
	if err == nil {
		segs := l.segs()
		segs = append(append(segs[:len(segs)-1:len(segs)-1], sealed), tail)
		l.setView(segs, false)
	}
	l.files.Unlock()
	if err != nil {
		nf.Close()
		return l.fail("roll", fmt.Errorf("seal %s: %w", old.name(), err))
	}
	l.tail.Close()
	l.tail, l.tailSeg, l.tailSize, l.written = nf, tail, 0, 0
	l.tailBytes.Store(0)
	l.dirDirty, l.sealedDirty = true, true
	if tl, err = openTidwall(l.dir); err != nil {
		return l.fail("roll", err)
	}
	if last, err := tl.LastIndex(); err != nil || last != next-1 {
		tl.Close()
		return l.fail("roll", fmt.Errorf("tidwall reopened at %d (%v), want %d", last, err, next-1))
	}
	l.tl = tl
	return nil
}

// ensureSealed creates sealed/ and the manifest the first time a segment is
// sealed, and makes both names durable before anything is moved there.
// Callers hold mu.
func (l *Log) ensureSealed() error {
	if l.sealedReady {
		return nil
	}
	if err := os.Mkdir(filepath.Join(l.dir, sealedDirName), 0o750); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create %s: %w", sealedDirName, err)
	}
	l.man.mu.Lock()
	defer l.man.mu.Unlock()
	var err error
	if l.man.st.exists {
		err = l.fs.SyncDir(l.dir)
	} else {
		err = l.man.rewrite() // synced, renamed into place, directory synced
	}
	if err != nil {
		return err
	}
	l.sealedReady = true
	return nil
}

// Sync makes every record appended before it durable: after a roll it syncs
// sealed/, the log directory and the manifest, then the tail segment's data.
// It costs nothing when nothing was appended. A failed sync kills the handle
// (ErrFailed); it is never retried.
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	return l.syncLocked()
}

func (l *Log) syncLocked() error {
	last := l.last.Load()
	if last == l.synced && !l.dirDirty && !l.sealedDirty {
		return nil
	}
	// A name must be durable in sealed/ before its removal from the log
	// directory is, or a crash could leave a segment in neither.
	if l.sealedDirty {
		if err := l.fs.SyncDir(filepath.Join(l.dir, sealedDirName)); err != nil {
			return l.fail("sync", err)
		}
		l.sealedDirty = false
	}
	if l.dirDirty {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return l.fail("sync", err)
		}
		l.dirDirty = false
	}
	if err := l.man.sync(); err != nil {
		return l.fail("sync", err)
	}
	if err := l.tail.Sync(); err != nil {
		return l.fail("sync", err)
	}
	l.synced, l.written = last, l.tailSize
	return nil
}
