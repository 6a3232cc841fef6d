// Package channeltest is the conformance suite every flumed channel passes:
// Flume's transaction semantics (FIFO, invisible uncommitted puts, rollback to
// the head in order, transactionCapacity, capacity with keep-alive, put-or-take
// transactions), byte-exact events, exactly-once delivery under concurrent
// producers and consumers, Flume's counters, Close, and, for durable channels,
// what survives a close and reopen.
//
// A channel's own test calls Run with a Factory. The suite only uses the
// channel.Channel interface, so it never depends on how a channel stores events;
// it must never import a concrete channel.
package channeltest

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/clock"
)

// Options are the limits a case asks its channel for. A factory maps them onto
// its channel's own options and leaves everything else at values that do not
// interfere (no byte capacity, no disk floor).
type Options struct {
	Capacity            int
	TransactionCapacity int
	// KeepAlive is Flume's keep-alive: how long a put waits for space (at Put
	// or at Commit) and, for channels that wait, how long an empty Take waits.
	// Zero means never wait.
	KeepAlive time.Duration
	// Clock, when not nil, is the clock the channel's keep-alive waits use.
	// A case that gives a fake one learns when a call waits (the fake's
	// waiters) and decides when keep-alive passes, instead of sleeping.
	// Nil means the wall clock.
	Clock clock.Clock
}

// Factory makes the channels the suite tests.
type Factory struct {
	// New returns a new, empty, open channel with the given options, on fresh
	// storage (e.g. under t.TempDir()). Required. The suite closes it.
	New func(t *testing.T, opts Options) channel.Channel
	// Reopen closes ch and opens the same channel again on the same storage with
	// the same options, as a restart would, and returns the new handle.
	// Transactions still open on ch are abandoned, as in a crash of their
	// goroutines. Nil for channels that keep nothing across Close (memory);
	// the durability cases are skipped then.
	Reopen func(t *testing.T, ch channel.Channel) channel.Channel
}

// Run runs every conformance case as a subtest of t.
func Run(t *testing.T, f Factory) {
	if f.New == nil {
		t.Fatal("channeltest: Factory.New is nil")
	}
	s := suite{f: f}
	t.Run("transactions", s.transactions)
	t.Run("limits", s.limits)
	t.Run("payloads", s.payloads)
	t.Run("concurrency", s.concurrency)
	t.Run("stats", s.stats)
	t.Run("close", s.close)
	t.Run("durability", func(t *testing.T) {
		if f.Reopen == nil {
			t.Skip("the channel keeps nothing across Close (Factory.Reopen is nil)")
		}
		s.durability(t)
	})
}

type suite struct{ f Factory }

// small are the options most cases use: never wait, so an empty Take or a
// full channel answers at once.
var small = Options{Capacity: 100, TransactionCapacity: 10}

// open makes a channel and closes it when the test ends.
func (s suite) open(t *testing.T, o Options) channel.Channel {
	t.Helper()
	ch := s.f.New(t, o)
	if ch == nil {
		t.Fatal("Factory.New returned nil")
	}
	t.Cleanup(func() { _ = ch.Close() })
	return ch
}

// reopen restarts a durable channel and closes the new handle when the test ends.
func (s suite) reopen(t *testing.T, ch channel.Channel) channel.Channel {
	t.Helper()
	ch = s.f.Reopen(t, ch)
	if ch == nil {
		t.Fatal("Factory.Reopen returned nil")
	}
	t.Cleanup(func() { _ = ch.Close() })
	return ch
}

// ev is event number i: its "seq" header names it; the body repeats it.
func ev(i int) channel.Event {
	return channel.Event{
		Headers: map[string]string{"seq": strconv.Itoa(i)},
		Body:    fmt.Appendf(nil, "event %d", i),
	}
}

// evs returns events from..to-1.
func evs(from, to int) []channel.Event {
	out := make([]channel.Event, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, ev(i))
	}
	return out
}

// seqs returns the "seq" header of each event (-1 where it is missing or bad).
func seqs(events []channel.Event) []int {
	out := make([]int, len(events))
	for i, e := range events {
		n, err := strconv.Atoi(e.Headers["seq"])
		if err != nil {
			n = -1
		}
		out[i] = n
	}
	return out
}

// span returns from..to-1, to compare with seqs.
func span(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// wantSeqs fails the test unless events carry exactly the sequence numbers want.
func wantSeqs(t *testing.T, what string, events []channel.Event, want []int) {
	t.Helper()
	if got := seqs(events); !sameInts(got, want) {
		t.Fatalf("%s: got events %v, want %v", what, got, want)
	}
}

// put stages events in one transaction and commits it.
func put(t *testing.T, ch channel.Channel, events ...channel.Event) {
	t.Helper()
	tx := ch.Begin()
	if err := tx.Put(events...); err != nil {
		_ = tx.Rollback()
		t.Fatalf("put %d events: %v", len(events), err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit %d events: %v", len(events), err)
	}
}

// take takes up to max events in one transaction and commits it.
func take(t *testing.T, ch channel.Channel, max int) []channel.Event {
	t.Helper()
	tx := ch.Begin()
	got, err := tx.Take(max)
	if err != nil {
		_ = tx.Rollback()
		t.Fatalf("take %d: %v", max, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit take of %d: %v", len(got), err)
	}
	return got
}

// drain takes and commits batches of batch events until a Take comes back empty.
func drain(t *testing.T, ch channel.Channel, batch int) []channel.Event {
	t.Helper()
	var all []channel.Event
	for {
		got := take(t, ch, batch)
		if len(got) == 0 {
			return all
		}
		all = append(all, got...)
	}
}

// wantErr fails the test unless err wraps target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// sameEvent compares events byte for byte, taking a nil and an empty headers
// map (and a nil and an empty body) as equal: a channel need not tell them apart.
func sameEvent(a, b channel.Event) bool {
	if len(a.Headers) != len(b.Headers) || string(a.Body) != string(b.Body) {
		return false
	}
	for k, v := range a.Headers {
		if w, ok := b.Headers[k]; !ok || w != v {
			return false
		}
	}
	return true
}
