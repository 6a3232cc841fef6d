// The file channel's record codec: a committed put transaction encodes as a
// fixed header and its events in Avro's AvroFlumeEvent encoding (what hamba/avro
// and Flume's Java Avro read), optionally S2-compressed. Every event comes back
// byte for byte; every malformed record is refused with errBadRecord, without
// panicking and without allocating more than the record bounds allow. The
// record and checkpoint slot layouts are pinned by golden files under
// testdata/filechannel (regenerate with -update after a deliberate change).
package channel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/filechannel")

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

var codecCases = []struct {
	name  string
	event Event
}{
	{"empty body, no headers", Event{}},
	{"empty body with an empty (non-nil) header map", Event{Headers: map[string]string{}, Body: []byte{}}},
	{"binary body with every byte value", Event{Body: allBytes()}},
	{"empty header value", Event{Headers: map[string]string{"k": ""}, Body: []byte("x")}},
	{"empty header key", Event{Headers: map[string]string{"": "v"}, Body: []byte("x")}},
	{"many headers with binary and unicode values", Event{Headers: map[string]string{
		"host": "web-1", "timestamp": "1700000000000", "bin": "\x00\xff\x01", "ü": "日本"}, Body: []byte("line")}},
	{"1 MiB body", Event{Headers: map[string]string{"big": "yes"}, Body: bytes.Repeat([]byte("0123456789abcdef"), 1<<16)}},
}

func encodeEvents(events []Event, flags byte, compress bool) []byte {
	var b recordBuilder
	for _, e := range events {
		b.add(e)
	}
	rec := b.finish(flags, compress, 1)
	stampRecord(rec, 42, 1_700_000_000_123)
	return rec
}

