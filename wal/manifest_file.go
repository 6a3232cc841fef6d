package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/flumed/flumed/internal/fsutil"
)

// manifest is the open manifest of a live Log. mu guards the state and the
// appends (a write(2) each); no sync and no compaction holds it, so a roll
// appending a seal never waits for a disk flush that Release started.
// fileMu is held for reading while the file is synced and for writing while
// compaction replaces it. Lock order: fileMu, then mu; the Log's locks are
// never taken under either.
type manifest struct {
	fileMu  sync.RWMutex
	mu      sync.Mutex
	fs      fsutil.FS
	path    string
	f       fsutil.File // open for appending; nil until the first append
	st      manifestState
	written uint64 // entries appended since Open
	synced  uint64 // of those, how many are known durable
	// appended counts entries appended since the file was last written
	// whole: their blocks may lie apart on disk (each append was synced
	// between other writes), which costs the next Open a read each.
	appended int
	buf      []byte
	// compactAt is the slack before compaction: compactSlack, lowered by
	// tests; compactions counts them.
	compactAt, compactions int
}

func newManifest(fsys fsutil.FS, dir string, st manifestState) *manifest {
	return &manifest{fs: fsys, path: filepath.Join(dir, manifestName), st: st, compactAt: compactSlack}
}

// rewrite replaces the file atomically with the current state (temp file,
// sync, rename, directory sync). It is for a manifest nobody appends to
// concurrently: at Open, and when the first segment is sealed. Callers hold
// mu.
func (m *manifest) rewrite() error {
	data := m.st.encode()
	if m.f != nil {
		m.f.Close()
		m.f = nil
	}
	if err := fsutil.WriteFileAtomic(m.fs, m.path, data, 0o640); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	m.st.exists, m.st.entries, m.st.valid, m.st.torn, m.st.bad = true, len(data)/manifestEntry, int64(len(data)), false, nil
	m.synced, m.appended = m.written, 0
	return nil
}

// append writes entries at the end of the file, unsynced. Callers hold mu.
func (m *manifest) append(entries []byte) error {
	if m.f == nil {
		f, err := m.fs.OpenFile(m.path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return fmt.Errorf("open manifest: %w", err)
		}
		m.f = f
	}
	if _, err := m.f.Write(entries); err != nil {
		return fmt.Errorf("append to manifest: %w", err)
	}
	m.st.entries += len(entries) / manifestEntry
	m.written++
	m.appended++
	return nil
}

// seal records that the segment [e.first, e.end) is now in sealed/.
func (m *manifest) seal(e sealEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.buf = sealBytes(m.buf[:0], e)
	if err := m.append(m.buf); err != nil {
		return err
	}
	m.st.live = append(m.st.live, e)
	return nil
}

// setFront records that every record before front is released, and syncs:
// it must be durable before any file it frees is removed. It returns the
// seals it released.
func (m *manifest) setFront(front uint64) ([]sealEntry, error) {
	m.mu.Lock()
	m.buf = encodeEntry(m.buf[:0], kindFront, front, 0, 0)
	if err := m.append(m.buf); err != nil {
		m.mu.Unlock()
		return nil, err
	}
	m.st.front = max(m.st.front, front)
	n := 0
	for n < len(m.st.live) && m.st.live[n].end <= m.st.front {
		n++
	}
	freed := append([]sealEntry(nil), m.st.live[:n]...)
	m.st.dead = append(m.st.dead, freed...)
	m.st.live = append(m.st.live[:0:0], m.st.live[n:]...)
	m.mu.Unlock()
	return freed, m.sync()
}

// setGone records that every released segment ending at or before gone has
// been removed, unsynced (if it is lost, the next Open just removes them
// again), and compacts the file once it has grown enough.
func (m *manifest) setGone(gone uint64) error {
	m.mu.Lock()
	m.buf = encodeEntry(m.buf[:0], kindGone, gone, 0, 0)
	if err := m.append(m.buf); err != nil {
		m.mu.Unlock()
		return err
	}
	m.st.gone = max(m.st.gone, gone)
	n := 0
	for n < len(m.st.dead) && m.st.dead[n].end <= m.st.gone {
		n++
	}
	m.st.dead = append(m.st.dead[:0:0], m.st.dead[n:]...)
	grown := m.st.entries > 2*(3+len(m.st.live)+len(m.st.dead))+m.compactAt
	m.mu.Unlock()
	if grown {
		return m.compact()
	}
	return nil
}

// compact rewrites the file with what is still needed. The new file is
// written and synced without any lock; it replaces the old one only if
// nothing was appended meanwhile (otherwise the next Release tries again).
func (m *manifest) compact() error {
	m.mu.Lock()
	data, gen := m.st.encode(), m.written
	m.mu.Unlock()
	tmp := m.path + suffixTmp
	if err := writeSynced(m.fs, tmp, data); err != nil {
		return fmt.Errorf("compact manifest: %w", err)
	}
	m.fileMu.Lock()
	defer m.fileMu.Unlock()
	m.mu.Lock()
	if m.written != gen {
		m.mu.Unlock()
		m.fs.Remove(tmp) // a leftover would only be removed by the next Open
		return nil
	}
	if err := m.fs.Rename(tmp, m.path); err != nil {
		m.mu.Unlock()
		return fmt.Errorf("compact manifest: %w", err)
	}
	if m.f != nil {
		m.f.Close()
		m.f = nil
	}
	m.st.entries = len(data) / manifestEntry
	m.compactions++
	m.appended = 0
	m.mu.Unlock()
	// Until the rename is durable a crash may bring back the old file:
	// syncs wait for it (they need fileMu).
	if err := m.fs.SyncDir(filepath.Dir(m.path)); err != nil {
		return fmt.Errorf("compact manifest: %w", err)
	}
	m.mu.Lock()
	m.synced = max(m.synced, gen)
	m.mu.Unlock()
	return nil
}

// writeSynced creates path with data and syncs it.
func writeSynced(fsys fsutil.FS, path string, data []byte) error {
	f, err := fsys.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// sync makes every entry appended so far durable. It costs a lock and a
// comparison when there is nothing to sync (every Sync of the Log asks).
func (m *manifest) sync() error {
	m.mu.Lock()
	gen := m.written
	done := m.synced >= gen
	m.mu.Unlock()
	if done {
		return nil
	}
	m.fileMu.RLock()
	defer m.fileMu.RUnlock()
	m.mu.Lock()
	f := m.f
	done = m.synced >= gen || f == nil
	m.mu.Unlock()
	if done {
		return nil
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync manifest: %w", err)
	}
	m.mu.Lock()
	m.synced = max(m.synced, gen)
	m.mu.Unlock()
	return nil
}

// tidy rewrites the file in one piece if entries were appended to it since
// it last was, so that the next Open reads it in one go. Close calls it.
func (m *manifest) tidy() error {
	m.mu.Lock()
	n := m.appended
	m.mu.Unlock()
	if n == 0 {
		return nil
	}
	return m.compact()
}

func (m *manifest) close() error {
	m.fileMu.Lock()
	defer m.fileMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return nil
	}
	err := m.f.Close()
	m.f = nil
	return err
}
