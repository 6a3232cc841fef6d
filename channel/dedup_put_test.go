// A put transaction that carries each event's upstream origin and sequence
// number (PutFrom) leaves out what the channel already committed, and the
// file channel keeps that knowledge exactly as durable as the events:
//
//   - a resent event is left out, the new ones of the same call are put;
//   - the table survives a clean close, a crash with records past the last
//     slot, and a put whose fsync failed never claims its numbers;
//   - restart's replay of records past the slot stays bounded without takes;
//   - the memory channel does the same for its process life.
package channel_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/await"
)

var upstream = channel.OriginID{0xab, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

func seqsOf(from, to int) []uint64 {
	var out []uint64
	for i := from; i < to; i++ {
		out = append(out, uint64(i))
	}
	return out
}

// putFrom puts events numbered seqs of origin in one transaction and returns
// how many were left out as committed already.
func putFrom(t testing.TB, ch channel.Channel, origin channel.OriginID, seqs []uint64, events []channel.Event) int {
	t.Helper()
	tx := ch.Begin()
	skipped, err := channel.PutFrom(tx, origin, seqs, events)
	if err != nil {
		tx.Rollback()
		t.Fatalf("put from: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit put from: %v", err)
	}
	return skipped
}

func TestDedupPut(t *testing.T) {
	channels := map[string]func(t *testing.T) channel.Channel{
		"file": func(t *testing.T) channel.Channel { return openFile(t, fileOptions(t.TempDir())) },
		"memory": func(t *testing.T) channel.Channel {
			return channel.NewMemory("m", channel.MemoryOptions{Capacity: 1000, TransactionCapacity: 100})
		},
	}
	for name, open := range channels {
		t.Run(name+": a resent event is left out and the new ones of the same batch are put", func(t *testing.T) {
			ch := open(t)
			defer ch.Close()
			if n := putFrom(t, ch, upstream, seqsOf(0, 10), idEvents(0, 10)); n != 0 {
				t.Fatalf("first put left out %d", n)
			}
			// The sender's batches differ after its restart: 5..14.
			if n := putFrom(t, ch, upstream, seqsOf(5, 15), idEvents(5, 15)); n != 5 {
				t.Fatalf("resend left out %d, want 5", n)
			}
			// The same numbers from another origin are other events.
			other := channel.OriginID{1}
			if n := putFrom(t, ch, other, seqsOf(0, 2), idEvents(100, 102)); n != 0 {
				t.Fatalf("another origin's events left out: %d", n)
			}
			want := append(span(0, 15), 100, 101)
			if got := drainIDs(t, ch); !slices.Equal(got, want) {
				t.Fatalf("delivered %v, want %v", got, want)
			}
		})
		t.Run(name+": a repeat inside one transaction is put once, and a rollback claims nothing", func(t *testing.T) {
			ch := open(t)
			defer ch.Close()
			tx := ch.Begin()
			n1, err1 := channel.PutFrom(tx, upstream, seqsOf(0, 3), idEvents(0, 3))
			n2, err2 := channel.PutFrom(tx, upstream, []uint64{2, 3, 3}, idEvents(2, 5))
			if err := errors.Join(err1, err2); err != nil || n1 != 0 || n2 != 2 {
				t.Fatalf("left out %d and %d (%v), want 0 and 2", n1, n2, err)
			}
			tx.Rollback()
			if n := putFrom(t, ch, upstream, seqsOf(0, 4), idEvents(0, 4)); n != 0 {
				t.Fatalf("after a rollback %d were left out", n)
			}
			if got := drainIDs(t, ch); !slices.Equal(got, span(0, 4)) {
				t.Fatalf("delivered %v", got)
			}
		})
	}

	t.Run("file: the table survives a clean close and a crash with records past the last slot", func(t *testing.T) {
		o := fileOptions(t.TempDir())
		ch := openFile(t, o)
		putFrom(t, ch, upstream, seqsOf(0, 10), idEvents(0, 10))
		fileTake(t, ch, 4) // a slot write with the table
		ch.Close()
		ch = openFile(t, o)
		putFrom(t, ch, upstream, seqsOf(10, 20), idEvents(10, 20)) // after the open's slot: replayed
		ch.Crash()
		ch = openFile(t, o)
		defer ch.Close()
		for q := range uint64(20) {
			if !ch.DedupCommitted(upstream, q) {
				t.Fatalf("number %d forgotten by the restart", q)
			}
		}
		if n := putFrom(t, ch, upstream, seqsOf(0, 25), idEvents(0, 25)); n != 20 {
			t.Fatalf("resend after restart left out %d, want 20", n)
		}
		if got := drainIDs(t, ch); !slices.Equal(got, span(4, 25)) {
			t.Fatalf("delivered %v, want 4..24", got)
		}
		if info := ch.DedupInfo(); len(info) != 1 || info[0].Ranges != "[0-24]" {
			t.Fatalf("table %+v", info)
		}
	})

	t.Run("file: a put whose fsync failed claims nothing, and every event is delivered once, also after a crash", func(t *testing.T) {
		ch, faulty, o := faultyChannel(t, true)
		defer func() { ch.Close() }()
		putFrom(t, ch, upstream, seqsOf(0, 5), idEvents(0, 5))
		faulty.FailSyncs(0, syscall.EIO)
		tx := ch.Begin()
		if _, err := channel.PutFrom(tx, upstream, seqsOf(5, 10), idEvents(5, 10)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); !errors.Is(err, syscall.EIO) {
			t.Fatalf("commit with a failing fsync: %v, want EIO", err)
		}
		faulty.Heal()
		for q := range uint64(10) {
			if want := q < 5; ch.DedupCommitted(upstream, q) != want {
				t.Fatalf("number %d committed: %v, want %v", q, !want, want)
			}
		}
		ch.Crash()
		ch = openFile(t, o)
		// The failed record may have reached the disk; restart then either
		// voided it (its numbers are not claimed) or delivers it (they
		// are). The resend fills in exactly what is missing.
		putFrom(t, ch, upstream, seqsOf(5, 10), idEvents(5, 10))
		if got := drainIDs(t, ch); !slices.Equal(got, span(0, 10)) {
			t.Fatalf("delivered %v, want 0..9 once each", got)
		}
	})

	t.Run("file: without takes the put loop has the table written every few hundred records", func(t *testing.T) {
		o := fileOptions(t.TempDir())
		ch := openFile(t, o)
		defer ch.Close()
		records := 2*channel.DedupReplayBound + 10
		for i := range records {
			putFrom(t, ch, upstream, []uint64{uint64(i)}, idEvents(i, i+1))
		}
		slots := []string{filepath.Join(o.CheckpointDir, "checkpoint-0"), filepath.Join(o.CheckpointDir, "checkpoint-1")}
		await.True(t, "a slot with the table through the bound", func() bool {
			for _, p := range slots {
				if n, through, err := channel.SlotDedup(p); err == nil && n == 1 && through > uint64(channel.DedupReplayBound) {
					return true
				}
			}
			return false
		})
	})
}

// A sender's take commit lost after the next hop committed the put: the
// sending file channel restarts with the same origin and hands out the same
// events with the same numbers, and the next hop leaves them out.
func TestDedupATakeCommitLostAfterTheNextHopCommitted(t *testing.T) {
	so := fileOptions(t.TempDir())
	sender := openFile(t, so)
	receiver := openFile(t, fileOptions(t.TempDir()))
	defer receiver.Close()
	filePut(t, sender, idEvents(0, 10)...)

	// forward takes the sender's events, puts them into the receiver with
	// their numbers, and commits the take when commit is set.
	forward := func(commit bool) (skipped int) {
		t.Helper()
		tx := sender.Begin()
		got, err := tx.Take(10)
		if err != nil || len(got) != 10 {
			t.Fatalf("take: %d events, %v", len(got), err)
		}
		skipped = putFrom(t, receiver, sender.Origin(), tx.(channel.Sequenced).Seqs(), got)
		if commit {
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		return skipped
	}
	origin := sender.Origin()
	if skipped := forward(false); skipped != 0 {
		t.Fatalf("first delivery left out %d", skipped)
	}
	// The next hop committed; the sender dies before its take commit.
	sender.Crash()
	sender = openFile(t, so)
	defer func() { sender.Close() }()
	if sender.Origin() != origin || sender.Stats().Size != 10 {
		t.Fatalf("after the crash: origin %s (was %s), %d events queued (want 10)", sender.Origin(), origin, sender.Stats().Size)
	}
	if skipped := forward(true); skipped != 10 {
		t.Fatalf("the redelivery left out %d of 10", skipped)
	}
	if got := drainIDs(t, receiver); !slices.Equal(got, span(0, 10)) {
		t.Fatalf("the next hop holds %v, want 0..9 once each", got)
	}
}

// The per-origin state of an upstream channel whose batches commit in order
// stays one range: a few dozen bytes in a slot, however long it sends, and
// out of order it is bounded by MaxRanges.
func TestDedupStateStaysSmall(t *testing.T) {
	o := channel.NewOrigins(channel.OriginsOptions{})
	now := time.Now()
	for b := range uint64(100_000) {
		o.Commit(upstream, 1_000_000_000+b*100, 1_000_000_000+(b+1)*100, now)
	}
	if info := o.Info(); len(info) != 1 || info[0].Bytes > 1024 || info[0].Ranges != "[1000000000-1009999999]" {
		t.Fatalf("in order: %+v, want one range in at most 1 KiB", info)
	}
	for b := range uint64(1000) { // every other batch missing: the worst order
		o.Commit(upstream, 2_000_000_000+b*200, 2_000_000_000+b*200+100, now)
	}
	if info := o.Info(); info[0].Bytes > 1024 || strings.Count(info[0].Ranges, "-") != channel.DefaultMaxRanges {
		t.Fatalf("out of order: %d bytes, ranges %s; want at most %d ranges in 1 KiB", info[0].Bytes, info[0].Ranges, channel.DefaultMaxRanges)
	}
}
