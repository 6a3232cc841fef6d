package avrorpc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The identity of an appendBatch's events, carried in the call metadata (the
// map<bytes> every Avro IPC request starts with after the handshake), so that
// a receiver can recognise events it already committed when a sender resends
// them (README, "No duplicates between hops"). Apache Flume's Java responder
// reads that map and ignores keys it does not know, so a flumed sender talks
// to Flume exactly as before (the request bytes differ only in the map), and
// a request without these keys (from Flume, or any other client) is served
// as before.
//
//	flumed.origin  16 bytes: the sending channel's identity
//	flumed.seqs    each event's sequence number there, in event order, as
//	               runs: uvarint(count of runs), then per run
//	               zigzag varint(start − end of the previous run, 0 for the
//	               first) and uvarint(length ≥ 1)
//
// A batch taken in order is one run: a few bytes whatever its size.

// Metadata keys of Identity.
const (
	metaOrigin = "flumed.origin"
	metaSeqs   = "flumed.seqs"
)

// Identity names the events of one appendBatch: Seqs[i] is event i's
// sequence number under Origin.
type Identity struct {
	Origin [16]byte
	Seqs   []uint64
}

// appendCallMeta appends the call metadata map: empty when id is nil.
func appendCallMeta(b []byte, id *Identity) []byte {
	if id == nil {
		return append(b, 0)
	}
	b = appendLong(b, 2)
	b = appendString(b, metaOrigin)
	b = appendLong(b, int64(len(id.Origin)))
	b = append(b, id.Origin[:]...)
	b = appendString(b, metaSeqs)
	runs := appendSeqRuns(nil, id.Seqs)
	b = appendLong(b, int64(len(runs)))
	b = append(b, runs...)
	return append(b, 0)
}

// appendSeqRuns appends seqs as runs (see the top of this file).
func appendSeqRuns(b []byte, seqs []uint64) []byte {
	var runs [][2]uint64 // start, length
	for _, q := range seqs {
		if n := len(runs); n > 0 && runs[n-1][0]+runs[n-1][1] == q {
			runs[n-1][1]++
			continue
		}
		runs = append(runs, [2]uint64{q, 1})
	}
	b = binary.AppendUvarint(b, uint64(len(runs)))
	var end uint64
	for _, r := range runs {
		b = binary.AppendVarint(b, int64(r[0]-end))
		b = binary.AppendUvarint(b, r[1])
		end = r[0] + r[1]
	}
	return b
}

var errSeqRuns = errors.New("bad flumed.seqs")

// decodeSeqRuns reads what appendSeqRuns wrote, expecting exactly n numbers.
func decodeSeqRuns(b []byte, n int) ([]uint64, error) {
	count, k := binary.Uvarint(b)
	if k <= 0 || count > uint64(n) {
		return nil, fmt.Errorf("%w: run count", errSeqRuns)
	}
	b = b[k:]
	out := make([]uint64, 0, n)
	var end uint64
	for i := uint64(0); i < count; i++ {
		delta, k1 := binary.Varint(b)
		if k1 <= 0 {
			return nil, fmt.Errorf("%w: run %d", errSeqRuns, i)
		}
		length, k2 := binary.Uvarint(b[k1:])
		if k2 <= 0 || length == 0 || length > uint64(n-len(out)) {
			return nil, fmt.Errorf("%w: run %d", errSeqRuns, i)
		}
		b = b[k1+k2:]
		start := end + uint64(delta)
		if start+length < start {
			return nil, fmt.Errorf("%w: run %d overflows", errSeqRuns, i)
		}
		for q := start; q < start+length; q++ {
			out = append(out, q)
		}
		end = start + length
	}
	if len(out) != n || len(b) != 0 {
		return nil, fmt.Errorf("%w: %d numbers for %d events", errSeqRuns, len(out), n)
	}
	return out, nil
}

// callMeta is what a call's metadata said, before the events are decoded.
type callMeta struct {
	origin []byte // flumed.origin, nil when absent
	seqs   []byte // flumed.seqs, nil when absent
}

// readCallMeta reads the call metadata map, keeping the values of the
// identity's keys and skipping every other entry, as Java's responder does.
func readCallMeta(d *decoder) (callMeta, error) {
	var m callMeta
	const what = "call metadata"
	total := 0
	for {
		n, err := d.blockCount(what, maxHandshakeMeta-total, 2)
		if err != nil {
			return m, err
		}
		if n == 0 {
			return m, nil
		}
		total += n
		for i := 0; i < n; i++ {
			k, err := d.rawBytes(what+" key", 0)
			if err != nil {
				return m, err
			}
			v, err := d.rawBytes(what+" value", 0)
			if err != nil {
				return m, err
			}
			switch string(k) {
			case metaOrigin:
				m.origin = v
			case metaSeqs:
				m.seqs = v
			}
		}
	}
}

// identity returns the Identity of a batch of n events, or nil when the
// metadata has none or one that does not fit the batch: such a batch is put
// as one from a sender without identity (duplicates possible, never a loss).
func (m callMeta) identity(n int) *Identity {
	if len(m.origin) != 16 || m.seqs == nil || n == 0 {
		return nil
	}
	seqs, err := decodeSeqRuns(m.seqs, n)
	if err != nil {
		return nil
	}
	id := &Identity{Seqs: seqs}
	copy(id.Origin[:], m.origin)
	return id
}
