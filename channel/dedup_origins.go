package channel

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"
)

// The receiver's dedup state: per origin (an upstream channel, named by its
// identity), the range set of its sequence numbers this channel committed
// and when it was last heard from. Bounded two ways, both forgetting (a
// forgotten origin's resends are put again: duplicates, never a loss):
//
//   - Silence. An origin not heard from for longer than Silence (default 7
//     days: past any retry or outage a sender rides out with its backlog)
//     is forgotten at the next Expire.
//   - Count. At most MaxOrigins origins; a new one past that first expires
//     the silent ones, then drops the one heard from longest ago, and logs
//     it. Each origin holds at most MaxRanges ranges (dedup_ranges.go).
//
// Origins has no lock: its owner serialises every use (the file channel's
// queue state under f.mu, a memory channel's mutex).

// OriginID names a channel upstream: 16 random bytes, created once per file
// channel and kept with its checkpoint, or once per process life for a
// memory channel.
type OriginID [16]byte

// NewOriginID returns a random identity. Two channels drawing the same one is
// as likely as a UUIDv4 collision. (crypto/rand.Read never returns an error:
// it crashes the program when the system has no randomness to give.)
func NewOriginID() OriginID {
	var id OriginID
	_, _ = rand.Read(id[:])
	return id
}

// Originator is the optional power of a channel whose taken events the next
// hop can recognise when they are sent again: Origin names the channel as a
// source of events, and under one Origin a sequence number is never given to
// two different events, whatever crash came between. A channel that cannot
// promise that after a restart (a lost checkpoint, interval syncing) takes a
// new Origin instead: the next hop then puts a resend again (a duplicate),
// never drops a new event as one it already has (a loss).
type Originator interface {
	Origin() OriginID
}

// Sequenced is the optional power of a take transaction whose events carry
// sequence numbers under its channel's Origin (the file channel's). Seqs
// returns the numbers of the events Take returned so far in this
// transaction, in the order returned; the caller must not modify the slice.
// Only the goroutine using the transaction may call it, before it ends.
type Sequenced interface {
	Seqs() []uint64
}

// String is the identity in hex, as the wire and `wal inspect` show it.
func (id OriginID) String() string { return hex.EncodeToString(id[:]) }

// ParseOriginID reads what String wrote.
func ParseOriginID(s string) (OriginID, error) {
	var id OriginID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("origin id %q: not %d hex bytes", s, len(id))
	}
	copy(id[:], b)
	return id, nil
}

// Defaults of OriginsOptions.
const (
	DefaultOriginSilence = 7 * 24 * time.Hour
	DefaultMaxOrigins    = 4096 // × ≤ 1 KiB each: at most a few MiB
)

// OriginsOptions bounds an Origins table. Zero fields take the defaults.
type OriginsOptions struct {
	Silence    time.Duration // forget an origin not heard from for longer
	MaxOrigins int
	MaxRanges  int          // per origin
	Log        *slog.Logger // where a dropped origin is logged; nil: discarded
}

