package channeltest

import (
	"errors"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/clock"
)

// close: what Close does to new and open transactions and to waiters.
func (s suite) close(t *testing.T) {
	t.Run("after Close every operation fails with ErrClosed and Close is idempotent", func(t *testing.T) {
		ch := s.open(t, small)
		put(t, ch, evs(0, 3)...)
		putter, taker := ch.Begin(), ch.Begin()
		if err := putter.Put(ev(3)); err != nil {
			t.Fatal(err)
		}
		if _, err := taker.Take(1); err != nil {
			t.Fatal(err)
		}
		if err := ch.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		wantErr(t, "open put: Put", putter.Put(ev(4)), channel.ErrClosed)
		wantErr(t, "open put: Commit", putter.Commit(), channel.ErrClosed)
		_, err := taker.Take(1)
		wantErr(t, "open take: Take", err, channel.ErrClosed)
		wantErr(t, "open take: Rollback", taker.Rollback(), channel.ErrClosed)

		tx := ch.Begin()
		wantErr(t, "new: Put", tx.Put(ev(5)), channel.ErrClosed)
		_, err = tx.Take(1)
		wantErr(t, "new: Take", err, channel.ErrClosed)
		wantErr(t, "new: Commit", tx.Commit(), channel.ErrClosed)
		wantErr(t, "new: Rollback", tx.Rollback(), channel.ErrClosed)

		if err := ch.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
		if st := ch.Stats(); st.StopTime.IsZero() || st.StopTime.Before(st.StartTime) {
			t.Errorf("stats after close: start %v, stop %v", st.StartTime, st.StopTime)
		}
	})

	t.Run("Close wakes a take waiting on an empty channel", func(t *testing.T) {
		clk := clock.NewFake() // keep-alive never passes: only Close can end the wait
		ch := s.open(t, Options{Capacity: 4, TransactionCapacity: 4, KeepAlive: 30 * time.Second, Clock: clk})
		result := make(chan error, 1)
		go func() {
			tx := ch.Begin()
			got, err := tx.Take(1)
			if err == nil && len(got) != 0 {
				err = errors.New("took an event from an empty channel")
			}
			_ = tx.Rollback()
			result <- err
		}()
		// A channel whose takes wait does so on the clock; one whose takes
		// do not (Flume's file channel) has answered already.
		await.True(t, "the take to wait or answer", func() bool { return clk.Waiters() > 0 || len(result) > 0 })
		if err := ch.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		waitClosedOrNil(t, result)
	})

	t.Run("Close wakes a put waiting for space", func(t *testing.T) {
		clk := clock.NewFake() // keep-alive never passes: only Close can end the wait
		ch := s.open(t, Options{Capacity: 1, TransactionCapacity: 1, KeepAlive: 30 * time.Second, Clock: clk})
		put(t, ch, ev(0))
		result := make(chan error, 1)
		go func() { result <- putFull(ch, ev(1)) }()
		await.True(t, "the put to wait for space", func() bool { return clk.Waiters() > 0 || len(result) > 0 })
		if err := ch.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		err := await.Recv(t, "the waiting put to return after Close", result)
		if !errors.Is(err, channel.ErrClosed) && !errors.Is(err, channel.ErrFull) {
			t.Fatalf("waiting put after close: %v, want ErrClosed or ErrFull", err)
		}
	})
}

// waitClosedOrNil waits for a goroutine that must end promptly with nil or ErrClosed.
func waitClosedOrNil(t *testing.T, result <-chan error) {
	t.Helper()
	if err := await.Recv(t, "the waiting call to return after Close", result); err != nil && !errors.Is(err, channel.ErrClosed) {
		t.Fatalf("waiting call after close: %v", err)
	}
}

// durability: what a close and reopen keeps, for channels with a Reopen.
func (s suite) durability(t *testing.T) {
	t.Run("committed events survive reopen, in order, and count in Size", func(t *testing.T) {
		ch := s.open(t, small)
		put(t, ch, evs(0, 3)...)
		put(t, ch, evs(3, 5)...)
		ch = s.reopen(t, ch)
		if size := ch.Stats().Size; size != 5 {
			t.Errorf("size after reopen: %d, want 5", size)
		}
		wantSeqs(t, "after reopen", drain(t, ch, 10), span(0, 5))
	})

	t.Run("committed takes do not come back after reopen", func(t *testing.T) {
		ch := s.open(t, small)
		put(t, ch, evs(0, 6)...)
		wantSeqs(t, "take", take(t, ch, 4), span(0, 4))
		ch = s.reopen(t, ch)
		wantSeqs(t, "after reopen", drain(t, ch, 10), span(4, 6))
	})

	t.Run("uncommitted puts are gone after reopen", func(t *testing.T) {
		ch := s.open(t, small)
		put(t, ch, evs(0, 2)...)
		tx := ch.Begin()
		if err := tx.Put(evs(2, 5)...); err != nil {
			t.Fatal(err)
		}
		ch = s.reopen(t, ch)
		wantSeqs(t, "after reopen", drain(t, ch, 10), span(0, 2))
	})

	t.Run("takes committed by CommitAll do not come back after reopen", func(t *testing.T) {
		ch := s.open(t, small)
		put(t, ch, evs(0, 9)...)
		for i, err := range channel.CommitAll(ch, OpenTakes(t, ch, 3, 2)) {
			if err != nil {
				t.Fatalf("CommitAll: transaction %d: %v", i, err)
			}
		}
		ch = s.reopen(t, ch)
		wantSeqs(t, "after reopen", drain(t, ch, 10), span(6, 9))
	})

	t.Run("takes not committed before reopen come back, in order", func(t *testing.T) {
		ch := s.open(t, small)
		put(t, ch, evs(0, 5)...)
		wantSeqs(t, "take", take(t, ch, 1), span(0, 1))
		tx := ch.Begin()
		if got, err := tx.Take(3); err != nil || len(got) != 3 {
			t.Fatalf("take: %d events, %v", len(got), err)
		}
		ch = s.reopen(t, ch)
		wantSeqs(t, "after reopen", drain(t, ch, 10), span(1, 5))
	})

	t.Run("rolled back takes survive reopen in order", func(t *testing.T) {
		ch := s.open(t, small)
		put(t, ch, evs(0, 5)...)
		tx := ch.Begin()
		if _, err := tx.Take(2); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		wantSeqs(t, "take", take(t, ch, 1), span(0, 1))
		put(t, ch, ev(5))
		ch = s.reopen(t, ch)
		wantSeqs(t, "after reopen", drain(t, ch, 10), span(1, 6))
	})

	t.Run("a reopened channel keeps taking puts and keeps order across restarts", func(t *testing.T) {
		ch := s.open(t, small)
		put(t, ch, evs(0, 3)...)
		ch = s.reopen(t, ch)
		put(t, ch, evs(3, 6)...)
		wantSeqs(t, "take", take(t, ch, 2), span(0, 2))
		ch = s.reopen(t, ch)
		wantSeqs(t, "after two reopens", drain(t, ch, 10), span(2, 6))
	})

	t.Run("payloads survive reopen byte for byte", func(t *testing.T) {
		cases := payloadCases()
		ch := s.open(t, Options{Capacity: 100, TransactionCapacity: len(cases)})
		for _, c := range cases {
			put(t, ch, c.event)
		}
		ch = s.reopen(t, ch)
		got := take(t, ch, len(cases))
		if len(got) != len(cases) {
			t.Fatalf("took %d events after reopen, want %d", len(got), len(cases))
		}
		for i, c := range cases {
			wantSame(t, c.name, got[i], c.event)
		}
	})
}
