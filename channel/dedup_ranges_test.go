// The committed range set's contract, checked against a plain set of numbers:
//
//   - it never claims a number that was not added (a resend of it would be
//     dropped: a loss), whatever the order of the adds, the restarts
//     (encoded and decoded again) and the bound;
//   - while the bound has dropped nothing, it holds exactly what was added;
//   - it stays sorted, disjoint, non-touching and within its bound, so an
//     in-order origin is one range;
//   - a high-water mark fails the first rule as soon as batches commit out of
//     order, which is why the set is not one.
package channel_test

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/flumed/flumed/channel"
)

// committedSet is what a receiver asks of its dedup state.
type committedSet interface {
	Add(lo, hi uint64) int
	Contains(seq uint64) bool
}

// highWaterMark is the design the range set replaces: everything below the
// highest committed number counts as committed.
type highWaterMark struct{ hw uint64 }

func (h *highWaterMark) Add(lo, hi uint64) int {
	h.hw = max(h.hw, hi)
	return 0
}
func (h *highWaterMark) Contains(seq uint64) bool { return seq < h.hw }

// outOfOrderResend plays a pipelined upstream sink: batch A (1–100) and batch
// B (101–200) are in flight, B commits here, A's reply never comes (A was not
// committed: its put failed, or this process died before it), and A is sent
// again. It returns the events of the resend the receiver would drop.
func outOfOrderResend(s committedSet) []uint64 {
	s.Add(101, 201) // B
	var dropped []uint64
	for seq := uint64(1); seq < 101; seq++ { // A, resent
		if s.Contains(seq) {
			dropped = append(dropped, seq)
		}
	}
	return dropped
}

func TestHighWaterMarkLosesAnOutOfOrderResend(t *testing.T) {
	t.Run("the range set puts every event of the resend", func(t *testing.T) {
		s := channel.NewRangeSet(0)
		if dropped := outOfOrderResend(&s); len(dropped) != 0 {
			t.Fatalf("the range set drops %d events of a batch never committed: %v", len(dropped), dropped)
		}
	})
	t.Run("a high-water mark would drop the whole resend", func(t *testing.T) {
		// The same check, against the design it rules out: if this ever
		// passes, outOfOrderResend no longer tells the two apart.
		if dropped := outOfOrderResend(&highWaterMark{}); len(dropped) != 100 {
			t.Fatalf("a high-water mark drops %d events, want all 100: the scenario no longer catches it", len(dropped))
		}
	})
}

// checkShape fails unless s is sorted, disjoint, non-touching, non-empty
// ranges, at most max of them.
func checkShape(t rapid.TB, s *channel.RangeSet, max int) {
	var prev *[2]uint64
	s.Each(func(lo, hi uint64) {
		if lo >= hi {
			t.Fatalf("empty range [%d, %d) in %v", lo, hi, s)
		}
		if prev != nil && lo <= prev[1] {
			t.Fatalf("range [%d, %d) overlaps or touches [%d, %d) in %v", lo, hi, prev[0], prev[1], s)
		}
		prev = &[2]uint64{lo, hi}
	})
	if s.Ranges() > max {
		t.Fatalf("%d ranges, bound %d: %v", s.Ranges(), max, s)
	}
}

func restart(t rapid.TB, s *channel.RangeSet, max int) channel.RangeSet {
	b := s.AppendBinary([]byte{0xAA}) // behind other bytes, as in a record
	got, n, err := channel.DecodeRangeSet(append(b[1:], 0xBB), max)
	if err != nil {
		t.Fatalf("decode %x: %v", b[1:], err)
	}
	if n != len(b)-1 {
		t.Fatalf("decode read %d bytes of %d", n, len(b)-1)
	}
	if got.String() != s.String() {
		t.Fatalf("restart changed the set: %v, was %v", &got, s)
	}
	return got
}

