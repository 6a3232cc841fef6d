package flumefile

// FuzzDecodeRecord: no payload makes the record decoder panic or loop, and
// what it accepts, encoded again as Flume would write it, decodes to the
// same record. Seeded with records of the Flume fixtures.

import (
	"bytes"
	"path/filepath"
	"slices"
	"testing"

	"github.com/flumed/flumed/channel/flumefile/flumefiletest"
)

func FuzzDecodeRecord(f *testing.F) {
	for _, name := range []string{"kill9-mid-stream", "binary-headers"} {
		c := flumefiletest.ReadChannel(f, filepath.Join(flumefiletest.Root(), name))
		logs, err := listLogs(c.DataDirs)
		if err != nil {
			f.Fatal(err)
		}
		seen := map[int16]int{}
		for _, lf := range logs {
			w, err := openWindow(lf.path)
			if err != nil {
				f.Fatal(err)
			}
			for off := int64(0); ; {
				p, err := readPayload(w, off)
				if err != nil || len(p) == 0 {
					break
				}
				var rec record
				if decodeRecord(p, &rec) == nil && seen[rec.typ] < 3 {
					seen[rec.typ]++
					f.Add(append([]byte(nil), p...))
				}
				off += 5 + int64(len(p))
			}
			w.close()
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var rec record
		if err := decodeRecord(payload, &rec); err != nil {
			return
		}
		if rec.typ < typePut || rec.typ > typeCommit {
			t.Fatalf("accepted type %d", rec.typ)
		}
		var again record
		if err := decodeRecord(reencode(&rec), &again); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !slices.Equal(again.put.Headers, rec.put.Headers) || !bytes.Equal(again.put.Body, rec.put.Body) ||
			again.hdr.TxnID != rec.hdr.TxnID || again.hdr.WriteOrder != rec.hdr.WriteOrder || again.typ != rec.typ ||
			again.take != rec.take || again.commit != rec.commit {
			t.Fatalf("re-encoded record decodes to %+v, was %+v", again, rec)
		}
	})
}
