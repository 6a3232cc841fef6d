package wal

// The Log contract: records come back in index order, intact, across
// segments and reopens; a Reader of a live log follows appends and runs
// concurrently with the appender and with Release; Release and TruncateFront
// move FirstIndex and never lose a record at or after the index they were
// given; one directory has one open Log; after Close every call says
// ErrClosed.

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/flumed/flumed/internal/fsutil"
)

func openTest(t *testing.T, dir string) *Log {
	t.Helper()
	l, err := Open(dir, Options{SegmentSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestANewLogIsEmptyAndStartsAtIndexOne(t *testing.T) {
	l := openTest(t, t.TempDir())
	if l.FirstIndex() != 1 || l.LastIndex() != 0 {
		t.Fatalf("new log holds %d..%d, want 1..0", l.FirstIndex(), l.LastIndex())
	}
	first, last, err := l.Append(payloadFor(1), payloadFor(2))
	if err != nil || first != 1 || last != 2 {
		t.Fatalf("Append = %d, %d, %v; want 1, 2", first, last, err)
	}
	if _, err := l.Read(3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Read past the end = %v, want ErrNotFound", err)
	}
}

func TestRecordsSurviveAReopenAcrossManySegments(t *testing.T) {
	dir := t.TempDir()
	recs := buildLog(t, dir, 500)
	if segs := (damageEnv{recs: recs}).segs(); len(segs) < 10 {
		t.Fatalf("only %d segments: the test needs many", len(segs))
	}
	l := openTest(t, dir)
	if l.Recovered().Changed() {
		t.Fatalf("a clean log was repaired: %s", l.Recovered())
	}
	intact, corrupt := scan(t, l)
	if len(intact) != 500 || len(corrupt) != 0 {
		t.Fatalf("%d intact, %d corrupt; want 500 intact", len(intact), len(corrupt))
	}
	segs := l.Segments()
	for i, s := range segs {
		if s.Last < s.First-1 || (i > 0 && s.First != segs[i-1].Last+1) {
			t.Fatalf("segment ranges do not tile the log: %+v", segs)
		}
	}
	if segs[len(segs)-1].Last != 500 {
		t.Fatalf("last segment ends at %d, want 500", segs[len(segs)-1].Last)
	}
	got, err := l.Read(250)
	if err != nil || !bytes.Equal(got, payloadFor(250)) {
		t.Fatalf("Read(250) = %v", err)
	}
}

func TestAReaderAtTheEndPicksUpLaterAppends(t *testing.T) {
	l := openTest(t, t.TempDir())
	appendRange(t, l, 1, 10, 10)
	r, err := l.NewReader(5)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := uint64(5); i <= 10; i++ {
		if rec, err := r.Next(); err != nil || rec.Index != i {
			t.Fatalf("Next = %d, %v; want %d", rec.Index, err, i)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("Next at the end = %v, want io.EOF", err)
	}
	appendRange(t, l, 11, 60, 25) // crosses into new segments
	for i := uint64(11); i <= 60; i++ {
		rec, err := r.Next()
		if err != nil || rec.Index != i || !bytes.Equal(rec.Payload, payloadFor(i)) {
			t.Fatalf("Next = %d, %v; want record %d", rec.Index, err, i)
		}
	}
}

func TestReadersRunConcurrentlyWithTheAppenderReleaseAndTruncateFront(t *testing.T) {
	l := openTest(t, t.TempDir())
	const total = 3000
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 4)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _ := l.NewReader(1)
			want := uint64(1)
			for want <= total {
				rec, err := r.Next()
				switch {
				case err == io.EOF:
					select {
					case <-done:
						if want <= l.LastIndex() {
							continue
						}
						return
					default:
						continue
					}
				case errors.Is(err, ErrTruncated):
					// Fell behind a Release: start again at the new front.
					r.Close()
					want = l.FirstIndex()
					r, _ = l.NewReader(want)
					continue
				case err != nil:
					errs <- err
					return
				}
				if rec.Index < want || !bytes.Equal(rec.Payload, payloadFor(rec.Index)) {
					errs <- errors.New("reader got a wrong record")
					return
				}
				want = rec.Index + 1
			}
			r.Close()
		}()
	}
	for i := uint64(1); i <= total; i += 10 {
		appendRange(t, l, i, i+9, 10)
		switch {
		case i%400 == 1 && i > 500:
			if err := l.TruncateFront(i - 350); err != nil {
				t.Fatal(err)
			}
		case i%200 == 1 && i > 500:
			if err := l.Release(i - 400); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if l.Stats().CorruptRecords != 0 {
		t.Fatalf("readers saw %d corrupt records", l.Stats().CorruptRecords)
	}
}

func TestReleaseRemovesWholeSealedSegmentsWithoutCopying(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{SegmentSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	appendRange(t, l, 1, 1000, 20) // many segments before the tail
	before := l.Segments()
	idx := before[len(before)-2].First + 1 // inside the second to last segment
	if err := l.Release(idx); err != nil {
		t.Fatal(err)
	}
	if l.FirstIndex() != before[len(before)-2].First {
		t.Fatalf("FirstIndex %d, want %d (the start of the segment holding %d)", l.FirstIndex(), before[len(before)-2].First, idx)
	}
	for _, s := range before[:len(before)-2] {
		if exists(filepath.Join(dir, sealedDirName, s.Name)) {
			t.Fatalf("released segment %s is still in sealed/", s.Name)
		}
	}
	if kept := before[len(before)-2]; !exists(filepath.Join(dir, sealedDirName, kept.Name)) {
		t.Fatalf("segment %s, which holds %d, was removed", kept.Name, idx)
	}
	if _, err := l.Read(1); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Read(1) after Release = %v, want ErrTruncated", err)
	}
	appendRange(t, l, 1001, 1010, 10)
	l.Close()

	l = openTest(t, dir)
	if l.FirstIndex() != before[len(before)-2].First || l.LastIndex() != 1010 {
		t.Fatalf("reopened log holds %d..%d", l.FirstIndex(), l.LastIndex())
	}
	if l.Recovered().Changed() {
		t.Fatalf("reopening after a Release repaired something: %s", l.Recovered())
	}
	intact, _ := scan(t, l)
	if uint64(len(intact)) != 1010-l.FirstIndex()+1 {
		t.Fatalf("%d intact records after reopen", len(intact))
	}
}

func TestReleasingEverythingLeavesAnEmptyLogThatGoesOn(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{SegmentSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	appendRange(t, l, 1, 200, 20)
	if err := l.Release(201); err != nil {
		t.Fatal(err)
	}
	if l.FirstIndex() != 201 || l.LastIndex() != 200 || len(l.Segments()) != 1 {
		t.Fatalf("after releasing all: %d..%d in %d segments", l.FirstIndex(), l.LastIndex(), len(l.Segments()))
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, sealedDirName)); len(ents) != 0 {
		t.Fatalf("sealed/ still holds %d files", len(ents))
	}
	appendRange(t, l, 201, 205, 5)
	l.Close()
	l = openTest(t, dir)
	if l.FirstIndex() != 201 || l.LastIndex() != 205 {
		t.Fatalf("reopened: %d..%d, want 201..205", l.FirstIndex(), l.LastIndex())
	}
}

func TestReleaseInsideTheTailKeepsTheTailWhole(t *testing.T) {
	l := openTest(t, t.TempDir())
	appendRange(t, l, 1, 100, 10)
	tail := l.Segments()[len(l.Segments())-1]
	if err := l.Release(98); err != nil {
		t.Fatal(err)
	}
	if l.FirstIndex() != tail.First || len(l.Segments()) != 1 {
		t.Fatalf("FirstIndex %d in %d segments, want %d (the tail's first) in one", l.FirstIndex(), len(l.Segments()), tail.First)
	}
	intact, _ := scan(t, l)
	if uint64(len(intact)) != 100-tail.First+1 {
		t.Fatalf("%d records left, want %d..100", len(intact), tail.First)
	}
}

func TestTruncateFrontMakesFirstIndexExact(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{SegmentSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	appendRange(t, l, 1, 300, 30)
	if err := l.TruncateFront(157); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateFront(400); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("TruncateFront past the end = %v, want ErrOutOfRange", err)
	}
	if _, err := l.Read(156); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Read(156) after TruncateFront(157) = %v, want ErrTruncated", err)
	}
	l.Close()
	l = openTest(t, dir)
	if l.FirstIndex() != 157 || l.LastIndex() != 300 {
		t.Fatalf("log holds %d..%d, want 157..300", l.FirstIndex(), l.LastIndex())
	}
	intact, _ := scan(t, l)
	if len(intact) != 144 {
		t.Fatalf("%d intact records, want 144", len(intact))
	}
}

func TestTruncateFrontIntoADamagedSealedSegmentLeavesTheDamageBehind(t *testing.T) {
	dir := t.TempDir()
	recs := buildLog(t, dir, 150)
	e := damageEnv{t: t, dir: dir, recs: recs}
	victim := e.inSeg(e.segs()[1])[2]
	e.flip(victim.Segment, victim.Offset, 0x04) // re-frames the segment
	l := openTest(t, dir)
	if err := l.TruncateFront(victim.Index + 1); err != nil {
		t.Fatalf("TruncateFront just past a re-framed record: %v", err)
	}
	if _, _, err := l.Append(payloadFor(151)); err != nil {
		t.Fatalf("the handle died: %v", err)
	}
	if intact, corrupt := scan(t, l); len(corrupt) != 0 || uint64(len(intact)) != 151-victim.Index {
		t.Fatalf("after TruncateFront(%d): %d intact, corrupt %v", victim.Index+1, len(intact), corrupt)
	}
}

func TestASecondOpenOfTheSameDirectoryIsRefused(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir)
	_, err := Open(dir, Options{})
	var le *fsutil.LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() {
		t.Fatalf("second Open = %v, want *fsutil.LockedError naming this process", err)
	}
	l.Close()
	l2, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	l2.Close()
}

func TestEveryCallAfterCloseSaysClosed(t *testing.T) {
	l := openTest(t, t.TempDir())
	appendRange(t, l, 1, 3, 3)
	r, _ := l.NewReader(1)
	defer r.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Append":        func() error { _, _, err := l.Append(nil); return err }(),
		"Sync":          l.Sync(),
		"Release":       l.Release(2),
		"TruncateFront": l.TruncateFront(2),
		"Close":         l.Close(),
		"Reader.Next":   func() error { _, err := r.Next(); return err }(),
		"NewReader":     func() error { _, err := l.NewReader(1); return err }(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestAnEmptyPayloadIsARecordToo(t *testing.T) {
	l := openTest(t, t.TempDir())
	if _, _, err := l.Append([]byte{}, nil); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 2; i++ {
		if got, err := l.Read(i); err != nil || len(got) != 0 {
			t.Fatalf("Read(%d) = %q, %v; want an empty payload", i, got, err)
		}
	}
}

func TestAConsumerThatKeepsUpKeepsTheManifestSmall(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir)
	var next uint64 = 1
	for round := 0; round < 150; round++ {
		appendRange(t, l, next, next+29, 10) // a segment and a half
		next += 30
		segs := l.Segments()
		if len(segs) > 3 {
			if err := l.Release(segs[len(segs)-3].First); err != nil {
				t.Fatal(err)
			}
		}
	}
	fi, err := os.Stat(filepath.Join(dir, manifestName))
	if err != nil {
		t.Fatal(err)
	}
	live := len(l.Segments())
	if max := int64(2*(3+live)+compactSlack+2) * manifestEntry; fi.Size() > max {
		t.Fatalf("manifest of %d bytes for %d live segments after 150 rounds, want at most %d", fi.Size(), live, max)
	}
	for _, s := range l.Segments() {
		if fi, err := os.Stat(segPath(dir, s.Name)); err != nil || fi.Size() != s.Size {
			t.Fatalf("segment %s: the log says %d bytes, the disk %v", s.Name, s.Size, fi)
		}
	}
	first := l.FirstIndex()
	l.Close()
	l = openTest(t, dir)
	if l.Recovered().Changed() || l.FirstIndex() != first || l.LastIndex() != next-1 {
		t.Fatalf("reopened: %d..%d, repair %s; want %d..%d", l.FirstIndex(), l.LastIndex(), l.Recovered(), first, next-1)
	}
}