func sameEvents(t *testing.T, got, want []Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !bytes.Equal(g.Body, w.Body) || len(g.Headers) != len(w.Headers) {
			t.Fatalf("event %d: got %d headers / %d body bytes, want %d / %d", i, len(g.Headers), len(g.Body), len(w.Headers), len(w.Body))
		}
		for k, v := range w.Headers {
			if gv, ok := g.Headers[k]; !ok || gv != v {
				t.Fatalf("event %d: header %q = %q (present %v), want %q", i, k, gv, ok, v)
			}
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, c := range codecCases {
		for _, compress := range []bool{false, true} {
			name := c.name
			if compress {
				name += ", compressed"
			}
			t.Run(name, func(t *testing.T) {
				rec := encodeEvents([]Event{c.event, c.event}, recordFlagSynced, compress)
				h, got, err := decodeRecord(rec, nil)
				if err != nil {
					t.Fatal(err)
				}
				if h.FirstSeq != 42 || h.Count != 2 || h.CommitMs != 1_700_000_000_123 || !h.Synced() {
					t.Errorf("header %+v", h)
				}
				sameEvents(t, got, []Event{c.event, c.event})
			})
		}
	}
	t.Run("an event without headers comes back with nil headers", func(t *testing.T) {
		_, got, err := decodeRecord(encodeEvents([]Event{{Headers: map[string]string{}}}, 0, false), nil)
		if err != nil || got[0].Headers != nil {
			t.Fatalf("headers %#v, err %v", got[0].Headers, err)
		}
	})
	t.Run("repetitive bodies are compressed, random ones are not", func(t *testing.T) {
		big := codecCases[len(codecCases)-1].event
		rec := encodeEvents([]Event{big}, 0, true)
		if rec[2]&recordFlagS2 == 0 || len(rec) > len(big.Body)/4 {
			t.Errorf("1 MiB of repeated text: %d bytes, flags %#x", len(rec), rec[2])
		}
		random := Event{Body: bytes.Repeat(allBytes(), 1)}
		rec = encodeEvents([]Event{random}, 0, true)
		if rec[2]&recordFlagS2 != 0 {
			t.Errorf("256 distinct bytes were compressed")
		}
	})
}

// The events are real Avro: hamba/avro decodes them with Flume's schema.
func TestRecordEventsAreAvroFlumeEvents(t *testing.T) {
	schema := avro.MustParse(`{"type":"record","name":"AvroFlumeEvent","namespace":"org.apache.flume.source.avro",
		"fields":[{"name":"headers","type":{"type":"map","values":"string"}},{"name":"body","type":"bytes"}]}`)
	type avroEvent struct {
		Headers map[string]string `avro:"headers"`
		Body    []byte            `avro:"body"`
	}
	for _, c := range codecCases {
		var got avroEvent
		if err := avro.Unmarshal(schema, appendAvroEvent(nil, c.event), &got); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		sameEvents(t, []Event{{Headers: got.Headers, Body: got.Body}}, []Event{c.event})
		if n := avroEventSize(c.event); n != len(appendAvroEvent(nil, c.event)) {
			t.Errorf("%s: avroEventSize %d, encoded %d", c.name, n, len(appendAvroEvent(nil, c.event)))
		}
		// And what Java's Avro writes (blocks with byte sizes) decodes too.
		want, err := avro.Marshal(schema, avroEvent{Headers: c.event.Headers, Body: c.event.Body})
		if err != nil {
			t.Fatal(err)
		}
		e, n, err := decodeAvroEvent(want, &keyCache{})
		if err != nil || n != len(want) {
			t.Fatalf("%s: decode hamba's bytes: %d of %d, %v", c.name, n, len(want), err)
		}
		sameEvents(t, []Event{e}, []Event{c.event})
	}
	// A map in one block with a negative count and a byte size.
	blocked := []byte{1, 8, 2, 'k', 2, 'v', 0, 2, 'b'} // count -1, block size 4
	e, _, err := decodeAvroEvent(blocked, &keyCache{})
	if err != nil || e.Headers["k"] != "v" || string(e.Body) != "b" {
		t.Fatalf("negative block count: %+v %v", e, err)
	}
}

func TestDecodeRecordRefusesDamage(t *testing.T) {
	good := encodeEvents([]Event{{Headers: map[string]string{"a": "b"}, Body: []byte("body")}}, 0, false)
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name string
		rec  []byte
	}{
		{"empty", nil},
		{"shorter than the header", good[:recordHeaderSize-1]},
		{"unknown version", mod(func(b []byte) []byte { b[0] = 9; return b })},
		{"unknown kind", mod(func(b []byte) []byte { b[1] = 7; return b })},
		{"unknown flag", mod(func(b []byte) []byte { b[2] = 0x80; return b })},
		{"reserved byte set", mod(func(b []byte) []byte { b[3] = 1; return b })},
		{"zero events", mod(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], 0); return b })},
		{"more events than the body can hold", mod(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], 1<<20); return b })},
		{"count past the limit", mod(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], 1<<30); return b })},
		{"body length disagrees", mod(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[24:], 3); return b })},
		{"body length past the limit", mod(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[24:], 1<<31); return b })},
		{"sequence numbers overflow", mod(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[4:], ^uint64(0)); return b })},
		{"truncated body", mod(func(b []byte) []byte {
			b = b[:len(b)-2]
			binary.LittleEndian.PutUint32(b[24:], uint32(len(b)-recordHeaderSize))
			return b
		})},
		{"trailing bytes", mod(func(b []byte) []byte {
			b = append(b, 0, 0)
			binary.LittleEndian.PutUint32(b[24:], uint32(len(b)-recordHeaderSize))
			return b
		})},
		{"header count past the bytes left", mod(func(b []byte) []byte { b[recordHeaderSize] = 0x7e; return b })},
		{"negative string length", mod(func(b []byte) []byte { b[recordHeaderSize+1] = 3; return b })},
		{"overlong varint", append(bytes.Clone(good[:recordHeaderSize]), bytes.Repeat([]byte{0xff}, 11)...)},
		{"compressed flag on a plain body", mod(func(b []byte) []byte { b[2] |= recordFlagS2; return b })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "overlong varint" {
				binary.LittleEndian.PutUint32(c.rec[24:], 11)
			}
			_, _, err := decodeRecord(c.rec, nil)
			if !errors.Is(err, errBadRecord) {
				t.Fatalf("got %v, want errBadRecord", err)
			}
		})
	}
}

// FuzzDecodeRecord: the decoder never panics, and what it accepts re-encodes
// to events that decode the same.
func FuzzDecodeRecord(f *testing.F) {
	for _, c := range codecCases[:6] {
		f.Add(encodeEvents([]Event{c.event, {Body: []byte("second")}}, recordFlagSynced, false))
		f.Add(encodeEvents([]Event{c.event}, 0, true))
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		h, events, err := decodeRecord(rec, nil)
		if err != nil {
			if !errors.Is(err, errBadRecord) {
				t.Fatalf("error not wrapping errBadRecord: %v", err)
			}
			return
		}
		if len(events) != int(h.Count) {
			t.Fatalf("%d events, header says %d", len(events), h.Count)
		}
		again := encodeEvents(events, h.Flags&recordFlagSynced, false)
		_, events2, err := decodeRecord(again, nil)
		if err != nil {
			t.Fatalf("re-encoded record refused: %v", err)
		}
		sameEvents(t, events2, events)
	})
}

// golden compares b with testdata/filechannel/name, or rewrites it with -update.
func golden(t *testing.T, name string, b []byte) {
	t.Helper()
	path := filepath.Join("..", "testdata", "filechannel", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("%s changed: the on-disk format differs (got %d bytes, want %d). If deliberate, bump the version and run with -update.\ngot  %x\nwant %x",
			name, len(b), len(want), b, want)
	}
}