func (o OriginsOptions) withDefaults() OriginsOptions {
	if o.Silence <= 0 {
		o.Silence = DefaultOriginSilence
	}
	if o.MaxOrigins < 1 {
		o.MaxOrigins = DefaultMaxOrigins
	}
	if o.MaxRanges < 1 {
		o.MaxRanges = DefaultMaxRanges
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// originState is what one origin's entry holds.
type originState struct {
	ranges   RangeSet
	lastSeen time.Time
}

// Origins is the table of every origin's committed ranges.
type Origins struct {
	opts OriginsOptions
	m    map[OriginID]*originState
}

// NewOrigins returns an empty table.
func NewOrigins(opts OriginsOptions) *Origins {
	return &Origins{opts: opts.withDefaults(), m: map[OriginID]*originState{}}
}

// Committed reports whether seq of origin id was committed here and not
// forgotten since: a resend of it is answered without a put.
func (o *Origins) Committed(id OriginID, seq uint64) bool {
	st := o.m[id]
	return st != nil && st.ranges.Contains(seq)
}

// Commit records [lo, hi) of origin id as committed at now. Only a commit
// that is durable (or, for a memory channel, done) may be recorded: the
// table is what makes a resend vanish.
func (o *Origins) Commit(id OriginID, lo, hi uint64, now time.Time) {
	st := o.m[id]
	if st == nil {
		if len(o.m) >= o.opts.MaxOrigins {
			o.Expire(now)
		}
		if len(o.m) >= o.opts.MaxOrigins {
			o.dropOldest()
		}
		st = &originState{ranges: NewRangeSet(o.opts.MaxRanges)}
		o.m[id] = st
	}
	if now.After(st.lastSeen) {
		st.lastSeen = now
	}
	if n := st.ranges.Add(lo, hi); n > 0 {
		o.opts.Log.Warn("dedup: forgot the oldest committed ranges of an origin: a resend of them would be put again",
			"origin", id.String(), "ranges", n, "max", o.opts.MaxRanges)
	}
}

// dropOldest forgets the origin heard from longest ago (the lowest id among
// equals, so the choice does not depend on map order).
func (o *Origins) dropOldest() {
	var victim OriginID
	var st *originState
	for id, s := range o.m {
		if st == nil || s.lastSeen.Before(st.lastSeen) ||
			(s.lastSeen.Equal(st.lastSeen) && cmp.Compare(id.String(), victim.String()) < 0) {
			victim, st = id, s
		}
	}
	delete(o.m, victim)
	o.opts.Log.Warn("dedup: too many origins, forgot the one heard from longest ago: a resend of its events would be put again",
		"origin", victim.String(), "lastSeen", st.lastSeen, "max", o.opts.MaxOrigins)
}

// Expire forgets every origin not heard from for longer than Silence before
// now, and returns how many it forgot.
func (o *Origins) Expire(now time.Time) int {
	n := 0
	for id, st := range o.m {
		if now.Sub(st.lastSeen) > o.opts.Silence {
			delete(o.m, id)
			n++
		}
	}
	return n
}

// Len returns how many origins the table holds.
func (o *Origins) Len() int { return len(o.m) }

// OriginInfo is one origin as `flumed wal inspect` shows it.
type OriginInfo struct {
	ID       OriginID
	Ranges   string // RangeSet.String
	LastSeen time.Time
	Bytes    int // its entry's size in a checkpoint slot (AppendBinary)
}

// Info lists the origins, by id.
func (o *Origins) Info() []OriginInfo {
	ids := slices.SortedFunc(maps.Keys(o.m), func(a, b OriginID) int { return cmp.Compare(a.String(), b.String()) })
	out := make([]OriginInfo, 0, len(ids))
	for _, id := range ids {
		st := o.m[id]
		n := len(id) + len(binary.AppendUvarint(nil, uint64(max(st.lastSeen.UnixMilli(), 0)))) + len(st.ranges.AppendBinary(nil))
		out = append(out, OriginInfo{ID: id, Ranges: st.ranges.String(), LastSeen: st.lastSeen, Bytes: n})
	}
	return out
}

// AppendBinary appends the table's encoding: a uvarint count, then per
// origin, by id: the 16 id bytes, uvarint(last seen, Unix milliseconds) and
// its range set (RangeSet.AppendBinary).
func (o *Origins) AppendBinary(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(o.m)))
	for _, info := range o.Info() {
		st := o.m[info.ID]
		b = append(b, info.ID[:]...)
		b = binary.AppendUvarint(b, uint64(max(st.lastSeen.UnixMilli(), 0)))
		b = st.ranges.AppendBinary(b)
	}
	return b
}

// DecodeOrigins reads a table AppendBinary wrote at the start of b, bounded
// by opts as if its origins had been committed again, and returns it with the
// number of bytes read.
func DecodeOrigins(b []byte, opts OriginsOptions) (*Origins, int, error) {
	o := NewOrigins(opts)
	n, off := binary.Uvarint(b)
	if off <= 0 || n > uint64((len(b)-off)/(len(OriginID{})+2)) {
		return nil, 0, fmt.Errorf("%w: origin count", errRangeSet)
	}
	type entry struct {
		id OriginID
		st *originState
	}
	entries := make([]entry, 0, n)
	seen := make(map[OriginID]bool, n)
	for i := uint64(0); i < n; i++ {
		var e entry
		if len(b)-off < len(e.id) {
			return nil, 0, fmt.Errorf("%w: origin %d", errRangeSet, i)
		}
		off += copy(e.id[:], b[off:])
		ms, k := binary.Uvarint(b[off:])
		if k <= 0 || ms > 1<<62 {
			return nil, 0, fmt.Errorf("%w: origin %d last seen", errRangeSet, i)
		}
		off += k
		rs, k, err := DecodeRangeSet(b[off:], o.opts.MaxRanges)
		if err != nil {
			return nil, 0, fmt.Errorf("origin %d: %w", i, err)
		}
		off += k
		if seen[e.id] {
			return nil, 0, fmt.Errorf("%w: origin %d repeats %s", errRangeSet, i, e.id)
		}
		seen[e.id] = true
		e.st = &originState{ranges: rs, lastSeen: time.UnixMilli(int64(ms))}
		entries = append(entries, e)
	}
	// Keep the MaxOrigins heard from last, as Commit would have.
	slices.SortStableFunc(entries, func(a, b entry) int { return b.st.lastSeen.Compare(a.st.lastSeen) })
	for i, e := range entries {
		if i >= o.opts.MaxOrigins {
			o.opts.Log.Warn("dedup: too many origins at restart, forgot one heard from longest ago",
				"origin", e.id.String(), "lastSeen", e.st.lastSeen, "max", o.opts.MaxOrigins)
			continue
		}
		o.m[e.id] = e.st
	}
	return o, off, nil
}
