package channeltest

import (
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/clock"
)

// putFull stages events in a new transaction and commits it, returning the
// first error. Flume's channels refuse a put for lack of space at different
// points (the file channel at Put, the memory channel at Commit), so the
// suite accepts either and ends the transaction either way.
func putFull(ch channel.Channel, events ...channel.Event) error {
	tx := ch.Begin()
	if err := tx.Put(events...); err != nil {
		_ = tx.Rollback() // may already be rolled back: ErrTxnDone is fine here
		return err
	}
	if err := tx.Commit(); err != nil {
		_ = tx.Rollback()
		return err
	}
	return nil
}

// limits: transactionCapacity, capacity and keep-alive.
func (s suite) limits(t *testing.T) {
	t.Run("a put past transactionCapacity fails with ErrTxnFull and stages none of that call", func(t *testing.T) {
		ch := s.open(t, Options{Capacity: 20, TransactionCapacity: 4})
		tx := ch.Begin()
		if err := tx.Put(evs(0, 3)...); err != nil {
			t.Fatalf("put 3 of 4: %v", err)
		}
		wantErr(t, "put 2 more", tx.Put(evs(3, 5)...), channel.ErrTxnFull)
		if err := tx.Put(ev(3)); err != nil {
			t.Fatalf("put the 4th: %v", err)
		}
		wantErr(t, "put a 5th", tx.Put(ev(4)), channel.ErrTxnFull)
		if err := tx.Commit(); err != nil {
			t.Fatalf("commit: %v", err)
		}
		wantErr(t, "put 5 in one call", putFull(ch, evs(10, 15)...), channel.ErrTxnFull)
		wantSeqs(t, "take", drain(t, ch, 4), span(0, 4))
	})

	t.Run("a take past transactionCapacity fails with ErrTxnFull and takes nothing", func(t *testing.T) {
		ch := s.open(t, Options{Capacity: 20, TransactionCapacity: 4})
		put(t, ch, evs(0, 4)...)
		put(t, ch, evs(4, 8)...)
		tx := ch.Begin()
		got, err := tx.Take(3)
		if err != nil {
			t.Fatalf("take 3: %v", err)
		}
		wantSeqs(t, "take 3", got, span(0, 3))
		_, err = tx.Take(2)
		wantErr(t, "take 2 more", err, channel.ErrTxnFull)
		got, err = tx.Take(1)
		if err != nil {
			t.Fatalf("take the 4th: %v", err)
		}
		wantSeqs(t, "take the 4th", got, span(3, 4))
		_, err = tx.Take(1)
		wantErr(t, "take a 5th", err, channel.ErrTxnFull)
		if err := tx.Commit(); err != nil {
			t.Fatalf("commit: %v", err)
		}
		tx = ch.Begin()
		_, err = tx.Take(5)
		wantErr(t, "take 5 in one call", err, channel.ErrTxnFull)
		if err := tx.Rollback(); err != nil {
			t.Fatalf("rollback: %v", err)
		}
		wantSeqs(t, "take the rest", drain(t, ch, 4), span(4, 8))
	})

	t.Run("a full channel refuses puts with ErrFull after keep-alive and takes them again once a take commits", func(t *testing.T) {
		const keepAlive = 100 * time.Millisecond
		clk := clock.NewFake()
		ch := s.open(t, Options{Capacity: 4, TransactionCapacity: 4, KeepAlive: keepAlive, Clock: clk})
		put(t, ch, evs(0, 3)...)
		// The put waits on the clock, fails no sooner than keep-alive, and
		// fails once it has passed.
		refused := func(what string, events ...channel.Event) {
			t.Helper()
			before := clk.Waiters()
			result := make(chan error, 1)
			go func() { result <- putFull(ch, events...) }()
			await.True(t, what+" to wait", func() bool { return clk.Waiters() > before || len(result) > 0 })
			if len(result) > 0 {
				t.Fatalf("%s: %v before keep-alive %s passed", what, <-result, keepAlive)
			}
			clk.Advance(keepAlive)
			wantErr(t, what, await.Recv(t, what+" to fail once keep-alive passed", result), channel.ErrFull)
		}
		refused("put past capacity", evs(3, 5)...) // 3 held + 2 > 4
		put(t, ch, ev(3))
		refused("put into a full channel", ev(4))
		wantSeqs(t, "take", take(t, ch, 1), span(0, 1))
		put(t, ch, ev(4))
		wantSeqs(t, "take the rest", take(t, ch, 4), span(1, 5))
	})

	t.Run("events taken but not committed still occupy capacity", func(t *testing.T) {
		ch := s.open(t, Options{Capacity: 2, TransactionCapacity: 2})
		put(t, ch, evs(0, 2)...)
		taker := ch.Begin()
		if _, err := taker.Take(2); err != nil {
			t.Fatalf("take: %v", err)
		}
		wantErr(t, "put while the take is open", putFull(ch, ev(2)), channel.ErrFull)
		if err := taker.Commit(); err != nil {
			t.Fatalf("commit take: %v", err)
		}
		put(t, ch, evs(2, 4)...)
		wantSeqs(t, "take", drain(t, ch, 2), span(2, 4))
	})

	t.Run("a put waiting for space succeeds as soon as a take commits", func(t *testing.T) {
		clk := clock.NewFake() // keep-alive never passes: only the take can let the put in
		ch := s.open(t, Options{Capacity: 2, TransactionCapacity: 2, KeepAlive: 10 * time.Second, Clock: clk})
		put(t, ch, evs(0, 2)...)
		result := make(chan error, 1)
		go func() { result <- putFull(ch, ev(2)) }()
		await.True(t, "the put to wait for space", func() bool { return clk.Waiters() > 0 || len(result) > 0 })
		if len(result) > 0 {
			t.Fatalf("put into a full channel returned %v before any take", <-result)
		}
		wantSeqs(t, "take", take(t, ch, 1), span(0, 1))
		if err := await.Recv(t, "the waiting put to finish after space was freed", result); err != nil {
			t.Fatalf("waiting put: %v", err)
		}
		wantSeqs(t, "take", take(t, ch, 2), span(1, 3))
	})

	t.Run("take on an empty channel returns no events and no error within keep-alive", func(t *testing.T) {
		const keepAlive = 50 * time.Millisecond
		clk := clock.NewFake()
		ch := s.open(t, Options{Capacity: 10, TransactionCapacity: 10, KeepAlive: keepAlive, Clock: clk})
		type result struct {
			tx  channel.Txn
			got []channel.Event
			err error
		}
		done := make(chan result, 1)
		go func() {
			tx := ch.Begin()
			got, err := tx.Take(5)
			done <- result{tx, got, err}
		}()
		// A channel that waits returns once keep-alive has passed on its
		// clock; one that does not wait has returned already.
		await.True(t, "the take to wait or answer", func() bool { return clk.Waiters() > 0 || len(done) > 0 })
		clk.Advance(keepAlive)
		r := await.Recv(t, "the empty take to return within keep-alive", done)
		if r.err != nil || len(r.got) != 0 {
			t.Fatalf("take from empty: got %d events, error %v", len(r.got), r.err)
		}
		tx := r.tx // the goroutine that took is done with it
		if err := tx.Commit(); err != nil {
			t.Fatalf("commit empty take: %v", err)
		}
	})

	t.Run("a full error says why", func(t *testing.T) {
		ch := s.open(t, Options{Capacity: 1, TransactionCapacity: 1})
		put(t, ch, ev(0))
		err := putFull(ch, ev(1))
		wantErr(t, "put", err, channel.ErrFull)
		if err.Error() == channel.ErrFull.Error() {
			t.Errorf("ErrFull is not wrapped with its reason: %q", err)
		}
	})
}
