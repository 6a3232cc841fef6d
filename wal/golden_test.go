package wal

// The format contract: a small log is written byte for byte as
// testdata/wal/small holds it (a format change shows up as a diff of
// testdata/wal/small.hex), and a log in that format stays readable.
// Regenerate with: go test ./wal -run Golden -update

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/wal")

var goldenPayloads = [][]byte{[]byte("hi"), {}, []byte("flume event\x00\xff")}

const goldenDir = "../testdata/wal/small"

func TestGoldenBytesOfASmallLog(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Append(goldenPayloads...); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	name := segmentName(1)
	got, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	var dump strings.Builder
	fmt.Fprintf(&dump, "# %s: %d bytes, records %q\n", name, len(got), goldenPayloads)
	dump.WriteString(hex.Dump(got))
	if *update {
		os.MkdirAll(goldenDir, 0o755)
		os.WriteFile(filepath.Join(goldenDir, name), got, 0o644)
		os.WriteFile(goldenDir+".hex", []byte(dump.String()), 0o644)
	}
	want, err := os.ReadFile(filepath.Join(goldenDir, name))
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		wantDump, _ := os.ReadFile(goldenDir + ".hex")
		t.Fatalf("segment bytes changed: the on-disk format is not what it was.\ngot:\n%s\nwant:\n%s", dump.String(), wantDump)
	}
	if wantDump, _ := os.ReadFile(goldenDir + ".hex"); string(wantDump) != dump.String() {
		t.Fatal("small.hex is out of date: run with -update")
	}
}

func TestGoldenLogStaysReadable(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(goldenDir, segmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, segmentName(1)), b, 0o640)
	l := openTest(t, dir)
	if l.Recovered().Changed() || l.LastIndex() != uint64(len(goldenPayloads)) {
		t.Fatalf("golden log: last %d, repair %s", l.LastIndex(), l.Recovered())
	}
	for i, p := range goldenPayloads {
		got, err := l.Read(uint64(i + 1))
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("record %d = %q, %v; want %q", i+1, got, err, p)
		}
	}
}

func TestTheFrameInDocGoIsTheRealOne(t *testing.T) {
	want := "01 01 00 00 00 00 00 00 00 02 00 00 00 84 72 f7 bf 68 69"
	if got := fmt.Sprintf("% x", appendRecord(nil, 1, []byte("hi"))); got != want {
		t.Fatalf("record of \"hi\" at 1 = %s, doc.go shows %s", got, want)
	}
	// And doc.go does show it: the hex columns of the worked frame, read
	// from the comment itself, are the uvarint length and that record.
	if got := docFrame(t); got != "13 "+want {
		t.Fatalf("doc.go's worked frame is %q, the real one is %q", got, "13 "+want)
	}
}

// docFrame returns the bytes of the worked frame in doc.go: the leading
// hex pairs of the lines after the one announcing it.
func docFrame(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "is the 20-byte frame\n//\n")
	if !ok {
		t.Fatal("doc.go no longer announces the worked frame")
	}
	var pairs []string
	for _, line := range strings.Split(rest, "\n") {
		line, ok := strings.CutPrefix(line, "//\t")
		if !ok {
			break
		}
		for _, f := range strings.Fields(line) {
			if len(f) != 2 || strings.Trim(f, "0123456789abcdef") != "" {
				break
			}
			pairs = append(pairs, f)
		}
	}
	return strings.Join(pairs, " ")
}

// The manifest's format contract: a log of records payloadFor(1..60) in
// batches of 7 with 4 KiB segments, released up to its third segment and
// closed, leaves the manifest testdata/wal/manifest.hex shows (Close
// rewrote it whole: header, front, gone, and the one seal still live).
func TestGoldenBytesOfAManifest(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{SegmentSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	appendRange(t, l, 1, 60, 7)
	if err := l.Release(l.Segments()[2].First); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		t.Fatal(err)
	}
	dump := "# manifest of payloadFor(1..60), 4 KiB segments, released to the third\n" + hex.Dump(got)
	path := filepath.Join(filepath.Dir(goldenDir), "manifest.hex")
	if *update {
		os.WriteFile(path, []byte(dump), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != dump {
		t.Fatalf("manifest bytes changed: the on-disk format is not what it was.\ngot:\n%s\nwant:\n%s", dump, want)
	}
	var m manifestState
	parseManifest(&m, got)
	if m.bad != nil || m.torn || len(m.live) != 1 || len(m.dead) != 0 || m.front != m.live[0].first || m.gone != m.front {
		t.Fatalf("the golden manifest reads back as %+v", m)
	}
}

func TestTheManifestMagicInDocGoSpellsItsName(t *testing.T) {
	b := binary.LittleEndian.AppendUint64(nil, manifestMagic)
	if string(b) != "fwalman1" {
		t.Fatalf("manifestMagic is %q in little-endian bytes, doc.go says fwalman1", b)
	}
}
