package channel_test

// A file channel's OldestAge comes from the commit time its put loop writes
// into every record (FILE_FORMAT.md), so a restart with a backlog knows it
// from the first queued record's header, which open reads anyway. The
// conformance suite checks it while the channel runs; these cases check it
// across a clean close and a crash, and the documented bound after a taker
// leaves a record whose successor it has not read yet.

import (
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/clock"
)

func TestFileOldestAgeAfterRestart(t *testing.T) {
	for _, stop := range []struct {
		name string
		stop func(*channel.File) error
	}{
		{"after a clean close", (*channel.File).Close},
		{"after a crash", func(f *channel.File) error { f.Crash(); return nil }},
	} {
		t.Run("the oldest queued event's put time survives a restart "+stop.name, func(t *testing.T) {
			o := fileOptions(t.TempDir())
			f := openFile(t, o)
			clk := clock.NewFake()
			f.SetClock(clk)
			filePut(t, f, fileEv("a"), fileEv("b"))
			clk.Advance(4 * time.Second)
			filePut(t, f, fileEv("c"))
			if err := stop.stop(f); err != nil {
				t.Fatal(err)
			}

			g := openFile(t, o)
			defer g.Close()
			later := clock.NewFake()
			later.Advance(10 * time.Second) // the restart came 10s after a and b were put
			g.SetClock(later)
			age := func() time.Duration { return g.Stats().OldestAge }
			if got := age(); got != 10*time.Second {
				t.Fatalf("after restart: OldestAge %v, want 10s (a and b's record, read at open)", got)
			}
			if got := fileTake(t, g, 1); len(got) != 1 || string(got[0].Body) != "a" {
				t.Fatalf("took %v, want a", got)
			}
			if got := age(); got != 10*time.Second {
				t.Fatalf("after taking a: OldestAge %v, want 10s (b, same record)", got)
			}
			fileTake(t, g, 1)
			// The taker left a and b's record and has not read c's (it is not
			// in the tail cache after a restart): the age may stand on the
			// record before, an over-statement bounded by the time between
			// the two puts.
			if got := age(); got < 6*time.Second || got > 10*time.Second {
				t.Fatalf("after taking b: OldestAge %v, want 6s (c) or at most 10s (the bound)", got)
			}
			tx := g.Begin()
			if got, err := tx.Take(1); err != nil || len(got) != 1 {
				t.Fatalf("take c: %v, %v", got, err)
			}
			if got := age(); got != 6*time.Second {
				t.Fatalf("c in an open take: OldestAge %v, want 6s", got)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if got := age(); got != 0 {
				t.Fatalf("drained: OldestAge %v, want 0", got)
			}
		})
	}
}
