package wal

// The random-damage contract: whatever bytes are flipped anywhere and
// wherever the last segment is cut, Open repairs without panicking or
// failing, no record is ever delivered with a payload other than the one
// written at its index (a bad CRC is never data), and every record whose
// bytes were not touched survives, except those after the cut.

import (
	"math/rand/v2"
	"os"
	"testing"
)

func TestRandomDamageNeverPanicsNorDeliversBadRecords(t *testing.T) {
	src := t.TempDir()
	recs := buildLog(t, src, 150)
	for seed := uint64(0); seed < 80; seed++ {
		checkRandomDamage(t, src, recs, seed)
	}
}

func FuzzRandomDamage(f *testing.F) {
	src := f.TempDir()
	recs := buildLog(f, src, 150)
	for seed := uint64(100); seed < 110; seed++ {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) { checkRandomDamage(t, src, recs, seed) })
}

func checkRandomDamage(t *testing.T, src string, recs []Record, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	dir := t.TempDir()
	copyTree(t, src, dir)
	e := damageEnv{t: t, dir: dir, recs: recs}
	segs := e.segs()
	touched := map[uint64]bool{}
	touch := func(seg string, from, to int64) {
		for _, r := range e.inSeg(seg) {
			if r.Offset < to && e.frameEnd(r) > from {
				touched[r.Index] = true
			}
		}
	}
	for range rng.IntN(4) {
		seg := segs[rng.IntN(len(segs))]
		fi, _ := os.Stat(e.path(seg))
		off := rng.Int64N(fi.Size())
		e.flip(seg, off, byte(1+rng.IntN(255)))
		touch(seg, off, off+1)
	}
	if rng.IntN(2) == 0 {
		last := e.lastSeg()
		fi, _ := os.Stat(e.path(last))
		cut := rng.Int64N(fi.Size() + 1)
		e.cutAt(last, cut)
		touch(last, cut, fi.Size())
	}

	l, err := Open(dir, Options{SegmentSize: 4096})
	if err != nil {
		t.Fatalf("seed %d: Open after damage: %v", seed, err)
	}
	defer l.Close()
	intact, _ := scan(t, l) // fails on any payload not written at its index
	for _, r := range recs {
		if !touched[r.Index] && !intact[r.Index] {
			t.Fatalf("seed %d: record %d was not touched but did not survive (log %d..%d, repair: %s)",
				seed, r.Index, l.FirstIndex(), l.LastIndex(), l.Recovered())
		}
	}
}
