// The file channel's corruption table. Each case starts from the same crashed
// channel: five put transactions of four events (ids 0–19, one log record
// each), the first four events taken and committed. The case damages the data
// log or the checkpoint, the channel opens again (it never refuses to start
// because of damage), and the test drains it: the case states exactly which
// events survive, and after the drain the channel is empty (Size 0).
//
// What survives follows from the invariants: a torn tail is a commit that
// never returned, so its events may go; damage elsewhere loses only the
// damaged record's events, never delivers them, and loses nothing else; a
// missing, foreign or older checkpoint makes events come back (duplicates),
// never go.
package channel_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/wal"
)

// damagedChannel is the closed channel a corruption case damages.
type damagedChannel struct {
	t      *testing.T
	opts   channel.FileOptions
	recs   []wal.Record // the five put records, in order
	before [2][]byte    // the checkpoint slots right after the first put
}

func span(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func newDamagedChannel(t *testing.T) *damagedChannel {
	d := &damagedChannel{t: t, opts: fileOptions(t.TempDir())}
	f := openFile(t, d.opts)
	body := bytes.Repeat([]byte("x"), 100) // records of ~500 bytes: two-byte frame lengths
	for txn := range 5 {
		var evs []channel.Event
		for i := range 4 {
			evs = append(evs, channel.Event{Headers: map[string]string{"id": strconv.Itoa(txn*4 + i)}, Body: body})
		}
		filePut(t, f, evs...)
		if txn == 0 {
			for i := range d.before {
				d.before[i] = d.readSlot(i)
			}
		}
	}
	if got := fileTake(t, f, 4); len(got) != 4 {
		t.Fatalf("took %d", len(got))
	}
	f.Crash() // no final checkpoint: the newest slot is the take's commit

	r, err := wal.OpenReader(d.opts.DataDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		rec, err := r.Next()
		if err != nil {
			break
		}
		rec.Payload = nil
		d.recs = append(d.recs, rec)
	}
	if len(d.recs) != 5 {
		t.Fatalf("%d records on disk, want 5", len(d.recs))
	}
	return d
}

func (d *damagedChannel) slotPath(i int) string {
	return filepath.Join(d.opts.CheckpointDir, "checkpoint-"+strconv.Itoa(i))
}

func (d *damagedChannel) readSlot(i int) []byte {
	b, err := os.ReadFile(d.slotPath(i))
	if err != nil {
		d.t.Fatal(err)
	}
	return b
}

// newestSlot is the slot with the highest generation.
func (d *damagedChannel) newestSlot() int {
	g0, err0 := channel.SlotGeneration(d.slotPath(0))
	g1, err1 := channel.SlotGeneration(d.slotPath(1))
	if err0 != nil || err1 != nil {
		d.t.Fatalf("slots: %v, %v", err0, err1)
	}
	if g1 > g0 {
		return 1
	}
	return 0
}

func (d *damagedChannel) segment(r wal.Record) string {
	return filepath.Join(d.opts.DataDir, r.Segment)
}

func (d *damagedChannel) mutate(path string, f func([]byte) []byte) {
	d.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// drain opens the channel and takes everything, returning the ids in order.
func (d *damagedChannel) drain() []int {
	f := openFile(d.t, d.opts)
	defer f.Close()
	var ids []int
	for {
		got := fileTake(d.t, f, 7)
		if len(got) == 0 {
			break
		}
		for _, e := range got {
			id, err := strconv.Atoi(e.Headers["id"])
			if err != nil || len(e.Body) != 100 {
				d.t.Fatalf("phantom or damaged event delivered: %+v", e)
			}
			ids = append(ids, id)
		}
	}
	if st := f.Stats(); st.Size != 0 {
		d.t.Errorf("size after the drain: %d, want 0", st.Size)
	}
	return ids
}

func TestFileCorruption(t *testing.T) {
	cases := []struct {
		name     string
		damage   func(d *damagedChannel)
		survives []int
	}{
		{
			"torn length: the last record is cut inside its frame length",
			func(d *damagedChannel) {
				last := d.recs[4]
				d.mutate(d.segment(last), func(b []byte) []byte { return b[:last.Offset+1] })
			},
			span(4, 16), // the torn transaction's commit never returned
		},
		{
			"torn payload: the last record is cut in its middle",
			func(d *damagedChannel) {
				last := d.recs[4]
				d.mutate(d.segment(last), func(b []byte) []byte { return b[:last.Offset+200] })
			},
			span(4, 16),
		},
		{
			"zero tail: 4 KiB of zeroes after the last record",
			func(d *damagedChannel) {
				d.mutate(d.segment(d.recs[4]), func(b []byte) []byte { return append(b, make([]byte, 4096)...) })
			},
			span(4, 20),
		},
		{
			"garbage tail: random bytes after the last record",
			func(d *damagedChannel) {
				junk := make([]byte, 1000)
				for i := range junk {
					junk[i] = byte(rand.IntN(256))
				}
				d.mutate(d.segment(d.recs[4]), func(b []byte) []byte { return append(b, junk...) })
			},
			span(4, 20),
		},
		{
			"bit flip mid-log: the third record's events are lost, nothing else",
			func(d *damagedChannel) {
				r := d.recs[2]
				d.mutate(d.segment(r), func(b []byte) []byte { b[r.Offset+100] ^= 0x10; return b })
			},
			append(span(4, 8), span(12, 20)...),
		},
		{
			"bit flip in the last record: it is a torn tail",
			func(d *damagedChannel) {
				r := d.recs[4]
				d.mutate(d.segment(r), func(b []byte) []byte { b[r.Offset+100] ^= 0x01; return b })
			},
			span(4, 16),
		},
		{
			"missing checkpoint: everything in the log comes back",
			func(d *damagedChannel) {
				os.Remove(d.slotPath(0))
				os.Remove(d.slotPath(1))
			},
			span(0, 20),
		},
		{
			"checkpoint from another data log: treated as missing",
			func(d *damagedChannel) {
				path := filepath.Join(d.opts.DataDir, "log-id")
				d.mutate(path, func(b []byte) []byte {
					b[len(b)-2] ^= 1 // a hex digit of the id: still a valid id, another log's
					if b[len(b)-2] > 'f' || (b[len(b)-2] > '9' && b[len(b)-2] < 'a') {
						b[len(b)-2] = '0'
					}
					return b
				})
			},
			span(0, 20),
		},
		{
			"checkpoint from an older generation: the takes since come back",
			func(d *damagedChannel) {
				for i := range d.before {
					if err := os.WriteFile(d.slotPath(i), d.before[i], 0o644); err != nil {
						d.t.Fatal(err)
					}
				}
			},
			span(0, 20),
		},
		{
			"torn checkpoint slot: the other slot holds the state before the last commit",
			func(d *damagedChannel) {
				n := d.newestSlot()
				d.mutate(d.slotPath(n), func(b []byte) []byte { return b[:len(b)/2] })
			},
			span(0, 20), // the torn write was the take's commit: it never returned
		},
		{
			"both checkpoint slots torn: as missing",
			func(d *damagedChannel) {
				for i := range 2 {
					d.mutate(d.slotPath(i), func(b []byte) []byte { b[20] ^= 0xff; return b })
				}
			},
			span(0, 20),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newDamagedChannel(t)
			c.damage(d)
			got := d.drain()
			if !slices.Equal(got, c.survives) {
				t.Fatalf("survivors %v, want %v", got, c.survives)
			}
		})
	}
}
