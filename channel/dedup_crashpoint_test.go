// The dedup state is as durable as the events, whatever step the disk fails
// at: a sweep arms the fault at every sync, and at every few bytes written,
// of a scenario of numbered puts and takes on a file channel; at the first
// failure the process "dies" (Crash: what was written stays, as the page
// cache keeps it), the channel reopens on the disk as it is, the upstream
// sender resends every number, and the channel is drained. Every event must
// then have been delivered exactly once, counting the takes whose commit
// returned: a number the table claims without its event would be a loss, an
// event put twice a duplicate. The one exception is not dedup's: the events
// of a take whose commit failed at the checkpoint's sync may be gone, since
// the slot's bytes were written and a crash right after keeps them (the file
// channel's take commit; reported, not changed here). They must never come
// twice.
package channel_test

import (
	"slices"
	"strconv"
	"syscall"
	"testing"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/fsutil"
)

const sweepBatches, sweepBatch = 6, 10

// dedupScenario puts sweepBatches numbered batches from upstream, taking and
// committing 7 events after every second one, and stops at the first error.
// It returns the events delivered by takes whose commit returned, and those
// of a take whose commit failed.
func dedupScenario(ch *channel.File) (delivered, maybe []int) {
	for b := range sweepBatches {
		lo := b * sweepBatch
		tx := ch.Begin()
		if _, err := channel.PutFrom(tx, upstream, seqsOf(lo, lo+sweepBatch), idEvents(lo, lo+sweepBatch)); err != nil {
			tx.Rollback()
			return delivered, maybe
		}
		if tx.Commit() != nil {
			return delivered, maybe
		}
		if b%2 == 1 {
			tx := ch.Begin()
			got, err := tx.Take(7)
			if err != nil {
				tx.Rollback()
				return delivered, maybe
			}
			if tx.Commit() != nil {
				return delivered, ids(got)
			}
			delivered = append(delivered, ids(got)...)
		}
	}
	return delivered, maybe
}

// resendAndDrain reopens the channel in o on the disk as it is, resends
// every number and returns what it delivers.
func resendAndDrain(t *testing.T, o channel.FileOptions) []int {
	t.Helper()
	o.FS = nil
	ch := openFile(t, o)
	defer ch.Close()
	for b := range sweepBatches {
		lo := b * sweepBatch
		putFrom(t, ch, upstream, seqsOf(lo, lo+sweepBatch), idEvents(lo, lo+sweepBatch))
	}
	return drainIDs(t, ch)
}

func TestDedupSurvivesACrashAtAnyStep(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the sweep opens a channel per step")
	}
	// A fault-free run: how many syncs and bytes the scenario makes.
	var syncs int
	var written int64
	{
		o := fileOptions(t.TempDir())
		faulty := fsutil.NewFaulty(nil)
		o.FS = faulty
		ch := openFile(t, o)
		s0, w0 := faulty.Syncs(), faulty.Written()
		if got, _ := dedupScenario(ch); len(got) != 3*7 {
			t.Fatalf("fault-free scenario delivered %d", len(got))
		}
		syncs, written = faulty.Syncs()-s0, faulty.Written()-w0
		ch.Close()
	}
	check := func(t *testing.T, what string, arm func(*fsutil.Faulty)) {
		o := fileOptions(t.TempDir())
		faulty := fsutil.NewFaulty(nil)
		o.FS = faulty
		ch := openFile(t, o)
		arm(faulty)
		delivered, maybe := dedupScenario(ch)
		ch.Crash()
		delivered = append(delivered, resendAndDrain(t, o)...)
		slices.Sort(delivered)
		times := map[int]int{}
		for _, id := range delivered {
			times[id]++
		}
		for id := range sweepBatches * sweepBatch {
			if times[id] > 1 || times[id] == 0 && !slices.Contains(maybe, id) {
				t.Fatalf("%s: event %d delivered %d times; delivered %v, want 0..%d exactly once each",
					what, id, times[id], delivered, sweepBatches*sweepBatch-1)
			}
		}
	}
	steps := 0
	for k := 0; k <= syncs; k++ {
		check(t, "syncs failing after "+strconv.Itoa(k), func(f *fsutil.Faulty) { f.FailSyncs(k, syscall.EIO) })
		steps++
	}
	stride := max(written/150, 1)
	for n := int64(0); n <= written; n += stride {
		check(t, "writes failing after "+strconv.FormatInt(n, 10)+" bytes", func(f *fsutil.Faulty) { f.FailWrites(n, syscall.EIO) })
		steps++
	}
	t.Logf("%d crash points: %d syncs, %d bytes written in the fault-free run", steps, syncs, written)
}
