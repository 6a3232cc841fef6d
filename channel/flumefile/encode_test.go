package flumefile

// The test-only encoder (flumefiletest) writes what Flume writes: every
// file of every fixture, decoded and encoded again, gives the same bytes
// (data files whole, with their OP_EOF preallocation; their metadata; the
// checkpoint metadata and inflight files; the checkpoint's header and queue).
// Only then is it trusted to build channels the fixtures cannot hold.

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flumed/flumed/channel/flumefile/flumefiletest"
)

// walkLog reads every record of a data file from its start.
func walkLog(t *testing.T, lf logFile, fn func(rec *record, payload []byte)) {
	t.Helper()
	m, err := readLogMetaAt(lf.path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := openWindow(lf.path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	raw, err := openWindow(lf.path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.close()
	r := &seqReader{file: lf, meta: m, w: w, strict: true}
	for {
		var rec record
		ok, err := r.next(&rec)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return
		}
		payload, err := readPayload(raw, int64(rec.offset))
		if err != nil {
			t.Fatal(err)
		}
		fn(&rec, payload)
	}
}

// reencode encodes a decoded record with the test encoder.
func reencode(rec *record) []byte {
	h := rec.hdr
	switch rec.typ {
	case typePut:
		p := flumefiletest.Put{Body: rec.put.Body, NoChecksum: !rec.put.HasChecksum}
		for _, hd := range rec.put.Headers {
			p.Headers = append(p.Headers, flumefiletest.Header{Key: hd.Key, Value: hd.Value})
		}
		return flumefiletest.PutRecord(h.TxnID, h.WriteOrder, p)
	case typeTake:
		return flumefiletest.TakeRecord(h.TxnID, h.WriteOrder, rec.take.FileID, rec.take.Offset)
	case typeRollback:
		return flumefiletest.RollbackRecord(h.TxnID, h.WriteOrder)
	default:
		return flumefiletest.CommitRecord(h.TxnID, h.WriteOrder, int32(rec.commit))
	}
}

func TestTheEncoderWritesWhatFlumeWrote(t *testing.T) {
	for _, name := range flumefiletest.Cases(t) {
		t.Run(name, func(t *testing.T) {
			c := flumefiletest.ReadChannel(t, filepath.Join(flumefiletest.Root(), name))
			logs, err := listLogs(c.DataDirs)
			if err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			records := 0
			for _, lf := range logs {
				w, err := flumefiletest.CreateLog(out, lf.id)
				if err != nil {
					t.Fatal(err)
				}
				walkLog(t, lf, func(rec *record, payload []byte) {
					records++
					enc := reencode(rec)
					if !bytes.Equal(enc, payload) {
						t.Fatalf("%s offset %d: encoded\n%x\nFlume wrote\n%x", lf.path, rec.offset, enc, payload)
					}
					if off, err := w.Append(enc); err != nil || off != rec.offset {
						t.Fatalf("record at %d written at %d (%v)", rec.offset, off, err)
					}
				})
				m, err := readLogMetaAt(lf.path)
				if err != nil {
					t.Fatal(err)
				}
				err = w.Close(flumefiletest.LogMeta{ID: m.LogFileID, CheckpointPosition: m.CheckpointPosition,
					CheckpointWriteOrd: m.CheckpointWriteOrder, BackupPosition: m.BackupPosition, BackupWriteOrder: m.BackupWriteOrder})
				if err != nil {
					t.Fatal(err)
				}
				for _, suffix := range []string{"", ".meta"} {
					sameFile(t, lf.path+suffix, w.Path+suffix)
				}
			}
			if records == 0 {
				t.Fatal("no records read")
			}
			for _, dir := range []string{c.CheckpointDir, c.BackupDir} {
				if dir != "" {
					checkpointRoundTrip(t, dir)
				}
			}
		})
	}
}

func sameFile(t *testing.T, flume, ours string) {
	t.Helper()
	a, err := os.ReadFile(flume)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(ours)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		i := 0
		for i < min(len(a), len(b)) && a[i] == b[i] {
			i++
		}
		t.Fatalf("%s: %d bytes, the encoder wrote %d; first difference at %d", flume, len(a), len(b), i)
	}
}

// checkpointRoundTrip decodes a checkpoint directory and encodes it again.
func checkpointRoundTrip(t *testing.T, dir string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, checkpointName))
	if err != nil {
		t.Fatal(err)
	}
	mb, err := os.ReadFile(filepath.Join(dir, checkpointMetaName))
	if err != nil {
		t.Fatal(err)
	}
	pos := 0
	msg, _, err := delimited(mb, &pos)
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseCheckpointMeta(msg)
	if err != nil {
		t.Fatal(err)
	}
	c := flumefiletest.Checkpoint{Capacity: len(data)/8 - headerLongs, WriteOrder: m.WriteOrder, Head: m.QueueHead,
		Incomplete: binary.BigEndian.Uint64(data[32:]) != 0}
	for _, a := range m.ActiveLogs {
		c.ActiveLogs = append(c.ActiveLogs, flumefiletest.ActiveLog{ID: a.FileID, Count: a.Count})
	}
	occupied := map[int]bool{}
	for i := 0; i < int(m.QueueSize); i++ {
		slot := headerLongs + (int(m.QueueHead)+i)%c.Capacity
		occupied[slot] = true
		c.Queue = append(c.Queue, int64(binary.BigEndian.Uint64(data[8*slot:])))
	}
	if !bytes.Equal(flumefiletest.CheckpointMetaBytes(c), mb) {
		t.Fatalf("%s: checkpoint.meta encodes differently", dir)
	}
	enc := flumefiletest.CheckpointBytes(c)
	stale := 0
	for i := 0; i < len(data); i += 8 {
		if bytes.Equal(data[i:i+8], enc[i:i+8]) {
			continue
		}
		if i/8 < headerLongs || occupied[i/8] {
			t.Fatalf("%s: long %d is %x, encoded %x", dir, i/8, data[i:i+8], enc[i:i+8])
		}
		stale++ // a value left in a free slot: Flume never reads it
	}
	// Flume zeroes a slot when its event leaves; only the fixture that
	// overwrote 8 bytes across two free slots has values there.
	if want := map[bool]int{true: 2}[strings.Contains(dir, "corrupt-middle") && strings.HasSuffix(dir, "checkpoint")]; stale != want {
		t.Errorf("%s: %d free slots hold values, want %d", dir, stale, want)
	}
	for _, name := range []string{inflightPuts, inflightTakes} {
		m, err := readInflights(ckptFiles{files: map[string]string{name: filepath.Join(dir, name)}}, name)
		if err != nil {
			t.Fatal(err)
		}
		var txns []flumefiletest.Inflight
		m.each(func(k int64, vs []int64) { txns = append(txns, flumefiletest.Inflight{Txn: k, Pointers: vs}) })
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(flumefiletest.InflightBytes(txns), b) {
			t.Fatalf("%s: %s encodes differently", dir, name)
		}
	}
}
