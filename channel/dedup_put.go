package channel

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// The put side of deduplication between hops: a put transaction that knows,
// for each event, which upstream channel (origin) it came from and the
// sequence number it had there, leaves out the events this channel already
// committed and records the rest with the put.
//
// For the file channel the record is the put's own WAL record: the origin
// trailer below rides in the same wal entry as the events, under the same
// CRC, so the events and the claim "these numbers of that origin are
// committed here" are one atomic write. A claim is never made for an event
// that is not durable here: the table (Origins) learns a record's ranges only
// once its commit is (putsWritten), and restart rebuilds it from the
// checkpoint and the records after it (file_recover.go).

// OriginPutter is the optional power of a put transaction (a Txn) that
// deduplicates: the file and memory channels' transactions have it.
type OriginPutter interface {
	// PutFrom stages events like Put, event i being number seqs[i] of
	// origin (len(seqs) == len(events)). Events whose number this channel
	// committed already, or that this transaction staged already, are left
	// out: a commit of the transaction answers for them as for the rest,
	// because they are committed (a duplicate resent by the upstream sink
	// after a crash or a lost reply). It returns how many it left out. The
	// errors are Put's; on error nothing of this call is staged. The same
	// goroutine rules as Put apply.
	PutFrom(origin OriginID, seqs []uint64, events []Event) (skipped int, err error)
}

// PutFrom stages events on t through OriginPutter when t has it, and with
// Put (no deduplication) otherwise.
func PutFrom(t Txn, origin OriginID, seqs []uint64, events []Event) (skipped int, err error) {
	if p, ok := t.(OriginPutter); ok && len(seqs) == len(events) {
		return p.PutFrom(origin, seqs, events)
	}
	return 0, t.Put(events...)
}

// stagedOrigin is what one transaction puts of one origin: the numbers of its
// events, as exact ranges (the bound is never reached: a record holds fewer
// events than maxRecordEvents).
type stagedOrigin struct {
	id OriginID
	rs RangeSet
}

// originStage is a transaction's staged origins, usually one.
type originStage []stagedOrigin

// get returns the entry of id, adding it when absent.
func (s *originStage) get(id OriginID) *RangeSet {
	for i := range *s {
		if (*s)[i].id == id {
			return &(*s)[i].rs
		}
	}
	*s = append(*s, stagedOrigin{id: id, rs: NewRangeSet(maxRecordEvents)})
	return &(*s)[len(*s)-1].rs
}

// staged reports whether seq of id is staged.
func (s originStage) staged(id OriginID, seq uint64) bool {
	for i := range s {
		if s[i].id == id {
			return s[i].rs.Contains(seq)
		}
	}
	return false
}

// addSeqs stages seqs of id, as runs of consecutive numbers.
func (s *originStage) addSeqs(id OriginID, seqs []uint64) {
	if len(seqs) == 0 {
		return
	}
	rs := s.get(id)
	lo, hi := seqs[0], seqs[0]+1
	for _, q := range seqs[1:] {
		if q == hi {
			hi++
			continue
		}
		rs.Add(lo, hi)
		lo, hi = q, q+1
	}
	rs.Add(lo, hi)
}

// commitTo records the staged ranges in o at now.
func (s originStage) commitTo(o *Origins, now int64) {
	t := time.UnixMilli(now)
	for _, so := range s {
		so.rs.Each(func(lo, hi uint64) { o.Commit(so.id, lo, hi, t) })
	}
}

// dedupFilter returns the events of one PutFrom that must be staged, with
// their numbers, leaving out those committed (by committed) or staged
// already. It allocates only when something is left out.
func dedupFilter(st originStage, origin OriginID, seqs []uint64, events []Event, committed func(uint64) bool) ([]uint64, []Event) {
	keepSeqs, keep := seqs, events
	copied := false
	rising := true // seqs[:i] strictly increase: seqs[i] repeats none of them when above the last
	for i, q := range seqs {
		dup := committed(q) || st.staged(origin, q)
		if i > 0 && q <= seqs[i-1] {
			rising = false
		}
		if !dup && !rising {
			// A repeat inside one call is a duplicate too.
			for _, p := range seqs[:i] {
				if p == q {
					dup = true
					break
				}
			}
		}
		switch {
		case dup && !copied:
			keepSeqs = append(make([]uint64, 0, len(seqs)), seqs[:i]...)
			keep = append(make([]Event, 0, len(events)), events[:i]...)
			copied = true
		case !dup && copied:
			keepSeqs = append(keepSeqs, q)
			keep = append(keep, events[i])
		}
	}
	return keepSeqs, keep
}

// The origin trailer of a put record (FILE_FORMAT.md, "Origins of a put"):
// after the record as it would be without it (header, body, sealed or not),
// uvarint(number of origins), then per origin its 16 id bytes and the range
// set of its events' numbers (RangeSet.AppendBinary), then the trailer's
// length as 4 bytes little-endian, last, so a reader finds it from the end.
// Flag bit 3 (recordFlagOrigins) says it is there.

// recordFlagOrigins marks a put record ending with an origin trailer.
const recordFlagOrigins = 1 << 3

// appendOriginTrailer appends s's trailer to rec.
func appendOriginTrailer(rec []byte, s originStage) []byte {
	at := len(rec)
	rec = binary.AppendUvarint(rec, uint64(len(s)))
	for _, so := range s {
		rec = append(rec, so.id[:]...)
		rec = so.rs.AppendBinary(rec)
	}
	return binary.LittleEndian.AppendUint32(rec, uint32(len(rec)-at))
}

// splitOriginTrailer returns the record without its origin trailer, and the
// trailer's origins, for a record whose header h says it has one (otherwise
// rec and nil). A trailer that does not parse is damage.
func splitOriginTrailer(rec []byte, h recordHeader) ([]byte, originStage, error) {
	if h.Flags&recordFlagOrigins == 0 {
		return rec, nil, nil
	}
	if len(rec) < recordHeaderSize+4 {
		return nil, nil, fmt.Errorf("%w: no room for an origin trailer", errBadRecord)
	}
	n := binary.LittleEndian.Uint32(rec[len(rec)-4:])
	if uint64(n) > uint64(len(rec)-recordHeaderSize-4) {
		return nil, nil, fmt.Errorf("%w: origin trailer of %d bytes in a %d-byte record", errBadRecord, n, len(rec))
	}
	core := rec[:len(rec)-4-int(n)]
	t := rec[len(core) : len(rec)-4]
	count, k := binary.Uvarint(t)
	if k <= 0 || count == 0 || count > uint64(len(t)/(len(OriginID{})+1)) {
		return nil, nil, fmt.Errorf("%w: origin trailer count", errBadRecord)
	}
	t = t[k:]
	s := make(originStage, 0, count)
	for i := uint64(0); i < count; i++ {
		var so stagedOrigin
		if len(t) < len(so.id) {
			return nil, nil, fmt.Errorf("%w: origin trailer entry %d", errBadRecord, i)
		}
		t = t[copy(so.id[:], t):]
		rs, k, err := DecodeRangeSet(t, math.MaxInt)
		if err != nil || rs.Ranges() == 0 {
			return nil, nil, fmt.Errorf("%w: origin trailer entry %d: %v", errBadRecord, i, err)
		}
		so.rs = rs
		t = t[k:]
		s = append(s, so)
	}
	if len(t) != 0 {
		return nil, nil, fmt.Errorf("%w: %d bytes after the origin trailer's entries", errBadRecord, len(t))
	}
	return core, s, nil
}
