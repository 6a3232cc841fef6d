package wal

// The corruption contract, one case per kind of damage: Open never fails
// because of damaged data; a torn tail (anything after the last intact record
// of the last segment) is cut, with a .broken copy kept; damage anywhere else
// is never delivered but reported as a *CorruptionError for exactly the
// indexes it destroyed, and every other record survives intact at its index.
// After the repair the log accepts new records at LastIndex+1.

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// expect is what a case says survives.
type expect struct {
	first, last uint64   // FirstIndex and LastIndex after Open
	corrupt     []uint64 // indexes that read as *CorruptionError; all others in [first, last] are intact
	cause       error    // what the first corrupt index wraps (nil: not checked)
	cut         bool     // repair cut the tail and kept a .broken copy
	rewritten   bool     // repair rewrote the tail segment with placeholders
}

// damageEnv gives a case the log it damages.
type damageEnv struct {
	t    *testing.T
	dir  string
	recs []Record // every record of the intact log: index-1 → where it is
	n    uint64
}

func (e damageEnv) path(seg string) string { return segPath(e.dir, seg) }

// lastSeg returns the name of the last segment.
func (e damageEnv) lastSeg() string { return e.recs[len(e.recs)-1].Segment }

// inSeg returns the records of a segment.
func (e damageEnv) inSeg(seg string) []Record {
	var out []Record
	for _, r := range e.recs {
		if r.Segment == seg {
			out = append(out, r)
		}
	}
	return out
}

func (e damageEnv) segs() []string {
	var out []string
	for _, r := range e.recs {
		if len(out) == 0 || out[len(out)-1] != r.Segment {
			out = append(out, r.Segment)
		}
	}
	return out
}

func (e damageEnv) frameEnd(r Record) int64 { return r.Offset + frameSize(len(payloadFor(r.Index))) }

func (e damageEnv) mutate(seg string, f func([]byte) []byte) {
	e.t.Helper()
	b, err := os.ReadFile(e.path(seg))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(e.path(seg), f(b), 0o640); err != nil {
		e.t.Fatal(err)
	}
}

func (e damageEnv) flip(seg string, off int64, mask byte) {
	e.mutate(seg, func(b []byte) []byte { b[off] ^= mask; return b })
}

func (e damageEnv) cutAt(seg string, off int64) {
	e.mutate(seg, func(b []byte) []byte { return b[:off] })
}

func TestCorruptionTable(t *testing.T) {
	const n = 150
	cases := []struct {
		name   string
		damage func(e damageEnv) expect
	}{
		{"torn length: the last frame ends inside its length prefix", func(e damageEnv) expect {
			last := e.recs[n-1]
			e.cutAt(last.Segment, last.Offset+1)
			return expect{first: 1, last: n - 1, cut: true}
		}},
		{"torn payload: the last frame ends inside its payload", func(e damageEnv) expect {
			last := e.recs[n-1]
			e.cutAt(last.Segment, last.Offset+40)
			return expect{first: 1, last: n - 1, cut: true}
		}},
		{"zero tail: 4096 zero bytes after the last record are cut, not read as empty entries", func(e damageEnv) expect {
			e.mutate(e.lastSeg(), func(b []byte) []byte { return append(b, make([]byte, 4096)...) })
			return expect{first: 1, last: n, cut: true}
		}},
		{"garbage tail: random bytes after the last record are cut", func(e damageEnv) expect {
			rng := rand.New(rand.NewPCG(1, 2))
			junk := make([]byte, 700)
			for i := range junk {
				junk[i] = byte(rng.Uint32())
			}
			e.mutate(e.lastSeg(), func(b []byte) []byte { return append(b, junk...) })
			return expect{first: 1, last: n, cut: true}
		}},
		{"bit flip mid-log: a bad CRC in an older segment is reported for that record only", func(e damageEnv) expect {
			r := e.inSeg(e.segs()[1])[3]
			e.flip(r.Segment, r.Offset+30, 0x10)
			return expect{first: 1, last: n, corrupt: []uint64{r.Index}, cause: ErrChecksum}
		}},
		{"bit flip in the last record: indistinguishable from a torn write, so it is cut", func(e damageEnv) expect {
			last := e.recs[n-1]
			e.flip(last.Segment, last.Offset+50, 0x01)
			return expect{first: 1, last: n - 1, cut: true}
		}},
		{"bit flip in the middle of the last segment: reported, nothing cut", func(e damageEnv) expect {
			r := e.inSeg(e.lastSeg())[1]
			e.flip(r.Segment, r.Offset+60, 0x80)
			return expect{first: 1, last: n, corrupt: []uint64{r.Index}, cause: ErrChecksum}
		}},
		{"flipped length prefix in an older segment: the reader resyncs on the next intact record", func(e damageEnv) expect {
			r := e.inSeg(e.segs()[0])[2]
			e.flip(r.Segment, r.Offset, 0x04)
			return expect{first: 1, last: n, corrupt: []uint64{r.Index}, cause: ErrLength}
		}},
		{"flipped length prefix in the last segment: tidwall cannot frame it, repair rewrites one placeholder", func(e damageEnv) expect {
			r := e.inSeg(e.lastSeg())[1]
			e.flip(r.Segment, r.Offset, 0x04)
			return expect{first: 1, last: n, corrupt: []uint64{r.Index}, cause: ErrEmpty, rewritten: true}
		}},
		{"zeroed sector in an older segment: the records it covers are lost, the rest survive", func(e damageEnv) expect {
			seg := e.segs()[1]
			rs := e.inSeg(seg)
			from, to := rs[2].Offset+10, rs[2].Offset+10+512
			var lost []uint64
			for _, r := range rs {
				if r.Offset < to && e.frameEnd(r) > from {
					lost = append(lost, r.Index)
				}
			}
			e.mutate(seg, func(b []byte) []byte { clear(b[from:to]); return b })
			return expect{first: 1, last: n, corrupt: lost}
		}},
		{"crash after a segment cycle: an empty new segment opens as the tail", func(e damageEnv) expect {
			os.WriteFile(filepath.Join(e.dir, segmentName(n+1)), nil, 0o640)
			return expect{first: 1, last: n}
		}},
		{"crash during the first write to a new segment: its partial frame is cut", func(e damageEnv) expect {
			frame := appendRecord(nil, n+1, payloadFor(n+1))
			os.WriteFile(filepath.Join(e.dir, segmentName(n+1)), append([]byte{byte(len(frame)) | 0x80, byte(len(frame) >> 7)}, frame[:20]...), 0o640)
			return expect{first: 1, last: n, cut: true}
		}},
		{"leftovers of interrupted atomic rewrites (a repair's, a compaction's): removed, nothing else changes", func(e damageEnv) expect {
			os.WriteFile(filepath.Join(e.dir, e.lastSeg()+suffixTmp), []byte("half a segment"), 0o640)
			os.WriteFile(filepath.Join(e.dir, manifestName+suffixTmp), []byte("half a manifest"), 0o640)
			return expect{first: 1, last: n}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkDamage(t, n, tc.damage) })
	}
}

