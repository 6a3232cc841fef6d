package avrorpc

// Contract: the hand codec encodes AvroFlumeEvent and its array exactly as
// Avro's binary encoding does, decodes what it encodes, and refuses — before
// allocating for them — counts and lengths that exceed the limits or the bytes
// actually present.

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func TestLongsRoundTripThroughZigZagVarints(t *testing.T) {
	for _, v := range []int64{0, -1, 1, 63, -64, 64, 300, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64} {
		b := appendLong(nil, v)
		got, err := newDecoder(b).long()
		if err != nil || got != v {
			t.Errorf("long %d: got %d, %v (bytes %x)", v, got, err, b)
		}
	}
	if b := appendLong(nil, 1289); !bytes.Equal(b, []byte{0x92, 0x14}) {
		t.Errorf("1289 encodes as %x, the recording has 92 14", b)
	}
}

func TestMalformedVarintsAreRejected(t *testing.T) {
	cases := map[string][]byte{
		"eleven bytes":       bytes.Repeat([]byte{0x80}, 11),
		"ends mid varint":    {0x80, 0x80},
		"overflows 64 bits":  {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"int out of 32 bits": appendLong(nil, math.MaxInt32+1),
	}
	for name, b := range cases {
		d := newDecoder(b)
		var err error
		if name == "int out of 32 bits" {
			_, err = d.int()
		} else {
			_, err = d.long()
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestEventsRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 20).Draw(t, "n")
		in := make([]Event, n)
		for i := range in {
			in[i].Headers = rapid.MapOf(rapid.String(), rapid.String()).Draw(t, "headers")
			in[i].Body = rapid.SliceOf(rapid.Byte()).Draw(t, "body")
		}
		b := appendEventArray(nil, in)
		d := newDecoder(b)
		out, err := decodeEventArray(d, DefaultLimits())
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if d.remaining() != 0 {
			t.Fatalf("%d bytes left over", d.remaining())
		}
		if !sameEvents(in, out) {
			t.Fatalf("got %+v, want %+v", out, in)
		}
	})
}

func TestMultiBlockArraysAndMapsWithByteSizesDecode(t *testing.T) {
	// Avro writers may split arrays and maps into blocks and give negative
	// counts followed by the block's byte size; Java never does, but it is
	// valid Avro.
	ev := appendEvent(nil, &Event{Headers: map[string]string{"a": "1"}, Body: []byte("x")})
	var b []byte
	b = appendLong(b, -1)
	b = appendLong(b, int64(len(ev)))
	b = append(b, ev...)
	b = appendLong(b, 1)
	// Second event: headers in two blocks, the first with a byte size.
	b = appendLong(b, -1)
	b = appendLong(b, 4)
	b = appendString(b, "k")
	b = appendString(b, "v")
	b = appendLong(b, 1)
	b = appendString(b, "k2")
	b = appendString(b, "v2")
	b = append(b, 0)
	b = appendBytes(b, []byte("y"))
	b = append(b, 0)
	out, err := decodeEventArray(newDecoder(b), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	want := []Event{
		{Headers: map[string]string{"a": "1"}, Body: []byte("x")},
		{Headers: map[string]string{"k": "v", "k2": "v2"}, Body: []byte("y")},
	}
	if !sameEvents(out, want) {
		t.Fatalf("got %+v", out)
	}
}

func TestDecodingRefusesWhatExceedsLimitsOrTheBytesPresent(t *testing.T) {
	lim := Limits{MaxBatchEvents: 10, MaxHeaders: 2, MaxHeaderBytes: 8, MaxBodyBytes: 16}.withDefaults()
	arr := func(count int64, rest ...byte) []byte { return append(appendLong(nil, count), rest...) }
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"a million events declared with two bytes sent", arr(1_000_000, 0, 0), "exceeds the limit"},
		{"more events than bytes can hold", arr(5, 0, 0, 0, 0), "only 4 bytes follow"},
		{"too many headers", arr(1, append(appendLong(nil, 3), strings.Repeat("\x00", 8)...)...), "exceeds the limit"},
		{"header longer than allowed", arr(1, append(appendLong(nil, 1), appendString(appendString(nil, "k"), "123456789")...)...), "exceeds the limit"},
		{"body longer than allowed", arr(1, append([]byte{0}, appendBytes(nil, make([]byte, 17))...)...), "exceeds the limit"},
		{"body longer than the payload", arr(1, 0, 0x20, 'a'), "payload ends"},
		{"negative body length", arr(1, 0, 0x01), "negative length"},
		{"array never ends", arr(1, 0, 0), "payload ends"},
		{"minimum int64 block count", append(appendLong(nil, math.MinInt64), 0), "out of range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeEventArray(newDecoder(tc.b), lim)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestARefusedBatchAllocatesNothingForItsEvents(t *testing.T) {
	// The scan pass fails before the build pass allocates the event slice.
	b := appendLong(nil, 50_000)
	b = append(b, bytes.Repeat([]byte{0, 0}, 49_999)...) // one event short
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := decodeEventArray(newDecoder(b), DefaultLimits()); err == nil {
			t.Fatal("accepted")
		}
	})
	if allocs > 8 {
		t.Fatalf("%v allocations for a refused batch", allocs)
	}
}

func TestEventsWithoutHeadersDecodeToEmptyHeaders(t *testing.T) {
	b := appendEventArray(nil, []Event{{Body: []byte("a")}, {Body: nil}})
	out, err := decodeEventArray(newDecoder(b), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || len(out[0].Headers) != 0 || string(out[0].Body) != "a" || len(out[1].Body) != 0 {
		t.Fatalf("got %+v", out)
	}
}

func TestShortInputIsErrShort(t *testing.T) {
	_, err := newDecoder(appendLong(nil, 10)).rawBytes("x", 0)
	if !errors.Is(err, errShort) {
		t.Fatalf("err = %v", err)
	}
}
