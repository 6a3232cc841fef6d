package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
)

// The manifest lists the sealed segments, so that Open knows them without
// listing sealed/ (doc.go, "Files"). It is a log of fixed 32-byte entries,
// little-endian:
//
//	off len field
//	0   1   kind: 1 header, 2 seal, 3 front, 4 gone
//	1   3   zero
//	4   8   a
//	12  8   b
//	20  8   c
//	28  4   CRC32C (Castagnoli) of bytes 0..27
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
	binary.LittleEndian.PutUint64(e[4:], a)
	binary.LittleEndian.PutUint64(e[12:], b)
	binary.LittleEndian.PutUint64(e[20:], c)
	binary.LittleEndian.PutUint32(e[28:], entryCRC(e[:]))
	return append(dst, e[:]...)
}

func entryCRC(e []byte) uint32 { return crc32.Checksum(e[:28], castagnoli) }

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
	seals := make([]sealEntry, 0, len(data)/manifestEntry)
	for off := 0; off < len(data); off += manifestEntry {
		if len(data)-off < manifestEntry {
			m.torn = true
			break
		}
		e := data[off : off+manifestEntry]
		if binary.LittleEndian.Uint32(e[28:]) != entryCRC(e) || e[1]|e[2]|e[3] != 0 {
			if off+manifestEntry < len(data) {
				m.bad = fmt.Errorf("manifest entry at offset %d: %w", off, ErrChecksum)
			} else {
				m.torn = true
			}
			break
		}
		a, b, c := binary.LittleEndian.Uint64(e[4:]), binary.LittleEndian.Uint64(e[12:]), binary.LittleEndian.Uint64(e[20:])
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
	for i, s := range seals {
		if s.end > m.front {
			m.live = seals[i:]
			break
		}
		if s.end > m.gone {
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
