package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild() // never returns: the parent kills it
	}
	goleak.VerifyTestMain(m)
}

// payloadFor is the payload every test writes at index i: its length varies
// (130..279 bytes, so every frame has a two-byte length prefix) and its bytes
// name the index, so a record read back can be checked by index alone.
func payloadFor(i uint64) []byte {
	n := 130 + int(i*37%150)
	b := make([]byte, n)
	prefix := fmt.Sprintf("record %d:", i)
	copy(b, prefix)
	for j := len(prefix); j < n; j++ {
		b[j] = byte(i*31 + uint64(j)*7)
	}
	return b
}

// appendRange appends the records from..to (inclusive) in batches of batch
// and syncs after each batch.
func appendRange(t testing.TB, l *Log, from, to uint64, batch int) {
	t.Helper()
	for i := from; i <= to; {
		var ps [][]byte
		for j := 0; j < batch && i <= to; j++ {
			ps = append(ps, payloadFor(i))
			i++
		}
		first, last, err := l.Append(ps...)
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		if last-first+1 != uint64(len(ps)) {
			t.Fatalf("append returned %d..%d for %d payloads", first, last, len(ps))
		}
		if err := l.Sync(); err != nil {
			t.Fatalf("sync: %v", err)
		}
	}
}

// buildLog writes records 1..n into a new log in dir with small segments and
// returns where each record landed.
func buildLog(t testing.TB, dir string, n uint64) []Record {
	t.Helper()
	l, err := Open(dir, Options{SegmentSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	appendRange(t, l, 1, n, 7)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return layout(t, dir)
}

// segPath is where segment seg of the log in dir is: in sealed/ or in dir.
func segPath(dir, seg string) string {
	if p := filepath.Join(dir, sealedDirName, seg); exists(p) {
		return p
	}
	return filepath.Join(dir, seg)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// copyTree copies the log directory src (sealed/ included) to dst.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o750)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o640)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// layout lists every record of dir with its segment and offset.
func layout(t testing.TB, dir string) []Record {
	t.Helper()
	r, err := OpenReader(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var recs []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return recs
		}
		if err != nil {
			t.Fatalf("layout: %v", err)
		}
		rec.Payload = nil
		recs = append(recs, rec)
	}
}

// scan reads the whole log through a Reader and returns the intact payloads
// by index and the indexes reported as corrupt, failing the test on any
// record whose payload is not the one written at its index.
func scan(t testing.TB, l *Log) (intact map[uint64]bool, corrupt map[uint64]error) {
	t.Helper()
	return scanWith(t, l, payloadFor)
}

// scanWith is scan for a log written with another payload function.
func scanWith(t testing.TB, l *Log, payloadFor func(uint64) []byte) (intact map[uint64]bool, corrupt map[uint64]error) {
	t.Helper()
	r, err := l.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	intact, corrupt = map[uint64]bool{}, map[uint64]error{}
	want := l.FirstIndex()
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		var ce *CorruptionError
		switch {
		case errors.As(err, &ce):
			if ce.Index != want {
				t.Fatalf("corruption reported for index %d, want %d next", ce.Index, want)
			}
			corrupt[ce.Index] = ce
		case err != nil:
			t.Fatalf("read: %v", err)
		default:
			if rec.Index != want {
				t.Fatalf("record %d returned, want %d next", rec.Index, want)
			}
			if !bytes.Equal(rec.Payload, payloadFor(rec.Index)) {
				t.Fatalf("record %d returned a payload that was never written there: %q", rec.Index, rec.Payload)
			}
			intact[rec.Index] = true
		}
		want++
	}
	if want != l.LastIndex()+1 {
		t.Fatalf("reader stopped before %d, LastIndex is %d", want, l.LastIndex())
	}
	return intact, corrupt
}