// checkDamage builds a log, damages it, checks
// that Inspect foresees what Open then does, and that the repaired log holds
// what the case expects, goes on, and reopens without another repair.
func checkDamage(t *testing.T, n uint64, damage func(damageEnv) expect) {
	dir := t.TempDir()
	recs := buildLog(t, dir, n)
	if uint64(len(recs)) != n || len(damageEnv{recs: recs}.segs()) < 4 {
		t.Fatalf("setup: %d records in %d segments", len(recs), len(damageEnv{recs: recs}.segs()))
	}
	want := damage(damageEnv{t: t, dir: dir, recs: recs, n: n})
	info, err := Inspect(dir)
	if err != nil {
		t.Fatalf("Inspect of a damaged log: %v", err)
	}
	if info.FirstIndex != want.first || info.LastIndex != want.last {
		t.Fatalf("Inspect foresees %d..%d, want %d..%d", info.FirstIndex, info.LastIndex, want.first, want.last)
	}

	l, err := Open(dir, Options{SegmentSize: 4096})
	if err != nil {
		t.Fatalf("Open refused a damaged log: %v", err)
	}
	defer l.Close()
	if l.FirstIndex() != want.first || l.LastIndex() != want.last {
		t.Fatalf("log holds %d..%d, want %d..%d", l.FirstIndex(), l.LastIndex(), want.first, want.last)
	}
	intact, corrupt := scan(t, l)
	var gotCorrupt []uint64
	for i := range corrupt {
		gotCorrupt = append(gotCorrupt, i)
	}
	slices.Sort(gotCorrupt)
	if !slices.Equal(gotCorrupt, want.corrupt) {
		t.Fatalf("corrupt indexes %v, want %v", gotCorrupt, want.corrupt)
	}
	if len(want.corrupt) > 0 && want.cause != nil && !errors.Is(corrupt[want.corrupt[0]], want.cause) {
		t.Fatalf("index %d reported as %v, want %v", want.corrupt[0], corrupt[want.corrupt[0]], want.cause)
	}
	if uint64(len(intact)+len(corrupt)) != want.last-want.first+1 {
		t.Fatalf("%d intact + %d corrupt records, want %d in all", len(intact), len(corrupt), want.last-want.first+1)
	}
	rec := l.Recovered()
	if got := rec.Bytes > 0; got != want.cut {
		t.Fatalf("repair cut %d bytes, want cut=%v (%s)", rec.Bytes, want.cut, rec)
	}
	if rec.Rewritten != want.rewritten {
		t.Fatalf("repair rewrote=%v, want %v (%s)", rec.Rewritten, want.rewritten, rec)
	}
	if (want.cut || want.rewritten) && rec.Broken == "" {
		t.Fatalf("repair kept no .broken copy (%s)", rec)
	}
	if rec.Broken != "" {
		if _, err := os.Stat(filepath.Join(dir, rec.Broken)); err != nil {
			t.Fatalf("the .broken copy is missing: %v", err)
		}
	}
	if got := l.Stats().CorruptRecords; got != int64(len(want.corrupt)) {
		t.Fatalf("Stats counts %d corrupt records, want %d", got, len(want.corrupt))
	}

	// The repaired log goes on at the next index, and survives a reopen.
	appendRange(t, l, want.last+1, want.last+3, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(dir, Options{SegmentSize: 4096})
	if err != nil {
		t.Fatalf("reopen after repair: %v", err)
	}
	defer l2.Close()
	if l2.Recovered().Changed() {
		t.Fatalf("a second open repaired again: %s", l2.Recovered())
	}
	for i := want.last + 1; i <= want.last+3; i++ {
		got, err := l2.Read(i)
		if err != nil || !bytes.Equal(got, payloadFor(i)) {
			t.Fatalf("record %d appended after repair: %v", i, err)
		}
	}
}
