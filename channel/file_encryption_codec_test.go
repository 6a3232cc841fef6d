package channel

// A sealed record decodes to the events it was made from, compressed or
// not; every flipped byte of its body or of the header fields its tag
// covers is damage (never delivered); a record whose key is unknown or
// different is ErrRecordKey, never damage, since the channel skips damage.

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealedRecordsOpenAndRefuseTampering(t *testing.T) {
	k1 := bytes.Repeat([]byte{1}, 32)
	kr, err := NewKeyring("k1", map[string][]byte{"k1": k1})
	if err != nil {
		t.Fatal(err)
	}
	for _, compress := range []bool{false, true} {
		var events []Event
		for _, c := range codecCases {
			events = append(events, c.event)
		}
		var b recordBuilder
		for _, e := range events {
			b.add(e)
		}
		rec := kr.seal(b.finish(recordFlagSynced, compress, 1))
		stampRecord(rec, 42, 1_700_000_000_123)
		h, got, err := decodeRecord(rec, kr)
		if err != nil {
			t.Fatalf("compress=%v: %v", compress, err)
		}
		if h.Flags&recordFlagEncrypted == 0 || h.FirstSeq != 42 || !h.Synced() {
			t.Fatalf("header %+v", h)
		}
		sameEvents(t, got, events)

		// The sequence number and time (stamped after sealing) are not
		// covered by the tag; everything else is.
		// A changed key name or check reads as another key: refused too.
		meta := recordHeaderSize + 1 + len("k1") + keyCheckLen
		for _, off := range []int{0, 2, 12, 24, recordHeaderSize + 1, meta - 1, meta + 1, len(rec) / 2, len(rec) - 1} {
			bad := bytes.Clone(rec)
			bad[off] ^= 0x10
			_, _, err := decodeRecord(bad, kr)
			if err == nil || (off >= meta || off < recordHeaderSize) && !isDamaged(err) {
				t.Fatalf("compress=%v: byte %d flipped: %v, want it refused (as damage past the key)", compress, off, err)
			}
		}
		other, _ := NewKeyring("k1", map[string][]byte{"k1": bytes.Repeat([]byte{2}, 32)})
		for _, keys := range []*Keyring{nil, other} {
			if _, _, err := decodeRecord(rec, keys); !errors.Is(err, ErrRecordKey) || isDamaged(err) {
				t.Fatalf("without the key: %v, want ErrRecordKey and not damage", err)
			}
		}
	}
}

func TestNoncesNeverRepeatWithinAKeyring(t *testing.T) {
	kr, _ := NewKeyring("k", map[string][]byte{"k": bytes.Repeat([]byte{3}, 16)})
	seen := map[string]bool{}
	var b recordBuilder
	b.add(Event{Body: []byte("x")})
	rec := b.finish(0, false, 1)
	for range 1000 {
		s := kr.seal(bytes.Clone(rec))
		nonce := string(s[recordHeaderSize+1+1+keyCheckLen : recordHeaderSize+1+1+keyCheckLen+gcmNonceLen])
		if seen[nonce] {
			t.Fatal("a nonce repeated")
		}
		seen[nonce] = true
	}
}
