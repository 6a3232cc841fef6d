// The ack state and its two-slot checkpoint:
//
//   - the ack state (floor, ranges) agrees with a plain set of acknowledged
//     sequence numbers under any sequence of acks and floor moves, and so
//     does its encoding after a round trip;
//   - slots alternate, the newest valid one wins, a torn or damaged newest
//     slot leaves the previous state readable, and after a failed write the
//     next write goes to the same slot, never over the last durable state.
package channel

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"pgregory.net/rapid"

	"github.com/flumed/flumed/internal/fsutil"
)

func TestAckStateModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const universe = 200
		acked := map[uint64]bool{}
		st := ackState{Next: universe}
		check := func() {
			var want uint64
			for s := uint64(0); s < universe; s++ {
				if acked[s] != st.isAcked(s) {
					t.Fatalf("seq %d: model acked %v, state %v (%+v)", s, acked[s], st.isAcked(s), st)
				}
				if !acked[s] {
					want++
				}
			}
			if got := st.queuedAt(universe); got != want {
				t.Fatalf("queued %d, model %d (%+v)", got, want, st)
			}
			for i, r := range st.Ranges {
				if r.End <= r.Start || r.Start < st.Floor || i > 0 && r.Start <= st.Ranges[i-1].End {
					t.Fatalf("ranges not sorted, disjoint and apart: %+v", st)
				}
			}
			b, err := encodeCheckpoint(&checkpoint{ackState: st})
			if err != nil {
				t.Fatal(err)
			}
			c, err := decodeCheckpoint(b)
			if err != nil {
				t.Fatalf("decode: %v (%+v)", err, st)
			}
			if c.Floor != st.Floor || c.Next != st.Next || len(c.Ranges) != len(st.Ranges) {
				t.Fatalf("round trip %+v, want %+v", c.ackState, st)
			}
			for i := range c.Ranges {
				if c.Ranges[i] != st.Ranges[i] {
					t.Fatalf("round trip range %d: %v, want %v", i, c.Ranges[i], st.Ranges[i])
				}
			}
		}
		t.Repeat(map[string]func(*rapid.T){
			"ack ranges": func(t *rapid.T) {
				var rs []seqRange
				for range rapid.IntRange(1, 4).Draw(t, "n") {
					a := rapid.Uint64Range(0, universe-1).Draw(t, "start")
					b := rapid.Uint64Range(a+1, min(a+10, universe)).Draw(t, "end")
					rs = append(rs, seqRange{a, b})
					for s := a; s < b; s++ {
						acked[s] = true
					}
				}
				st.addRanges(rs)
			},
			"raise the floor to the first unacknowledged": func(t *rapid.T) {
				f := st.Floor
				for f < universe && acked[f] {
					f++
				}
				// Raise it anywhere up to there: everything below is acked.
				to := rapid.Uint64Range(st.Floor, f).Draw(t, "floor")
				st.setFloor(to, logPos{Index: to})
			},
			"": func(t *rapid.T) { check() },
		})
	})
}

func TestCheckpointSlots(t *testing.T) {
	state := func(floor uint64) *checkpoint {
		return &checkpoint{ackState: ackState{Floor: floor, Next: floor + 10, FloorPos: logPos{Index: floor}}, LogID: [16]byte{1}}
	}
	t.Run("writes alternate between the slots and the newest wins", func(t *testing.T) {
		dir := t.TempDir()
		s := &checkpointSlots{fs: fsutil.OS{}, dir: dir}
		for i := range uint64(5) {
			if err := s.write(state(i*10), true); err != nil {
				t.Fatal(err)
			}
			got, slots := readCheckpoint(dir)
			if got == nil || got.Generation != i+1 || got.Floor != i*10 {
				t.Fatalf("after write %d: %+v", i, got)
			}
			if i > 0 && (slots[0].State == nil || slots[1].State == nil) {
				t.Fatalf("after write %d one slot is empty: %+v", i, slots)
			}
		}
	})
	t.Run("a torn newest slot leaves the previous state", func(t *testing.T) {
		dir := t.TempDir()
		s := &checkpointSlots{fs: fsutil.OS{}, dir: dir}
		s.write(state(10), true)
		s.write(state(20), true)
		newest := slotPath(dir, 2)
		b, _ := os.ReadFile(newest)
		os.WriteFile(newest, b[:len(b)-3], 0o644)
		got, slots := readCheckpoint(dir)
		if got == nil || got.Floor != 10 {
			t.Fatalf("got %+v, want the floor-10 state", got)
		}
		if slots[0].Err == nil {
			t.Errorf("the torn slot was not reported: %+v", slots)
		}
	})
	t.Run("after a failed sync the same slot is written again", func(t *testing.T) {
		dir := t.TempDir()
		faulty := fsutil.NewFaulty(nil)
		s := &checkpointSlots{fs: faulty, dir: dir}
		if err := s.write(state(10), true); err != nil { // generation 1, slot 1
			t.Fatal(err)
		}
		faulty.FailSyncs(0, syscall.EIO)
		if err := s.write(state(20), true); err == nil {
			t.Fatal("the write succeeded through a failing sync")
		}
		faulty.Heal()
		before, _ := os.ReadFile(slotPath(dir, 1))
		if err := s.write(state(30), true); err != nil {
			t.Fatal(err)
		}
		after, _ := os.ReadFile(slotPath(dir, 1))
		if string(before) != string(after) {
			t.Fatal("the retry overwrote the slot holding the last durable state")
		}
		got, _ := readCheckpoint(dir)
		if got.Floor != 30 || got.Generation != 2 {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("a slot file of another program is ignored", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "checkpoint-0"), make([]byte, 8008232), 0o644) // Flume's zeroed mmap size
		if got, slots := readCheckpoint(dir); got != nil || slots[0].Err == nil {
			t.Fatalf("got %+v, %+v", got, slots)
		}
	})
	t.Run("too many ranges for a slot is an error, not a loss", func(t *testing.T) {
		st := ackState{Next: 1 << 40}
		for i := uint64(1); i < 400_000; i++ {
			st.Ranges = append(st.Ranges, seqRange{i * 1000, i*1000 + 1})
		}
		if _, err := encodeCheckpoint(&checkpoint{ackState: st}); err == nil {
			t.Fatal("a 1.2 MB checkpoint was accepted")
		}
	})
}
