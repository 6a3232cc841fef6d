package wal

// The record contract: a record decodes back to the index and payload it was
// written with; an empty entry, zeros, another version, a length mismatch or
// any flipped bit is refused, each with its own reason; no input panics.

import (
	"bytes"
	"errors"
	"testing"
)

func TestDecodeRefusesEachKindOfDamage(t *testing.T) {
	good := appendRecord(nil, 42, []byte("payload"))
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name  string
		entry []byte
		want  error
	}{
		{"an empty entry", nil, ErrEmpty},
		{"an all-zero entry", make([]byte, 40), ErrZeroed},
		{"an unknown version", mod(func(b []byte) []byte { b[0] = 2; return b }), ErrVersion},
		{"an entry shorter than a header", good[:10], ErrLength},
		{"a payload longer than its header says", append(mod(func(b []byte) []byte { return b }), 'x'), ErrLength},
		{"a flipped payload bit", mod(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrChecksum},
		{"a flipped index bit", mod(func(b []byte) []byte { b[3] ^= 0x20; return b }), ErrChecksum},
		{"a flipped checksum bit", mod(func(b []byte) []byte { b[14] ^= 0x01; return b }), ErrChecksum},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := decodeRecord(tc.entry); !errors.Is(err, tc.want) {
				t.Fatalf("decode = %v, want %v", err, tc.want)
			}
		})
	}
	idx, p, err := decodeRecord(good)
	if err != nil || idx != 42 || string(p) != "payload" {
		t.Fatalf("good record decodes as %d, %q, %v", idx, p, err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for i, p := range [][]byte{nil, []byte("hi"), payloadFor(7), bytes.Repeat([]byte{0}, 64)} {
		f.Add(appendRecord(nil, uint64(i+1), p))
	}
	f.Add([]byte{})
	f.Add(make([]byte, 17))
	f.Fuzz(func(t *testing.T, entry []byte) {
		idx, payload, err := decodeRecord(entry)
		if err != nil {
			return
		}
		// Whatever decodes must be exactly what encoding that index and
		// payload produces: nothing else passes the checksum.
		if again := appendRecord(nil, idx, payload); !bytes.Equal(again, entry) {
			t.Fatalf("decoded %d, %q from %x, which re-encodes as %x", idx, payload, entry, again)
		}
	})
}
