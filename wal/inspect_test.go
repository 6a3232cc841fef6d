package wal

// The read-only contract: Inspect, Verify and OpenReader change nothing in
// the directory (not a byte, not a name), take no lock, and report what Open
// would do: released segments, a pending truncation, leftovers, evidence
// copies, a torn tail; Verify reports every damaged record.

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// dirDigest hashes every name and byte under dir.
func dirDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		b, _ := os.ReadFile(path)
		fmt.Fprintf(h, "%s %v %d\n", path, d.IsDir(), len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func TestInspectReportsWhatOpenWouldDoWithAnOldLayoutAndChangesNothing(t *testing.T) {
	dir := t.TempDir()
	recs := buildOldLog(t, dir, 150)
	e := damageEnv{t: t, dir: dir, recs: recs}
	segs := e.segs()
	os.Truncate(e.path(segs[0]), 0) // released before a crash
	os.WriteFile(e.path(segmentName(999)+".START.TEMP"), []byte("x"), 0o640)
	os.WriteFile(e.path(segs[1]+".broken"), []byte("old evidence"), 0o640)
	e.mutate(e.lastSeg(), func(b []byte) []byte { return append(b, 0, 0, 0, 0, 0) })
	before := dirDigest(t, dir)

	info, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if dirDigest(t, dir) != before {
		t.Fatal("Inspect changed the directory")
	}
	if len(info.Released) != 1 || len(info.Temps) != 1 || len(info.Broken) != 1 {
		t.Fatalf("released %v, temps %v, broken %v", info.Released, info.Temps, info.Broken)
	}
	if info.FirstIndex != e.inSeg(segs[1])[0].Index || info.LastIndex != 150 {
		t.Fatalf("Inspect sees %d..%d", info.FirstIndex, info.LastIndex)
	}
	if info.TornTail == nil || info.TornBytes != 5 || info.TornTail.Index != 151 {
		t.Fatalf("torn tail %v (%d bytes), want 5 bytes at index 151", info.TornTail, info.TornBytes)
	}
	if len(info.Segments) != len(segs)-1 || info.Segments[len(info.Segments)-1].Last != 150 {
		t.Fatalf("segments %+v", info.Segments)
	}
	if len(info.Unsealed) != len(segs)-2 || info.Manifest != "" {
		t.Fatalf("unsealed %v, manifest %q: the next open seals every segment but the tail", info.Unsealed, info.Manifest)
	}
}

func TestVerifyReportsEveryDamagedRecord(t *testing.T) {
	dir := t.TempDir()
	recs := buildLog(t, dir, 150)
	e := damageEnv{t: t, dir: dir, recs: recs}
	bad := []Record{e.inSeg(e.segs()[0])[1], e.inSeg(e.segs()[2])[3], e.inSeg(e.segs()[3])[0]}
	for _, r := range bad {
		e.flip(r.Segment, r.Offset+25, 0xff)
	}
	before := dirDigest(t, dir)
	var calls int
	rep, err := Verify(dir, func(done, total int64) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if dirDigest(t, dir) != before {
		t.Fatal("Verify changed the directory")
	}
	if rep.OK() || rep.DamagedCount != 3 || rep.Records != 147 || calls == 0 {
		t.Fatalf("report: %d records, %d damaged, %d progress calls", rep.Records, rep.DamagedCount, calls)
	}
	for i, r := range bad {
		if rep.Damaged[i].Index != r.Index || rep.Damaged[i].Segment != r.Segment || !errors.Is(rep.Damaged[i], ErrChecksum) {
			t.Fatalf("damage %d reported as %v, want index %d in %s", i, rep.Damaged[i], r.Index, r.Segment)
		}
	}
}

func TestOpenReaderReadsADirectoryBesideARunningWriter(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir)
	appendRange(t, l, 1, 80, 8)
	r, err := OpenReader(dir, 40)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := uint64(40)
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil || rec.Index != n {
			t.Fatalf("Next = %d, %v; want %d", rec.Index, err, n)
		}
		n++
	}
	if n != 81 {
		t.Fatalf("read up to %d, want 80", n-1)
	}
}
