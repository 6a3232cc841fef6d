package wal

// The read-only contract: Inspect, Verify and OpenReader change nothing in
// the directory (not a byte, not a name), take no lock, and report what Open
// would do after a crash: released segments still on disk, segments a roll
// left outside sealed/, leftovers, evidence copies, a torn tail; Verify
// reports every damaged record.

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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

func TestInspectReportsWhatOpenWouldDoAfterACrashAndChangesNothing(t *testing.T) {
	dir := t.TempDir()
	buildLog(t, dir, 150)
	l := openTest(t, dir)
	e := sealedEnv{t: t, dir: dir, n: 150, segs: l.Segments()}
	e.must(l.Close())
	first := e.interruptedRelease(false) // two released segments left in sealed/
	last := e.lastSealed().Name
	e.must(os.Rename(e.sealed(last), e.top(last))) // a roll whose rename was lost
	e.must(os.WriteFile(e.top(manifestName+suffixTmp), []byte("x"), 0o640))
	e.must(os.WriteFile(e.top(e.segs[3].Name+suffixBroken), []byte("old evidence"), 0o640))
	d := damageEnv{t: t, dir: dir}
	d.mutate(e.tail().Name, func(b []byte) []byte { return append(b, 0, 0, 0, 0, 0) })
	before := dirDigest(t, dir)

	info, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if dirDigest(t, dir) != before {
		t.Fatal("Inspect changed the directory")
	}
	if len(info.Released) != 2 || len(info.Temps) != 1 || len(info.Broken) != 1 {
		t.Fatalf("released %v, temps %v, broken %v", info.Released, info.Temps, info.Broken)
	}
	if info.FirstIndex != first || info.LastIndex != 150 {
		t.Fatalf("Inspect sees %d..%d, want %d..150", info.FirstIndex, info.LastIndex, first)
	}
	if info.TornTail == nil || info.TornBytes != 5 || info.TornTail.Index != 151 {
		t.Fatalf("torn tail %v (%d bytes), want 5 bytes at index 151", info.TornTail, info.TornBytes)
	}
	if len(info.Segments) != len(e.segs)-2 || info.Segments[len(info.Segments)-1].Last != 150 {
		t.Fatalf("segments %+v", info.Segments)
	}
	if !slices.Equal(info.Unsealed, []string{last}) || info.Manifest != "ok" {
		t.Fatalf("unsealed %v, manifest %q: the next open moves %s into sealed/", info.Unsealed, info.Manifest, last)
	}

	// The Open after it does what Inspect foresaw.
	l = openTest(t, dir)
	rec := l.Recovered()
	if l.FirstIndex() != first || l.LastIndex() != 150 || len(rec.Removed) != 3 || len(rec.Moved) != 1 || rec.Bytes != 5 {
		t.Fatalf("open: %d..%d, repair: %s", l.FirstIndex(), l.LastIndex(), rec)
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
