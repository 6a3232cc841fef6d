package channeltest

import (
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/clock"
)

// counts are the Flume counters a case checks, in FLUME.md §5's terms.
type counts struct {
	size, putAttempts, putSuccesses, takeAttempts, takeSuccesses int64
}

func wantCounts(t *testing.T, when string, ch channel.Channel, want counts) {
	t.Helper()
	st := ch.Stats()
	got := counts{st.Size, st.PutAttempts, st.PutSuccesses, st.TakeAttempts, st.TakeSuccesses}
	if got != want {
		t.Fatalf("%s: got %+v, want %+v", when, got, want)
	}
}

// stats: Flume's channel counters. Attempts count per event offered or asked
// for, as Flume counts its one-event put() and take() calls: a Put of n events
// is n attempts; a Take that returns k of max events is k attempts, plus one
// when k < max, for the empty take() that ends a Flume sink's batch loop (so
// an empty Take is one attempt). Successes count at commit. Size counts events
// committed by a put and not yet by a take: events in an open take still count.
func (s suite) stats(t *testing.T) {
	t.Run("a new channel reports its capacity, a start time and zero counters", func(t *testing.T) {
		ch := s.open(t, Options{Capacity: 42, TransactionCapacity: 7})
		st := ch.Stats()
		if st.Type == "" || st.Capacity != 42 || st.StartTime.IsZero() || !st.StopTime.IsZero() {
			t.Fatalf("stats of a new channel: %+v", st)
		}
		wantCounts(t, "new", ch, counts{})
		if ch.Name() == "" {
			t.Error("Name is empty")
		}
	})

	t.Run("counters follow Flume: attempts on every call, successes at commit", func(t *testing.T) {
		ch := s.open(t, small)
		tx := ch.Begin()
		if err := tx.Put(evs(0, 3)...); err != nil {
			t.Fatal(err)
		}
		wantCounts(t, "3 puts staged", ch, counts{putAttempts: 3})
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		wantCounts(t, "3 puts committed", ch, counts{size: 3, putAttempts: 3, putSuccesses: 3})

		tx = ch.Begin()
		if err := tx.Put(evs(3, 5)...); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		wantCounts(t, "2 puts rolled back", ch, counts{size: 3, putAttempts: 5, putSuccesses: 3})

		tx = ch.Begin()
		if _, err := tx.Take(2); err != nil {
			t.Fatal(err)
		}
		wantCounts(t, "2 of 3 taken", ch, counts{size: 3, putAttempts: 5, putSuccesses: 3, takeAttempts: 2})
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		wantCounts(t, "take rolled back", ch, counts{size: 3, putAttempts: 5, putSuccesses: 3, takeAttempts: 2})

		if got := take(t, ch, 5); len(got) != 3 {
			t.Fatalf("took %d events, want 3", len(got))
		}
		wantCounts(t, "3 of 5 taken and committed", ch, counts{putAttempts: 5, putSuccesses: 3, takeAttempts: 6, takeSuccesses: 3})

		if got := take(t, ch, 4); len(got) != 0 {
			t.Fatalf("took %d events from an empty channel", len(got))
		}
		wantCounts(t, "empty take", ch, counts{putAttempts: 5, putSuccesses: 3, takeAttempts: 7, takeSuccesses: 3})
	})

	t.Run("Flume's metrics render the counters as strings", func(t *testing.T) {
		ch := s.open(t, Options{Capacity: 8, TransactionCapacity: 4})
		put(t, ch, evs(0, 2)...)
		m := ch.Stats().FlumeMetrics()
		want := map[string]string{
			"Type": "CHANNEL", "ChannelSize": "2", "ChannelCapacity": "8", "ChannelFillPercentage": "25.0",
			"EventPutAttemptCount": "2", "EventPutSuccessCount": "2",
			"EventTakeAttemptCount": "0", "EventTakeSuccessCount": "0", "StopTime": "0",
		}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s = %q, want %q", k, m[k], v)
			}
		}
		if m["StartTime"] == "0" || m["StartTime"] == "" {
			t.Errorf("StartTime = %q, want the open time", m["StartTime"])
		}
	})
	t.Run("OldestAge is how long the oldest event held has waited, events in an open take included", func(t *testing.T) {
		// The channel's clock stamps puts and reads the age: a fake one makes
		// the durations exact (the file channel keeps milliseconds).
		clk := clock.NewFake()
		ch := s.open(t, Options{Capacity: 100, TransactionCapacity: 10, Clock: clk})
		wantAge := func(when string, want time.Duration) {
			t.Helper()
			if got := ch.Stats().OldestAge; got != want {
				t.Fatalf("%s: OldestAge %v, want %v", when, got, want)
			}
		}
		wantAge("empty", 0)
		put(t, ch, evs(0, 2)...)
		clk.Advance(5 * time.Second)
		put(t, ch, ev(2))
		clk.Advance(2 * time.Second)
		wantAge("events 0 and 1 put 7s ago, event 2 2s ago", 7*time.Second)

		tx := ch.Begin()
		if got, err := tx.Take(2); err != nil || len(got) != 2 {
			t.Fatalf("take: %d events, %v", len(got), err)
		}
		wantAge("events 0 and 1 taken, not committed", 7*time.Second)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		wantAge("events 0 and 1 gone", 2*time.Second)

		tx = ch.Begin()
		if got, err := tx.Take(1); err != nil || len(got) != 1 {
			t.Fatalf("take: %d events, %v", len(got), err)
		}
		clk.Advance(time.Second)
		wantAge("event 2 in an open take", 3*time.Second)
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		wantAge("event 2 rolled back to the head", 3*time.Second)
		put(t, ch, ev(3))
		clk.Advance(time.Second)
		wantAge("event 2 still the oldest", 4*time.Second)
		take(t, ch, 1)
		wantAge("event 3 put 1s ago", time.Second)
		take(t, ch, 1)
		wantAge("drained", 0)
	})
}
