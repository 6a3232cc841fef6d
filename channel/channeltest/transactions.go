package channeltest

import (
	"fmt"
	"testing"

	"github.com/flumed/flumed/channel"
)

// transactions: what a taker sees of committed, uncommitted and rolled-back
// work, and which calls a transaction refuses.
func (s suite) transactions(t *testing.T) {
	t.Run("committed puts are taken in order across transactions", func(t *testing.T) {
		ch := s.open(t, small)
		put(t, ch, evs(0, 3)...)
		put(t, ch, evs(3, 4)...)
		put(t, ch, evs(4, 10)...)
		wantSeqs(t, "take 4", take(t, ch, 4), span(0, 4))
		wantSeqs(t, "take 1", take(t, ch, 1), span(4, 5))
		wantSeqs(t, "take the rest", drain(t, ch, 10), span(5, 10))
	})

	t.Run("take returns at most max events, oldest first", func(t *testing.T) {
		ch := s.open(t, small)
		put(t, ch, evs(0, 5)...)
		wantSeqs(t, "take 0", take(t, ch, 0), nil)
		wantSeqs(t, "take 2 of 5", take(t, ch, 2), span(0, 2))
		wantSeqs(t, "take 10 of 3", take(t, ch, 10), span(2, 5))
		wantSeqs(t, "take from empty", take(t, ch, 10), nil)
	})

	t.Run("uncommitted puts are invisible to takers", func(t *testing.T) {
		ch := s.open(t, small)
		put(t, ch, ev(0))
		producer := ch.Begin()
		if err := producer.Put(evs(1, 4)...); err != nil {
			t.Fatalf("put: %v", err)
		}
		wantSeqs(t, "take while the put is open", take(t, ch, 10), span(0, 1))
		if err := producer.Commit(); err != nil {
			t.Fatalf("commit: %v", err)
		}
		wantSeqs(t, "take after the commit", drain(t, ch, 10), span(1, 4))
	})

	t.Run("rolled back puts vanish", func(t *testing.T) {
		ch := s.open(t, small)
		put(t, ch, ev(0))
		tx := ch.Begin()
		if err := tx.Put(evs(1, 5)...); err != nil {
			t.Fatalf("put: %v", err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatalf("rollback: %v", err)
		}
		put(t, ch, ev(5))
		wantSeqs(t, "take", drain(t, ch, 10), []int{0, 5})
	})

	t.Run("a rolled back take returns its events to the head in order, ahead of newer events", func(t *testing.T) {
		ch := s.open(t, small)
		put(t, ch, evs(0, 5)...)
		tx := ch.Begin()
		got, err := tx.Take(3)
		if err != nil {
			t.Fatalf("take: %v", err)
		}
		wantSeqs(t, "taken", got, span(0, 3))
		put(t, ch, evs(5, 7)...) // newer events arrive while the take is open
		if err := tx.Rollback(); err != nil {
			t.Fatalf("rollback: %v", err)
		}
		wantSeqs(t, "take after rollback", drain(t, ch, 10), span(0, 7))
	})

	t.Run("rolled back takes of two transactions both return ahead of untaken events", func(t *testing.T) {
		ch := s.open(t, small)
		put(t, ch, evs(0, 6)...)
		first, second := ch.Begin(), ch.Begin()
		a, errA := first.Take(2)
		b, errB := second.Take(2)
		if errA != nil || errB != nil {
			t.Fatalf("take: %v, %v", errA, errB)
		}
		wantSeqs(t, "first", a, span(0, 2))
		wantSeqs(t, "second", b, span(2, 4))
		// The later take rolls back first, so plain head insertion and ordering
		// by age agree on the result.
		if err := second.Rollback(); err != nil {
			t.Fatalf("rollback second: %v", err)
		}
		if err := first.Rollback(); err != nil {
			t.Fatalf("rollback first: %v", err)
		}
		wantSeqs(t, "take after rollbacks", drain(t, ch, 10), span(0, 6))
	})

	t.Run("a committed take never comes back", func(t *testing.T) {
		ch := s.open(t, small)
		put(t, ch, evs(0, 4)...)
		wantSeqs(t, "take", take(t, ch, 2), span(0, 2))
		tx := ch.Begin()
		if _, err := tx.Take(1); err != nil {
			t.Fatalf("take: %v", err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatalf("rollback: %v", err)
		}
		wantSeqs(t, "rest", drain(t, ch, 10), span(2, 4))
	})

	t.Run("an empty transaction commits and rolls back cleanly", func(t *testing.T) {
		ch := s.open(t, small)
		if err := ch.Begin().Commit(); err != nil {
			t.Fatalf("commit: %v", err)
		}
		if err := ch.Begin().Rollback(); err != nil {
			t.Fatalf("rollback: %v", err)
		}
		tx := ch.Begin()
		if err := tx.Put(); err != nil {
			t.Fatalf("put of no events: %v", err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatalf("commit: %v", err)
		}
		wantSeqs(t, "take", take(t, ch, 10), nil)
	})

	t.Run("a transaction that puts then takes fails with ErrMixed and keeps its puts", func(t *testing.T) {
		ch := s.open(t, small)
		put(t, ch, evs(0, 2)...)
		tx := ch.Begin()
		if err := tx.Put(ev(2)); err != nil {
			t.Fatalf("put: %v", err)
		}
		got, err := tx.Take(1)
		wantErr(t, "take after put", err, channel.ErrMixed)
		if len(got) != 0 {
			t.Fatalf("take after put returned %d events", len(got))
		}
		if err := tx.Commit(); err != nil {
			t.Fatalf("commit: %v", err)
		}
		wantSeqs(t, "take", drain(t, ch, 10), span(0, 3))
	})

	t.Run("a transaction that takes then puts fails with ErrMixed and keeps its takes", func(t *testing.T) {
		ch := s.open(t, small)
		put(t, ch, evs(0, 3)...)
		tx := ch.Begin()
		if _, err := tx.Take(1); err != nil {
			t.Fatalf("take: %v", err)
		}
		wantErr(t, "put after take", tx.Put(ev(9)), channel.ErrMixed)
		if err := tx.Commit(); err != nil {
			t.Fatalf("commit: %v", err)
		}
		wantSeqs(t, "take", drain(t, ch, 10), span(1, 3))
	})

	for _, end := range []string{"Commit", "Rollback"} {
		t.Run("every call after "+end+" fails with ErrTxnDone", func(t *testing.T) {
			ch := s.open(t, small)
			put(t, ch, evs(0, 2)...)
			for _, kind := range []string{"put", "take"} {
				tx := ch.Begin()
				var err error
				if kind == "put" {
					err = tx.Put(ev(5))
				} else {
					_, err = tx.Take(1)
				}
				if err != nil {
					t.Fatalf("%s: %v", kind, err)
				}
				if end == "Commit" {
					err = tx.Commit()
				} else {
					err = tx.Rollback()
				}
				if err != nil {
					t.Fatalf("%s of %s: %v", end, kind, err)
				}
				wantErr(t, kind+": Put", tx.Put(ev(6)), channel.ErrTxnDone)
				_, err = tx.Take(1)
				wantErr(t, kind+": Take", err, channel.ErrTxnDone)
				wantErr(t, kind+": Commit", tx.Commit(), channel.ErrTxnDone)
				wantErr(t, kind+": Rollback", tx.Rollback(), channel.ErrTxnDone)
			}
			want := []int{1, 5} // Commit: event 0 taken, event 5 added
			if end == "Rollback" {
				want = []int{0, 1}
			}
			wantSeqs(t, "what is left", drain(t, ch, 10), want)
		})
	}

	t.Run("CommitAll commits several open takes, and each is finished after it", func(t *testing.T) {
		ch := s.open(t, small)
		put(t, ch, evs(0, 8)...)
		txns := OpenTakes(t, ch, 3, 2) // events 0-5
		for i, err := range channel.CommitAll(ch, txns) {
			if err != nil {
				t.Fatalf("CommitAll: transaction %d: %v", i, err)
			}
		}
		for i, tx := range txns {
			wantErr(t, fmt.Sprintf("transaction %d: Commit after CommitAll", i), tx.Commit(), channel.ErrTxnDone)
		}
		if size := ch.Stats().Size; size != 2 {
			t.Errorf("size after CommitAll: %d, want 2", size)
		}
		wantSeqs(t, "what is left", drain(t, ch, 10), span(6, 8))
	})

	t.Run("CommitAll reports a finished transaction and commits the others", func(t *testing.T) {
		ch := s.open(t, small)
		put(t, ch, evs(0, 6)...)
		txns := OpenTakes(t, ch, 3, 2)
		if err := txns[1].Rollback(); err != nil { // events 2-3 back at the head
			t.Fatal(err)
		}
		errs := channel.CommitAll(ch, txns)
		if errs[0] != nil || errs[2] != nil {
			t.Fatalf("CommitAll: %v", errs)
		}
		wantErr(t, "CommitAll of a rolled back transaction", errs[1], channel.ErrTxnDone)
		wantSeqs(t, "what is left", drain(t, ch, 10), span(2, 4))
	})
}

// OpenTakes opens n take transactions on ch, each holding batch events
// (it fails the test if fewer are there), for a test of CommitAll.
func OpenTakes(t *testing.T, ch channel.Channel, n, batch int) []channel.Txn {
	t.Helper()
	txns := make([]channel.Txn, n)
	for i := range txns {
		txns[i] = ch.Begin()
		if got, err := txns[i].Take(batch); err != nil || len(got) != batch {
			t.Fatalf("take %d: %d events, %v", i, len(got), err)
		}
	}
	return txns
}
