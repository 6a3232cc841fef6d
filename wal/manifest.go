package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"

	"github.com/flumed/flumed/internal/fsutil"
)

// The manifest lists the sealed segments, so that Open knows them without
// listing sealed/ (doc.go, "Files"). It is a log of fixed 32-byte entries,
// little-endian:
//
//	off len field
//	0   1   kind: 1 header, 2 seal, 3 front, 4 gone
//	1   3   zero
//	4   4   CRC32C of bytes 0..3 followed by bytes 8..31
//	8   8   a
//	16  8   b
//	24  8   c
//
//	header  a = manifestMagic, b = manifestVersion; always the first entry
//	seal    the segment holding [a, b) is in sealed/, c bytes long
//	front   a is the first index: every record before it was released
//	gone    every sealed segment ending at or before a has been removed
//
// Seals are contiguous: each starts where the one before it ends. Entries are
// only appended (one write each, so a crash leaves at most a torn last entry)
// until compaction rewrites the file atomically with what is still needed.
const (
	manifestName    = "manifest"
	sealedDirName   = "sealed"
	manifestEntry   = 32
	manifestMagic   = 0x316e616d6c617766 // "fwalman1"
	manifestVersion = 1

	kindHeader = 1
	kindSeal   = 2
	kindFront  = 3
	kindGone   = 4

	// compactSlack: the manifest is rewritten once it holds this many
	// entries more than twice what is still needed.
	compactSlack = 64
)

// sealEntry is one sealed segment: indexes [first, end), size bytes.
type sealEntry struct {
	first, end uint64
	size       int64
}

// manifestState is what a manifest file says.
type manifestState struct {
	exists  bool
	live    []sealEntry // seals holding records at or after front, oldest first
	dead    []sealEntry // released seals whose removal is not known to be done
	front   uint64
	gone    uint64
	entries int   // valid entries in the file, header included
	valid   int64 // bytes of those entries
	// torn: the file ends in a partial or failed entry (a crash mid-append):
	// everything before it holds.
	torn bool
	// bad: the file cannot be trusted past the valid entries (no header,
	// damage before the end, seals out of order). Open rebuilds the list
	// from sealed/; the front read before the damage still holds.
	bad error
}

// lastEnd is where the last live seal ends, or 0.
func (m *manifestState) lastEnd() uint64 {
	if len(m.live) == 0 {
		return 0
	}
	return m.live[len(m.live)-1].end
}

func encodeEntry(dst []byte, kind byte, a, b, c uint64) []byte {
	var e [manifestEntry]byte
	e[0] = kind
	binary.LittleEndian.PutUint64(e[8:], a)
	binary.LittleEndian.PutUint64(e[16:], b)
	binary.LittleEndian.PutUint64(e[24:], c)
	binary.LittleEndian.PutUint32(e[4:], entryCRC(e[:]))
	return append(dst, e[:]...)
}

func entryCRC(e []byte) uint32 {
	return crc32.Update(crc32.Checksum(e[:4], castagnoli), castagnoli, e[8:manifestEntry])
}

func sealBytes(dst []byte, e sealEntry) []byte {
	return encodeEntry(dst, kindSeal, e.first, e.end, uint64(e.size))
}

// readManifest reads dir's manifest. A missing file is not an error.
func readManifest(dir string) (manifestState, error) {
	var m manifestState
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, fmt.Errorf("read manifest: %w", err)
	}
	m.exists = true
	parseManifest(&m, data)
	return m, nil
}

func parseManifest(m *manifestState, data []byte) {
	var seals []sealEntry
	for off := 0; off < len(data); off += manifestEntry {
		if len(data)-off < manifestEntry {
			m.torn = true
			break
		}
		e := data[off : off+manifestEntry]
		if binary.LittleEndian.Uint32(e[4:]) != entryCRC(e) || e[1]|e[2]|e[3] != 0 {
			if off+manifestEntry < len(data) {
				m.bad = fmt.Errorf("manifest entry at offset %d: %w", off, ErrChecksum)
			} else {
				m.torn = true
			}
			break
		}
		a, b, c := binary.LittleEndian.Uint64(e[8:]), binary.LittleEndian.Uint64(e[16:]), binary.LittleEndian.Uint64(e[24:])
		if (off == 0) != (e[0] == kindHeader) {
			m.bad = fmt.Errorf("manifest entry at offset %d: kind %d where the header belongs", off, e[0])
			break
		}
		switch e[0] {
		case kindHeader:
			if a != manifestMagic || b != manifestVersion {
				m.bad = fmt.Errorf("manifest: unknown format %#x version %d", a, b)
			}
		case kindSeal:
			// A seal at or before an earlier one replaces it and those after
			// it: the segment was sealed again after a power loss undid a
			// roll.
			for len(seals) > 0 && seals[len(seals)-1].first >= a {
				seals = seals[:len(seals)-1]
			}
			if b <= a || len(seals) > 0 && seals[len(seals)-1].end != a {
				m.bad = fmt.Errorf("manifest entry at offset %d: seal [%d, %d) does not follow the last one", off, a, b)
				break
			}
			seals = append(seals, sealEntry{first: a, end: b, size: int64(c)})
		case kindFront:
			m.front = max(m.front, a)
		case kindGone:
			m.gone = max(m.gone, a)
		default:
			m.bad = fmt.Errorf("manifest entry at offset %d: unknown kind %d", off, e[0])
		}
		if m.bad != nil {
			break
		}
		m.entries++
		m.valid = int64(off + manifestEntry)
	}
	if m.entries == 0 && m.bad == nil {
		m.bad = errors.New("manifest has no header")
	}
	for _, s := range seals {
		switch {
		case s.end > m.front:
			m.live = append(m.live, s)
		case s.end > m.gone:
			m.dead = append(m.dead, s)
		}
	}
}

// encode returns the manifest holding just s: the header, the front, and the
// seals still needed.
func (m *manifestState) encode() []byte {
	b := encodeEntry(nil, kindHeader, manifestMagic, manifestVersion, 0)
	if m.front > 0 {
		b = encodeEntry(b, kindFront, m.front, 0, 0)
	}
	if m.gone > 0 {
		b = encodeEntry(b, kindGone, m.gone, 0, 0)
	}
	for _, s := range m.dead {
		b = sealBytes(b, s)
	}
	for _, s := range m.live {
		b = sealBytes(b, s)
	}
	return b
}

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
	buf     []byte
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
	m.synced = m.written
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
