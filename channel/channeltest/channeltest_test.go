// The suite must hold for every correct channel, not only the memory channel:
// here it runs, durability cases included, against a small reference channel
// that behaves like Flume's file channel where channels may differ (capacity
// permits taken at Put, so ErrFull comes from Put; Take never waits; Reopen
// keeps committed events and forgets open transactions). It is simple rather
// than fast: one mutex, and a put waiting for capacity wakes on any release
// of it or on keep-alive, timed by the case's clock.
package channeltest_test

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/channel/channeltest"
	"github.com/flumed/flumed/internal/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestReferenceChannelPassesTheSuite(t *testing.T) {
	channeltest.Run(t, channeltest.Factory{
		New: func(t *testing.T, o channeltest.Options) channel.Channel {
			return openRef(&refStore{events: map[int]channel.Event{}, putAt: map[int]time.Time{}}, o)
		},
		Reopen: func(t *testing.T, ch channel.Channel) channel.Channel {
			r := ch.(*refChannel)
			_ = r.Close()
			return openRef(r.store, r.opts)
		},
	})
}

// refStore is what survives a reopen: committed events not yet taken for good.
type refStore struct {
	mu     sync.Mutex
	next   int
	events map[int]channel.Event
	putAt  map[int]time.Time // when each of events was put
}

type refChannel struct {
	store *refStore // guards everything below with store.mu
	opts  channeltest.Options
	queue []int         // takeable, head first
	held  int           // permits: committed, staged puts and open takes
	freed chan struct{} // closed when permits are released or the channel closes; nil until a put waits
	start time.Time
	stop  time.Time

	putAttempts, putOK, takeAttempts, takeOK int64
}

func openRef(s *refStore, o channeltest.Options) *refChannel {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &refChannel{store: s, opts: o, start: time.Now()}
	for seq := range s.events {
		r.queue = append(r.queue, seq)
	}
	slices.Sort(r.queue)
	r.held = len(r.queue)
	return r
}

func (r *refChannel) Name() string           { return "ref" }
func (r *refChannel) Begin() channel.Txn     { return &refTxn{ch: r} }
func (r *refChannel) closed() bool           { return !r.stop.IsZero() }
func (r *refChannel) lock() func()           { r.store.mu.Lock(); return r.store.mu.Unlock }
func (r *refChannel) errClosed() (e error)   { return fmt.Errorf("ref: %w", channel.ErrClosed) }
func (r *refChannel) errTxnFull(n int) error { return fmt.Errorf("ref: %d: %w", n, channel.ErrTxnFull) }

func (r *refChannel) Stats() channel.Stats {
	defer r.lock()()
	var age time.Duration
	if len(r.store.events) > 0 {
		age = clock.Or(r.opts.Clock).Now().Sub(r.store.putAt[slices.Min(slices.Collect(maps.Keys(r.store.events)))])
	}
	return channel.Stats{Type: "ref", Size: int64(len(r.store.events)), Capacity: int64(r.opts.Capacity),
		PutAttempts: r.putAttempts, PutSuccesses: r.putOK, TakeAttempts: r.takeAttempts, TakeSuccesses: r.takeOK,
		StartTime: r.start, StopTime: r.stop, OldestAge: age}
}

func (r *refChannel) Close() error {
	defer r.lock()()
	if !r.closed() {
		r.stop = time.Now()
		r.release()
	}
	return nil
}

// release wakes puts waiting for permits. The caller holds store.mu.
func (r *refChannel) release() {
	if r.freed != nil {
		close(r.freed)
		r.freed = nil
	}
}

type refTxn struct {
	ch     *refChannel
	done   bool
	puts   []channel.Event
	takes  []int
	taking bool
}

// begin locks the channel and checks the transaction may go on.
func (t *refTxn) begin() (unlock func(), err error) {
	unlock = t.ch.lock()
	switch {
	case t.ch.closed():
		err = t.ch.errClosed()
	case t.done:
		err = channel.ErrTxnDone
	}
	if err != nil {
		unlock()
	}
	return unlock, err
}

func (t *refTxn) Put(events ...channel.Event) error {
	unlock, err := t.begin()
	if err != nil {
		return err
	}
	defer func() { unlock() }()
	if t.taking {
		return channel.ErrMixed
	}
	t.ch.putAttempts += int64(len(events))
	if len(t.puts)+len(events) > t.ch.opts.TransactionCapacity {
		return t.ch.errTxnFull(len(events))
	}
	var keepAlive <-chan time.Time
	for expired := false; t.ch.held+len(events) > t.ch.opts.Capacity; {
		if t.ch.closed() {
			return t.ch.errClosed()
		}
		if expired {
			return fmt.Errorf("ref: capacity %d: %w", t.ch.opts.Capacity, channel.ErrFull)
		}
		if keepAlive == nil {
			keepAlive = clock.Or(t.ch.opts.Clock).After(t.ch.opts.KeepAlive)
		}
		if t.ch.freed == nil {
			t.ch.freed = make(chan struct{})
		}
		wake := t.ch.freed
		unlock()
		select {
		case <-wake:
		case <-keepAlive:
			expired = true // look once more
		}
		unlock = t.ch.lock()
	}
	t.ch.held += len(events)
	t.puts = append(t.puts, events...)
	return nil
}

func (t *refTxn) Take(max int) ([]channel.Event, error) {
	unlock, err := t.begin()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if len(t.puts) > 0 {
		return nil, channel.ErrMixed
	}
	if max <= 0 {
		return nil, nil
	}
	t.taking = true
	if len(t.takes)+max > t.ch.opts.TransactionCapacity {
		t.ch.takeAttempts++
		return nil, t.ch.errTxnFull(max)
	}
	n := min(max, len(t.ch.queue))
	out := make([]channel.Event, n)
	for i, seq := range t.ch.queue[:n] {
		out[i] = t.ch.store.events[seq]
	}
	t.takes = append(t.takes, t.ch.queue[:n]...)
	t.ch.queue = t.ch.queue[n:]
	t.ch.takeAttempts += int64(n)
	if n < max {
		t.ch.takeAttempts++
	}
	return out, nil
}

func (t *refTxn) Commit() error {
	unlock, err := t.begin()
	if err != nil {
		return err
	}
	defer unlock()
	t.done = true
	s := t.ch.store
	now := clock.Or(t.ch.opts.Clock).Now()
	for _, e := range t.puts {
		s.events[s.next], s.putAt[s.next] = e, now
		t.ch.queue = append(t.ch.queue, s.next)
		s.next++
	}
	for _, seq := range t.takes {
		delete(s.events, seq)
		delete(s.putAt, seq)
	}
	t.ch.held -= len(t.takes)
	if len(t.takes) > 0 {
		t.ch.release()
	}
	t.ch.putOK += int64(len(t.puts))
	t.ch.takeOK += int64(len(t.takes))
	return nil
}

func (t *refTxn) Rollback() error {
	unlock, err := t.begin()
	if err != nil {
		return err
	}
	defer unlock()
	t.done = true
	t.ch.held -= len(t.puts)
	if len(t.puts) > 0 {
		t.ch.release()
	}
	t.ch.queue = append(slices.Clone(t.takes), t.ch.queue...)
	return nil
}
