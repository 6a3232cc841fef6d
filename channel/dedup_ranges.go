package channel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// The committed range set of one origin: which of an upstream channel's
// event sequence numbers this channel has already committed, so that a resend
// of them (the upstream sink crashed, or lost our reply) is answered OK
// without being put again (README, "No duplicates between hops").
//
// Why ranges and never a high-water mark. An upstream sink keeps several
// batches in flight (pipeline-depth), and a receiver may commit them out of
// order. With a high-water mark, batch B (seq 101–200) committing before
// batch A (1–100) would raise the mark past A, and a resend of A, which was
// never committed here, would be taken for a duplicate and dropped: lost.
// A range set only ever says "committed" of a number it was told was
// committed. TestHighWaterMarkLosesAnOutOfOrderResend pins this.
//
// The one-way rule every operation keeps: the set may forget a committed
// number (a later resend of it is then put again: a duplicate), it never
// claims one that was not committed (a resend would be dropped: a loss).
// Ranges that join or touch merge, which is exact; bounding the set drops the
// lowest range, which forgets; nothing ever fills a gap.
//
// A RangeSet is a value with no lock: its owner (the file channel's queue
// state, under f.mu) serialises every use.

// span is the half-open range of sequence numbers [lo, hi), lo < hi.
type span struct{ lo, hi uint64 }

// DefaultMaxRanges is how many disjoint ranges one origin keeps. In order
// commits keep one; every batch committed while an earlier one of the same
// origin is not yet adds at most one, and the upstream window
// (sink.Window: 3 × its pipeline-depth) bounds those, so 32 is slack for the
// avro sink's default depth 4 (12); a deeper pipeline can exceed it, which
// costs duplicates, never a loss. At 16 bytes a
// range the set stays under 1 KiB in memory and on disk.
const DefaultMaxRanges = 32

// RangeSet is a set of uint64 sequence numbers kept as sorted, disjoint,
// non-touching ranges, at most max of them. The zero value is empty with the
// default bound.
type RangeSet struct {
	r   []span // sorted by lo; r[i].hi < r[i+1].lo
	max int    // 0: DefaultMaxRanges
}

// NewRangeSet returns an empty set that keeps at most max ranges (max < 1:
// DefaultMaxRanges).
func NewRangeSet(max int) RangeSet {
	if max < 1 {
		max = DefaultMaxRanges
	}
	return RangeSet{max: max}
}

func (s *RangeSet) bound() int {
	if s.max < 1 {
		return DefaultMaxRanges
	}
	return s.max
}

// Contains reports whether seq was added and not forgotten since.
func (s *RangeSet) Contains(seq uint64) bool {
	// The first range whose hi is above seq is the only one that may hold it.
	i, _ := slices.BinarySearchFunc(s.r, seq, func(r span, seq uint64) int {
		if r.hi <= seq {
			return -1
		}
		return 1
	})
	return i < len(s.r) && s.r[i].lo <= seq
}

// Add records [lo, hi) as committed, merging it with every range it overlaps
// or touches. An empty range (lo >= hi) changes nothing. It returns how many
// ranges the bound made the set forget (the lowest first): each is logged by
// the owner, since a resend of what they held would be put again.
func (s *RangeSet) Add(lo, hi uint64) (dropped int) {
	if lo >= hi {
		return 0
	}
	// [i, j) are the ranges that overlap or touch [lo, hi): i is the first
	// whose hi reaches lo, j the first that starts past hi.
	i, _ := slices.BinarySearchFunc(s.r, lo, func(r span, lo uint64) int {
		if r.hi < lo {
			return -1
		}
		return 1
	})
	j := i
	for j < len(s.r) && s.r[j].lo <= hi {
		j++
	}
	if i < j {
		lo = min(lo, s.r[i].lo)
		hi = max(hi, s.r[j-1].hi)
	}
	s.r = slices.Replace(s.r, i, j, span{lo, hi})
	if n := len(s.r) - s.bound(); n > 0 {
		// Forget the oldest: the numbers an upstream sink is least likely
		// to send again. Never merge two ranges instead: that would claim
		// the gap between them.
		s.r = slices.Delete(s.r, 0, n)
		return n
	}
	return 0
}

// Ranges returns how many disjoint ranges the set holds.
func (s *RangeSet) Ranges() int { return len(s.r) }

// Each calls fn with every range [lo, hi), lowest first.
func (s *RangeSet) Each(fn func(lo, hi uint64)) {
	for _, r := range s.r {
		fn(r.lo, r.hi)
	}
}

// String shows the ranges as Flume-style inclusive intervals: "[1-100 201-300]".
func (s *RangeSet) String() string {
	b := []byte{'['}
	for i, r := range s.r {
		if i > 0 {
			b = append(b, ' ')
		}
		b = fmt.Appendf(b, "%d-%d", r.lo, r.hi-1)
	}
	return string(append(b, ']'))
}

// AppendBinary appends the set's encoding to b: a uvarint count, then per
// range, lowest first, uvarint(lo − previous hi) and uvarint(hi − lo), the
// first range's gap counted from 0. Deltas keep an in-order origin's set
// (one range) at a few bytes, and any set under 20 bytes a range.
func (s *RangeSet) AppendBinary(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s.r)))
	var prev uint64
	for _, r := range s.r {
		b = binary.AppendUvarint(b, r.lo-prev)
		b = binary.AppendUvarint(b, r.hi-r.lo)
		prev = r.hi
	}
	return b
}

// errRangeSet is the cause of every decoding failure.
var errRangeSet = errors.New("bad range set")

// DecodeRangeSet reads a set AppendBinary wrote at the start of b, keeping at
// most max ranges (the lowest forgotten first, as Add does), and returns it
// with the number of bytes read. It rejects a set that is not sorted,
// disjoint and non-touching, or whose numbers overflow: a corrupt set must
// fail, never be read as ranges that were not committed.
func DecodeRangeSet(b []byte, max int) (RangeSet, int, error) {
	s := NewRangeSet(max)
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return s, 0, fmt.Errorf("%w: count", errRangeSet)
	}
	off := k
	// Each range takes at least two bytes: a count above that is corrupt,
	// and must not size an allocation.
	if n > uint64(len(b)-off)/2 {
		return s, 0, fmt.Errorf("%w: %d ranges in %d bytes", errRangeSet, n, len(b)-off)
	}
	s.r = make([]span, 0, min(int(n), s.bound()))
	var prev uint64
	for i := uint64(0); i < n; i++ {
		gap, k1 := binary.Uvarint(b[off:])
		if k1 <= 0 {
			return s, 0, fmt.Errorf("%w: range %d", errRangeSet, i)
		}
		off += k1
		width, k2 := binary.Uvarint(b[off:])
		if k2 <= 0 {
			return s, 0, fmt.Errorf("%w: range %d", errRangeSet, i)
		}
		off += k2
		lo := prev + gap
		hi := lo + width
		// A zero gap after the first range would touch the one before,
		// a zero width is empty, and a wrap is an overflow: none of them
		// is written by AppendBinary.
		if (i > 0 && gap == 0) || width == 0 || lo < prev || hi < lo {
			return s, 0, fmt.Errorf("%w: range %d", errRangeSet, i)
		}
		s.r = append(s.r, span{lo, hi})
		prev = hi
	}
	if d := len(s.r) - s.bound(); d > 0 {
		s.r = slices.Delete(s.r, 0, d)
	}
	return s, off, nil
}