// TestRangeSetModel runs random adds (batches of a pipelined sender, in any
// order), restarts and look-ups against a plain set.
func TestRangeSetModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		max := rapid.IntRange(1, 8).Draw(t, "max")
		s := channel.NewRangeSet(max)
		model := map[uint64]bool{}
		forgot := false
		// A sender's batches: consecutive slices of [0, limit), committed
		// here in a random order, some of them twice (a resend whose put
		// went through the first time).
		limit := rapid.Uint64Range(1, 200).Draw(t, "limit")
		var batches [][2]uint64
		for lo := uint64(0); lo < limit; {
			hi := min(limit, lo+rapid.Uint64Range(1, 20).Draw(t, "batch"))
			batches = append(batches, [2]uint64{lo, hi})
			lo = hi
		}
		t.Repeat(map[string]func(*rapid.T){
			"commit a batch": func(t *rapid.T) {
				b := rapid.SampledFrom(batches).Draw(t, "batch")
				if s.Add(b[0], b[1]) > 0 {
					forgot = true
				}
				for seq := b[0]; seq < b[1]; seq++ {
					model[seq] = true
				}
			},
			"commit any range": func(t *rapid.T) {
				lo := rapid.Uint64Range(0, 250).Draw(t, "lo")
				hi := rapid.Uint64Range(0, 250).Draw(t, "hi")
				if s.Add(lo, hi) > 0 {
					forgot = true
				}
				for seq := lo; seq < hi; seq++ {
					model[seq] = true
				}
			},
			"restart": func(t *rapid.T) {
				s = restart(t, &s, max)
			},
			"look up": func(t *rapid.T) {
				seq := rapid.Uint64Range(0, 260).Draw(t, "seq")
				if s.Contains(seq) && !model[seq] {
					t.Fatalf("claims %d, never committed: %v", seq, &s)
				}
			},
			"": func(t *rapid.T) {
				checkShape(t, &s, max)
				for seq := uint64(0); seq < 260; seq++ {
					got := s.Contains(seq)
					if got && !model[seq] {
						t.Fatalf("claims %d, never committed: %v", seq, &s)
					}
					if !forgot && got != model[seq] {
						t.Fatalf("Contains(%d) = %v, model %v, nothing forgotten: %v", seq, got, model[seq], &s)
					}
				}
			},
		})
	})
}

func TestRangeSet(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  int
		adds [][2]uint64
		want string
	}{
		{"in-order batches join into one range", 0, [][2]uint64{{1, 101}, {101, 201}, {201, 301}}, "[1-300]"},
		{"a batch filling a gap joins both sides", 0, [][2]uint64{{1, 101}, {201, 301}, {101, 201}}, "[1-300]"},
		{"out-of-order batches keep their gap", 0, [][2]uint64{{201, 301}, {1, 101}}, "[1-100 201-300]"},
		{"an overlapping resend changes nothing", 0, [][2]uint64{{1, 101}, {50, 80}, {1, 101}}, "[1-100]"},
		{"a range over several joins them all", 0, [][2]uint64{{10, 20}, {30, 40}, {50, 60}, {5, 55}}, "[5-59]"},
		{"an empty range is nothing", 0, [][2]uint64{{7, 7}, {9, 3}}, "[]"},
		{"past the bound the lowest range is forgotten", 2, [][2]uint64{{1, 2}, {5, 6}, {9, 10}}, "[5-5 9-9]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := channel.NewRangeSet(tc.max)
			for _, a := range tc.adds {
				s.Add(a[0], a[1])
			}
			if got := s.String(); got != tc.want {
				t.Fatalf("%v, want %v", got, tc.want)
			}
		})
	}
}

// TestRangeSetSize pins the cost of an origin: a few bytes in order, under
// 1 KiB on disk and in memory at the bound with the largest numbers.
func TestRangeSetSize(t *testing.T) {
	s := channel.NewRangeSet(0)
	for lo := uint64(1_000_000_000); lo < 1_000_100_000; lo += 100 {
		s.Add(lo, lo+100)
	}
	if n := len(s.AppendBinary(nil)); n > 16 {
		t.Errorf("an in-order origin encodes in %d bytes, want a few", n)
	}
	s = channel.NewRangeSet(0)
	for i := uint64(0); i < 2*channel.DefaultMaxRanges; i++ {
		s.Add(1<<62+i*(1<<50), 1<<62+i*(1<<50)+1<<49)
	}
	if s.Ranges() != channel.DefaultMaxRanges {
		t.Fatalf("%d ranges, want the bound %d", s.Ranges(), channel.DefaultMaxRanges)
	}
	// Memory: 16 bytes a range plus the slice and bound.
	if n, mem := len(s.AppendBinary(nil)), 16*s.Ranges()+32; n > 1024 || mem > 1024 {
		t.Errorf("a full origin costs %d bytes encoded, %d in memory: want ≤ 1 KiB", n, mem)
	}
}

func TestDecodeRangeSetRejectsWhatWasNeverWritten(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"nothing", nil},
		{"a count past the bytes", []byte{5, 1, 1}},
		{"a truncated range", []byte{1, 1}},
		{"an empty range", []byte{1, 1, 0}},
		{"ranges that touch", []byte{2, 1, 1, 0, 1}},
		{"an overflowing range", append([]byte{1, 1}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)},
		{"a count of a huge allocation", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, _, err := channel.DecodeRangeSet(tc.b, 0); err == nil {
				t.Fatalf("decoded %x as %v", tc.b, &s)
			}
		})
	}
}

func ExampleRangeSet() {
	s := channel.NewRangeSet(0)
	s.Add(101, 201) // a later batch commits first
	fmt.Println(&s, s.Contains(50))
	s.Add(1, 101)
	fmt.Println(&s, s.Ranges())
	// Output:
	// [101-200] false
	// [1-200] 1
}
