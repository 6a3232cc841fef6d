package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record layout, inside one tidwall entry (doc.go has the whole picture):
//
//	off len field
//	0   1   version (recordVersion)
//	1   8   index, uint64 little-endian: the log index the record was written at
//	9   4   payload length, uint32 little-endian
//	13  4   CRC32C (Castagnoli) over bytes 0..12 followed by the payload
//	17  n   payload
const (
	recordVersion = 1
	headerSize    = 17
	// MaxPayload is the largest payload one record may carry.
	MaxPayload = 1<<30 - headerSize
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Why a record cannot be delivered. A *CorruptionError wraps one of these.
var (
	// ErrEmpty: the entry has no bytes (a zero-filled tail frames as a run of
	// empty entries; repair also writes empty entries as placeholders for
	// records it could not save, so that later indexes keep their numbers).
	ErrEmpty = errors.New("empty entry")
	// ErrZeroed: the entry is all zero bytes.
	ErrZeroed = errors.New("all-zero entry")
	// ErrVersion: the entry does not start with a known record version.
	ErrVersion = errors.New("unknown record version")
	// ErrLength: the entry is shorter than a header, or its length disagrees
	// with the payload length in the header.
	ErrLength = errors.New("record length mismatch")
	// ErrChecksum: the CRC32C does not match the header and payload.
	ErrChecksum = errors.New("record checksum mismatch")
	// ErrIndex: an intact record carries another index than its position.
	ErrIndex = errors.New("record at the wrong index")
	// ErrMissing: no intact record for this index could be found in its
	// segment (its bytes were lost or re-framed by damage before it).
	ErrMissing = errors.New("record missing")
	// ErrTornTail: the last segment ends in bytes that are not a whole valid
	// record. Only read-only views report it; Open cuts such a tail.
	ErrTornTail = errors.New("torn tail")
)

// CorruptionError reports a record that is never delivered. Readers return it
// in place of the record, one per lost index, and can go on past it.
type CorruptionError struct {
	Segment string // base name of the segment file
	Offset  int64  // byte offset in the segment where the damage starts
	Index   uint64 // the log index that cannot be delivered
	Err     error  // one of ErrEmpty, ErrZeroed, ... ErrTornTail
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("wal: index %d in segment %s at offset %d: %v", e.Index, e.Segment, e.Offset, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

// appendRecord appends the record of payload at index to dst.
func appendRecord(dst []byte, index uint64, payload []byte) []byte {
	var h [headerSize]byte
	h[0] = recordVersion
	binary.LittleEndian.PutUint64(h[1:9], index)
	binary.LittleEndian.PutUint32(h[9:13], uint32(len(payload)))
	crc := crc32.Update(crc32.Checksum(h[:13], castagnoli), castagnoli, payload)
	binary.LittleEndian.PutUint32(h[13:17], crc)
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// decodeRecord checks one tidwall entry and returns the index it was written
// at and its payload, which aliases entry.
func decodeRecord(entry []byte) (index uint64, payload []byte, err error) {
	if len(entry) == 0 {
		return 0, nil, ErrEmpty
	}
	if entry[0] != recordVersion {
		if allZero(entry) {
			return 0, nil, ErrZeroed
		}
		return 0, nil, ErrVersion
	}
	if len(entry) < headerSize || uint64(binary.LittleEndian.Uint32(entry[9:13])) != uint64(len(entry)-headerSize) {
		return 0, nil, ErrLength
	}
	payload = entry[headerSize:]
	crc := crc32.Update(crc32.Checksum(entry[:13], castagnoli), castagnoli, payload)
	if crc != binary.LittleEndian.Uint32(entry[13:17]) {
		return 0, nil, ErrChecksum
	}
	return binary.LittleEndian.Uint64(entry[1:9]), payload, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// frameSize is the size of the tidwall frame holding a record of n payload
// bytes: uvarint length, header, payload.
func frameSize(n int) int64 {
	l := uint64(headerSize + n)
	s := int64(1)
	for l >= 0x80 {
		l >>= 7
		s++
	}
	return s + int64(headerSize+n)
}