func TestGoldenRecord(t *testing.T) {
	events := []Event{
		{Headers: map[string]string{"host": "web-1"}, Body: []byte("first line")},
		{Body: []byte{}},
		{Headers: map[string]string{"empty": ""}, Body: []byte{0, 1, 2, 0xff}},
	}
	rec := encodeEvents(events, recordFlagSynced, false)
	golden(t, "record-v1.bin", rec)
	_, got, err := decodeRecord(rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, got, events)

	compressed := encodeEvents([]Event{{Body: []byte(strings.Repeat("flumed ", 200))}}, 0, true)
	golden(t, "record-v1-s2.bin", compressed)

	// Two origins: one with its events in one run, one with a gap (a
	// resend of which only some events were new).
	var st originStage
	a := OriginID{0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	b := OriginID{0xbb, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	st.addSeqs(a, []uint64{1000})
	st.addSeqs(b, []uint64{7, 9})
	withOrigins := appendOriginTrailer(encodeEvents(events, recordFlagSynced|recordFlagOrigins, false), st)
	golden(t, "record-v1-origins.bin", withOrigins)
	h, got, err := decodeRecord(withOrigins, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, got, events)
	_, back, err := splitOriginTrailer(withOrigins, h)
	if err != nil || len(back) != 2 || back[0].id != a || back[0].rs.String() != "[1000-1000]" ||
		back[1].id != b || back[1].rs.String() != "[7-7 9-9]" {
		t.Fatalf("origin trailer read back as %+v (%v)", back, err)
	}
}

func TestGoldenCheckpointSlot(t *testing.T) {
	c := &checkpoint{
		ackState: ackState{
			Floor:    1000,
			FloorPos: logPos{Index: 17, Offset: 3},
			Ranges:   []seqRange{{1000, 1002}, {1010, 1020}, {5000, 5001}},
			Next:     6000,
		},
		Generation: 7,
		LogID:      [16]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
		WrittenMs:  1_700_000_000_000,
		EndIndex:   42,
	}
	same := func(t *testing.T, got, c *checkpoint) {
		t.Helper()
		if got.Generation != c.Generation || got.LogID != c.LogID || got.Floor != c.Floor || got.FloorPos != c.FloorPos ||
			got.Next != c.Next || got.EndIndex != c.EndIndex || len(got.Ranges) != len(c.Ranges) ||
			got.Origin != c.Origin || got.OriginDurable != c.OriginDurable {
			t.Fatalf("decoded %+v, want %+v", got, c)
		}
		for i := range c.Ranges {
			if got.Ranges[i] != c.Ranges[i] {
				t.Fatalf("range %d: %v, want %v", i, got.Ranges[i], c.Ranges[i])
			}
		}
	}
	t.Run("a version 1 slot is still read, with no origin", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "filechannel", "checkpoint-slot-v1.bin"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeCheckpoint(b)
		if err != nil {
			t.Fatal(err)
		}
		same(t, got, c)
	})
	t.Run("a version 2 slot is still read, with its origin and no dedup table", func(t *testing.T) {
		c := *c
		c.Origin = OriginID{0x0f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xf0}
		c.OriginDurable = true
		b, err := os.ReadFile(filepath.Join("..", "testdata", "filechannel", "checkpoint-slot-v2.bin"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeCheckpoint(b)
		if err != nil {
			t.Fatal(err)
		}
		same(t, got, &c)
		if got.HasDedup {
			t.Fatal("a version 2 slot read as having a dedup table")
		}
	})
	t.Run("version 3 carries the dedup table", func(t *testing.T) {
		c := *c
		c.Origin = OriginID{0x0f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xf0}
		c.OriginDurable = true
		o := NewOrigins(OriginsOptions{})
		up := OriginID{0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
		o.Commit(up, 1, 101, time.UnixMilli(1_700_000_000_000))
		o.Commit(up, 201, 301, time.UnixMilli(1_700_000_000_500))
		c.Dedup, c.DedupThrough = o.AppendBinary(nil), 41
		b, err := encodeCheckpoint(&c)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "checkpoint-slot-v3.bin", b)
		got, err := decodeCheckpoint(b)
		if err != nil {
			t.Fatal(err)
		}
		same(t, got, &c)
		back, _, err := DecodeOrigins(got.Dedup, OriginsOptions{})
		if err != nil || !got.HasDedup || got.DedupThrough != 41 || back.Len() != 1 ||
			back.Info()[0].Ranges != "[1-100 201-300]" || !back.Info()[0].LastSeen.Equal(time.UnixMilli(1_700_000_000_500)) {
			t.Fatalf("dedup table read back as %+v through %d (%v)", back.Info(), got.DedupThrough, err)
		}
	})
}
