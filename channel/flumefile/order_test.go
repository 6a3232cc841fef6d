package flumefile

// The order of what is replayed depends on Java: the iteration order of
// Guava HashMultimaps of Longs for the transactions open at the checkpoint,
// java.util.PriorityQueue for records of equal write order, and Java's UTF-8
// decoder for header strings. These tests pin each rule with cases worked
// out by hand from the JDK and Guava sources.

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/flumed/flumed/channel/flumefile/flumefiletest"
)

func hashOrder(initial int, vals ...int64) []int64 {
	s := newJavaHashSet(initial)
	for _, v := range vals {
		s.add(v)
	}
	return s.values()
}

func TestJavaHashOrder(t *testing.T) {
	p := func(off int32) int64 { return flumefiletest.Pointer(1, off) }
	cases := []struct {
		name    string
		initial int
		in      []int64
		want    []int64
	}{
		// A value set starts with 4 buckets; log-1 offset 100 hashes to
		// 100^1 = 101 (bucket 1), offset 42 to 43 (bucket 3), offset 8 to 9
		// (bucket 1): bucket order, then insertion order.
		{"buckets first, then insertion order", 3, []int64{p(42), p(100), p(8)}, []int64{p(100), p(8), p(42)}},
		// The fourth value passes the threshold (3 of 4): 8 buckets, where
		// 101 and 5 share bucket 5, 43 is in 3 and 9 in 1.
		{"the table doubles past three quarters", 3, []int64{p(42), p(100), p(8), p(4)}, []int64{p(8), p(42), p(100), p(4)}},
		// 0x10001 spreads to 0x10001 ^ 0x1 = 0x10000: bucket 0, not 1.
		{"the high half of the hash is folded in", 3, []int64{p(8), p(0x10000)}, []int64{p(0x10000), p(8)}},
		// Nine values in one bucket of 16 (all 1 mod 16): the ninth makes
		// Java resize a table smaller than 64 instead of building a tree.
		{"a long bucket in a small table doubles it", 3, []int64{1, 17, 33, 49, 65, 81, 97, 113, 129},
			[]int64{1, 33, 65, 97, 129, 17, 49, 81, 113}},
		// Guava 29 sizes the key map for 12 keys: 32 buckets, so keys 16
		// and 0 are apart (Guava 11's 16 buckets kept insertion order).
		{"transaction keys start with 32 buckets", guavaCapacity(12), []int64{16, 0}, []int64{0, 16}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := hashOrder(tc.initial, tc.in...); !slices.Equal(got, tc.want) {
				t.Fatalf("order %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOpenTransactionsAtTheCheckpoint(t *testing.T) {
	// Before the checkpoint: a committed; b, c, d put by transaction 7
	// (open); e, f taken by transaction 8 (open). After it: g put by 7 and
	// 7 committed; 8 never commits.
	s := newScene(t)
	s.puts(1, "a", "e", "f")
	for _, b := range []string{"b", "c", "d"} {
		off := s.append(flumefiletest.PutRecord(7, s.next(), flumefiletest.Put{Body: []byte(b)}))
		s.offsets[b], s.ptrs[b] = off, flumefiletest.Pointer(1, off)
	}
	s.append(flumefiletest.TakeRecord(8, s.next(), 1, s.offsets["e"]))
	s.append(flumefiletest.TakeRecord(8, s.next(), 1, s.offsets["f"]))
	s.meta = flumefiletest.LogMeta{CheckpointPosition: s.w.Pos(), CheckpointWriteOrd: s.wo}
	ck := flumefiletest.Checkpoint{Capacity: 100, WriteOrder: s.wo, Queue: []int64{s.ptrs["a"]},
		ActiveLogs: []flumefiletest.ActiveLog{{ID: 1, Count: 1}},
		Puts:       []flumefiletest.Inflight{{Txn: 7, Pointers: []int64{s.ptrs["b"], s.ptrs["c"], s.ptrs["d"]}}},
		Takes:      []flumefiletest.Inflight{{Txn: 8, Pointers: []int64{s.ptrs["e"], s.ptrs["f"]}}}}
	off := s.append(flumefiletest.PutRecord(7, s.next(), flumefiletest.Put{Body: []byte("g")}))
	s.ptrs["g"] = flumefiletest.Pointer(1, off)
	s.append(flumefiletest.CommitRecord(7, s.next(), flumefiletest.TypePut))
	s.close()
	if err := flumefiletest.WriteCheckpoint(s.ckptDir, ck); err != nil {
		t.Fatal(err)
	}
	// Expected: the open takes at the head, each put back at the head in
	// turn (so the last in Java's order comes first); then the queue; then
	// transaction 7's inflight puts in Java's order, then its later put.
	name := map[int64]string{}
	for k, v := range s.ptrs {
		name[v] = k
	}
	var want []string
	takes := hashOrder(guavaCapacity(2), s.ptrs["e"], s.ptrs["f"])
	for i := len(takes) - 1; i >= 0; i-- {
		want = append(want, name[takes[i]])
	}
	want = append(want, "a")
	for _, v := range hashOrder(guavaCapacity(2), s.ptrs["b"], s.ptrs["c"], s.ptrs["d"]) {
		want = append(want, name[v])
	}
	want = append(want, "g")
	got, err := s.read()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	// This layout was chosen so that Java's order is not the write order.
	if slices.Equal(got, []string{"f", "e", "a", "b", "c", "d", "g"}) {
		t.Fatalf("events %q: the hash order equals the write order, so the test proves nothing", got)
	}
	t.Logf("events %q", got)
}

func TestATakeCommittedBeforeItsPutWaitsForIt(t *testing.T) {
	// Two data directories: log-1 holds a take of an event put in log-2 by
	// a transaction whose commit has a later write order id (Flume's
	// "pending takes"). The put commit finds the take and the event is gone;
	// a pending take whose put never commits is only counted.
	root := t.TempDir()
	d1, d2 := filepath.Join(root, "d1"), filepath.Join(root, "d2")
	ck := filepath.Join(root, "checkpoint")
	for _, d := range []string{d1, d2, ck} {
		if err := mkdir(d); err != nil {
			t.Fatal(err)
		}
	}
	w2, err := flumefiletest.CreateLog(d2, 2)
	if err != nil {
		t.Fatal(err)
	}
	offA, _ := w2.Append(flumefiletest.PutRecord(20, 12, flumefiletest.Put{Body: []byte("a")}))
	offB, _ := w2.Append(flumefiletest.PutRecord(20, 13, flumefiletest.Put{Body: []byte("b")}))
	w2.Append(flumefiletest.CommitRecord(20, 14, flumefiletest.TypePut))
	w1, err := flumefiletest.CreateLog(d1, 1)
	if err != nil {
		t.Fatal(err)
	}
	w1.Append(flumefiletest.TakeRecord(5, 10, 2, offA))
	w1.Append(flumefiletest.CommitRecord(5, 11, flumefiletest.TypeTake))
	w1.Append(flumefiletest.TakeRecord(6, 15, 2, 999))
	w1.Append(flumefiletest.CommitRecord(6, 16, flumefiletest.TypeTake))
	for _, w := range []*flumefiletest.LogWriter{w1, w2} {
		if err := w.Close(flumefiletest.LogMeta{}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := Open(Options{CheckpointDir: ck, DataDirs: []string{d1, d2}, FsyncPerTransaction: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var got []string
	for ev, err := range b.Events(nil) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(ev.Body))
	}
	if !slices.Equal(got, []string{"b"}) || b.Report.PendingTakes != 1 {
		t.Fatalf("events %q, pending takes %d; want b and 1", got, b.Report.PendingTakes)
	}
	_ = offB
}

func TestRecordsOfEqualWriteOrderComeOutInFlumesOrder(t *testing.T) {
	mk := func(typ int16, txn, wo int64) *record {
		return &record{typ: typ, hdr: eventHeader{Type: int32(typ), TxnID: txn, WriteOrder: wo}}
	}
	var h recordHeap
	for _, r := range []*record{mk(typeCommit, 1, 5), mk(typePut, 1, 5), mk(typeRollback, 1, 5), mk(typeTake, 1, 5),
		mk(typePut, 0, 5), mk(typePut, 2, 4)} {
		h.offer(r)
	}
	var got [][2]int64
	for r := h.poll(); r != nil; r = h.poll() {
		got = append(got, [2]int64{r.hdr.WriteOrder*100 + r.hdr.TxnID, int64(r.typ)})
	}
	want := [][2]int64{{402, typePut}, {500, typePut}, {501, typeTake}, {501, typePut}, {501, typeRollback}, {501, typeCommit}}
	if !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}

func TestJavaString(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"valid UTF-8 is kept as it is", []byte("café ☕ 😀"), "café ☕ 😀"},
		{"an encoded surrogate is one replacement", []byte{0xed, 0xa0, 0x80, 'x'}, "\uFFFDx"},
		{"an overlong lead byte and its continuation are two", []byte{0xc0, 0x80}, "\uFFFD\uFFFD"},
		{"a sequence broken by ASCII replaces the lead and its continuation", []byte{0xe2, 0x82, 'A'}, "\uFFFDA"},
		{"a sequence cut by the end is one replacement", []byte{'a', 0xf0, 0x9f, 0x98}, "a\uFFFD"},
		{"a lone continuation byte", []byte{0x80, 'b'}, "\uFFFDb"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := javaString(tc.in); got != tc.want {
				t.Fatalf("%q, want %q", got, tc.want)
			}
		})
	}
}

func TestProtobufJavasLeniency(t *testing.T) {
	t.Run("a delimited length past the end parses what is there", func(t *testing.T) {
		msg := []byte{0x0d, 1, 0, 0, 0, 0x11, 2, 0, 0, 0, 0, 0, 0, 0, 0x19, 3, 0, 0, 0, 0, 0, 0, 0}
		b := append([]byte{byte(len(msg) + 10)}, msg...)
		pos := 0
		m, ok, err := delimited(b, &pos)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		h, err := parseEventHeader(m)
		if err != nil || h != (eventHeader{1, 2, 3}) {
			t.Fatalf("%+v %v", h, err)
		}
	})
	t.Run("a known field with another wire type is skipped as unknown", func(t *testing.T) {
		msg := []byte{0x08, 5, 0x0d, 2, 0, 0, 0, 0x15, 7, 0, 0, 0}
		tk, err := parseTake(msg)
		if err != nil || tk != (take{2, 7}) {
			t.Fatalf("%+v %v", tk, err)
		}
	})
	t.Run("a missing required field is invalid", func(t *testing.T) {
		if _, err := parseTake([]byte{0x0d, 2, 0, 0, 0}); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("an empty stream is a null message", func(t *testing.T) {
		pos := 0
		if _, ok, err := delimited(nil, &pos); ok || err != nil {
			t.Fatal(ok, err)
		}
	})
	t.Run("a header value left out reads as empty", func(t *testing.T) {
		h, err := parseHeader([]byte{0x0a, 1, 'k'})
		if err != nil || h != (Header{Key: "k"}) {
			t.Fatalf("%+v %v", h, err)
		}
	})
}

func mkdir(d string) error { return os.MkdirAll(d, 0o755) }
