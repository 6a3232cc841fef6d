package channel

import (
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flumed/flumed/internal/clock"
	"github.com/flumed/flumed/internal/config"
)

// Memory is Flume's memory channel: a bounded in-process queue that loses its
// events when the process stops. Its semantics follow Flume's MemoryChannel
// (FLUME.md §2.7, §3.6):
//
//   - puts are staged in the transaction and checked against capacity and byte
//     capacity only at Commit, which waits up to keep-alive for space and then
//     fails with ErrFull (the transaction is then rolled back);
//   - Take waits up to keep-alive when the queue is empty, then returns nothing
//     (once Quiesce says no put will come, it returns nothing at once);
//   - taken events keep occupying capacity until their take commits, so a
//     rollback can always put them back at the head, in order.
//
// Put takes ownership of each event's Headers and Body: the caller must not
// modify them afterwards. Events returned by Take are the very values a
// rollback requeues, so takers must treat them as read-only.
type Memory struct {
	name      string
	opts      MemoryOptions
	byteLimit int64       // usable body bytes after the buffer percentage; 0 = unlimited
	clock     clock.Clock // times the keep-alive waits; tests put a fake here
	origin    OriginID    // drawn at NewMemory: the queue lives as long as the process

	mu        sync.Mutex
	queue     ring[Event]   // committed events not yet taken, oldest first
	times     ring[putRun]  // when the queue's events were put, oldest first (memory_queue.go)
	seqs      ring[uint64]  // the queue's events' numbers under origin, beside queue
	takers    *memoryTxn    // open take transactions holding events, linked (memory_queue.go)
	held      int           // committed events whose take has not committed: queue + in-flight takes
	heldBytes int64         // body bytes of those events
	closed    atomic.Bool   // set under mu; read without it by the fast paths
	done      chan struct{} // closed by Close: wakes every waiter
	quiet     chan struct{} // closed by Quiesce: takes stop waiting for puts
	quietOnce sync.Once     // Quiesce closes quiet once
	added     signal        // events became takeable
	wakes     uint64        // WakeTakers calls: a waiting take returns empty when it changes
	freed     signal        // capacity or byte capacity was released
	// dedup is which upstream numbers this channel committed (PutFrom),
	// for this process's life, as the events themselves.
	dedup *Origins
	// next numbers committed events under origin, so that a sink can name
	// them to the next hop (Sequenced): unique for the channel's life,
	// which is its origin's.
	next uint64

	putAttempts, putSuccesses   atomic.Int64
	takeAttempts, takeSuccesses atomic.Int64
	start, stop                 atomic.Int64 // unix ms, 0 = unset
}

var _ Channel = (*Memory)(nil)

// NewMemory returns an open memory channel. It panics when opts are invalid
// (see MemoryOptions.Validate): options from users go through the "memory"
// factory, which reports bad values as configuration problems instead.
func NewMemory(name string, opts MemoryOptions) *Memory {
	opts = opts.normalize()
	if err := opts.Validate(); err != nil {
		panic(fmt.Sprintf("channel.NewMemory(%q): %v", name, err))
	}
	m := &Memory{name: name, opts: opts, byteLimit: opts.byteLimit(), clock: clock.Real{},
		origin: NewOriginID(), done: make(chan struct{}), quiet: make(chan struct{}),
		dedup: NewOrigins(OriginsOptions{})}
	m.start.Store(time.Now().UnixMilli())
	return m
}

// Name returns the component name.
func (m *Memory) Name() string { return m.name }

// Origin returns the identity drawn when the channel was made: its events die
// with the process, so a new process has new events and a new identity.
func (m *Memory) Origin() OriginID { return m.origin }

// Options returns the options the channel runs with, zero values filled in.
func (m *Memory) Options() MemoryOptions { return m.opts }

// Begin starts a transaction. Any goroutine may call it.
func (m *Memory) Begin() Txn { return &memoryTxn{ch: m} }

// Stats returns Flume's counters. Size counts events whose take has not
// committed yet, as capacity does (Flume's ChannelSize shows the same numbers
// at every commit and rollback).
// OldestAge is exact to the clock: each put commit records its time.
func (m *Memory) Stats() Stats {
	// Size and successes change together under mu; attempts are counted before
	// the commit that makes them successes, so reading them after keeps
	// successes <= attempts.
	m.mu.Lock()
	size, putOK, takeOK := m.held, m.putSuccesses.Load(), m.takeSuccesses.Load()
	oldest, held := m.oldestPut()
	if m.closed.Load() {
		held = false // Close dropped the queue
	}
	m.mu.Unlock()
	var age time.Duration
	if held {
		age = max(m.clock.Now().Sub(oldest), 0)
	}
	ms := func(v int64) time.Time {
		if v == 0 {
			return time.Time{}
		}
		return time.UnixMilli(v)
	}
	return Stats{
		Type:          "memory",
		Size:          int64(size),
		Capacity:      int64(m.opts.Capacity),
		PutAttempts:   m.putAttempts.Load(),
		PutSuccesses:  putOK,
		TakeAttempts:  m.takeAttempts.Load(),
		TakeSuccesses: takeOK,
		StartTime:     ms(m.start.Load()),
		StopTime:      ms(m.stop.Load()),
		OldestAge:     age,
	}
}

// Close discards the queued events (a memory channel keeps nothing) and makes
// every transaction, open or new, fail with ErrClosed. Waiting takes and
// commits wake at once. Close is idempotent.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed.Load() {
		return nil
	}
	m.closed.Store(true)
	close(m.done)
	m.queue, m.times, m.takers, m.seqs = ring[Event]{}, ring[putRun]{}, nil, ring[uint64]{}
	m.stop.Store(time.Now().UnixMilli())
	return nil
}

func (m *Memory) errClosed() error { return fmt.Errorf("channel %s: %w", m.name, ErrClosed) }

// Quiesce tells the channel that nothing will put into it any more: the agent
// calls it once every source has stopped, before the sinks drain. From then
// on a Take on an empty queue returns nothing at once instead of waiting
// keep-alive for events that cannot come, and a Take waiting now wakes, so a
// drained channel is seen as empty (and its sinks stop) without that wait.
// Nothing else changes: queued events are taken as before, and a Put still
// works (its events are taken like any other). Any goroutine may call it;
// it is idempotent.
func (m *Memory) Quiesce() {
	m.quietOnce.Do(func() { close(m.quiet) })
}

// WakeTakers makes the takes waiting now on an empty queue return nothing
// at once, as if their keep-alive had ended. The agent calls it when it
// stops one sink of a channel that stays open (a reload), so the stop does
// not wait out a keep-alive; unlike Quiesce it changes nothing after.
// Any goroutine may call it.
func (m *Memory) WakeTakers() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wakes++
	m.added.notify()
}

func (m *Memory) quiesced() bool {
	select {
	case <-m.quiet:
		return true
	default:
		return false
	}
}

// take moves up to max events from the head into a new slice, and their put
// times into t, waiting up to keep-alive while the queue is empty (not at
// all once quiesced).
func (m *Memory) take(t *memoryTxn, max int) ([]Event, error) {
	var keepAlive <-chan time.Time // started at the first wait
	expired := false
	m.mu.Lock()
	wakes := m.wakes
	for {
		if m.closed.Load() {
			m.mu.Unlock()
			return nil, m.errClosed()
		}
		if n := min(max, m.queue.len()); n > 0 {
			out := make([]Event, n)
			m.queue.popFront(out)
			m.popTimes(t, n)
			at := len(t.takeSeqs)
			t.takeSeqs = append(t.takeSeqs, make([]uint64, n)...)
			m.seqs.popFront(t.takeSeqs[at:])
			m.mu.Unlock()
			return out, nil
		}
		if expired || m.opts.KeepAlive <= 0 || m.quiesced() || m.wakes != wakes {
			m.mu.Unlock()
			return nil, nil
		}
		if keepAlive == nil {
			keepAlive = m.clock.After(m.opts.KeepAlive)
		}
		wake := m.added.wait()
		m.mu.Unlock()
		select {
		case <-wake:
		case <-m.done:
		case <-m.quiet: // look once more, then return what is there
		case <-keepAlive:
			expired = true // look once more: a put may have landed meanwhile
		}
		m.mu.Lock()
	}
}

// commitPuts appends events to the tail once capacity and byte capacity have
// room for all of them, waiting up to keep-alive for takes to free space.
func (m *Memory) commitPuts(events []Event, bytes int64, origins originStage) error {
	n := len(events)
	// A transaction that can never fit fails at once rather than after a wait.
	if m.byteLimit > 0 && bytes > m.byteLimit {
		return m.errFull(n, fmt.Sprintf("%d body bytes exceed byteCapacity's %d usable bytes", bytes, m.byteLimit))
	}
	var keepAlive <-chan time.Time // started at the first wait
	expired := false
	m.mu.Lock()
	for {
		if m.closed.Load() {
			m.mu.Unlock()
			return m.errClosed()
		}
		reason := m.noRoom(n, bytes)
		if reason == "" {
			m.queue.pushBack(events)
			seqs := make([]uint64, n)
			for i := range seqs {
				seqs[i] = m.next + uint64(i)
			}
			m.seqs.pushBack(seqs)
			m.next += uint64(n)
			// In the same critical section as the events: a resend is
			// left out only once they are queued.
			origins.commitTo(m.dedup, time.Now().UnixMilli())
			m.pushTimes(m.clock.Now().UnixNano(), n)
			m.held += n
			m.heldBytes += bytes
			m.added.notify()
			m.putSuccesses.Add(int64(n)) // under mu: Stats sees it with the size
			m.mu.Unlock()
			return nil
		}
		if expired || m.opts.KeepAlive <= 0 {
			m.mu.Unlock()
			return m.errFull(n, reason)
		}
		if keepAlive == nil {
			keepAlive = m.clock.After(m.opts.KeepAlive)
		}
		wake := m.freed.wait()
		m.mu.Unlock()
		select {
		case <-wake:
		case <-m.done:
		case <-keepAlive:
			expired = true // look once more: a take may have committed meanwhile
		}
		m.mu.Lock()
	}
}

// noRoom says why n events of the given body bytes do not fit now ("" when
// they do). The caller holds m.mu.
func (m *Memory) noRoom(n int, bytes int64) string {
	if m.held+n > m.opts.Capacity {
		return fmt.Sprintf("capacity %d reached (%d events held)", m.opts.Capacity, m.held)
	}
	if m.byteLimit > 0 && m.heldBytes+bytes > m.byteLimit {
		return fmt.Sprintf("byteCapacity reached (%d of %d usable body bytes held)", m.heldBytes, m.byteLimit)
	}
	return ""
}

func (m *Memory) errFull(n int, reason string) error {
	return fmt.Errorf("channel %s: commit %d events: %s; sinks are not keeping up: %w", m.name, n, reason, ErrFull)
}

// commitTakes makes t's taken events permanently gone and releases their
// space.
func (m *Memory) commitTakes(t *memoryTxn, n int, bytes int64) error {
	m.mu.Lock()
	if m.closed.Load() {
		m.mu.Unlock()
		return m.errClosed()
	}
	m.unlink(t)
	m.held -= n
	m.heldBytes -= bytes
	m.freed.notify()
	m.takeSuccesses.Add(int64(n))
	m.mu.Unlock()
	return nil
}

// rollbackTakes returns t's taken events (and their put times) to the head,
// in their original order. Their capacity was never released, so they
// always fit.
func (m *Memory) rollbackTakes(t *memoryTxn) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed.Load() {
		return m.errClosed()
	}
	m.queue.pushFront(t.takes)
	m.seqs.pushFront(t.takeSeqs)
	m.unpopTimes(t)
	m.added.notify()
	return nil
}

// memoryTxn stages one transaction's puts or takes. It belongs to one
// goroutine; only the channel's shared state is locked.
type memoryTxn struct {
	ch        *Memory
	done      bool
	puts      []Event
	putBytes  int64
	takes     []Event // in the order taken, for a rollback to restore
	takeSeqs  []uint64
	takeBytes int64
	taking    bool        // a Take call was made: no Put may follow
	origins   originStage // upstream numbers of the puts that came with PutFrom

	// Under ch.mu (memory_queue.go): the put times of the events taken, and
	// t's place among the open takers while it holds events.
	runs       []putRun
	runsBuf    [2]putRun // runs' first home: a take usually spans one or two puts
	oldest     int64     // the earliest of runs
	linked     bool
	prev, next *memoryTxn
}

var (
	_ OriginPutter = (*memoryTxn)(nil)
	_ Sequenced    = (*memoryTxn)(nil)
)

// Seqs implements Sequenced: the numbers of the events taken so far, in the
// order taken.
func (t *memoryTxn) Seqs() []uint64 { return t.takeSeqs }

// PutFrom implements OriginPutter: it stages the events whose numbers of
// origin this channel has not committed (nor this transaction staged).
func (t *memoryTxn) PutFrom(origin OriginID, seqs []uint64, events []Event) (int, error) {
	if err := t.check(); err != nil {
		return 0, err
	}
	if len(seqs) != len(events) {
		return 0, fmt.Errorf("channel %s: put %d events with %d sequence numbers", t.ch.name, len(events), len(seqs))
	}
	m := t.ch
	m.mu.Lock()
	keepSeqs, keep := dedupFilter(t.origins, origin, seqs, events, func(q uint64) bool { return m.dedup.Committed(origin, q) })
	m.mu.Unlock()
	if err := t.Put(keep...); err != nil {
		return 0, err
	}
	t.origins.addSeqs(origin, keepSeqs)
	return len(events) - len(keep), nil
}

func (t *memoryTxn) check() error {
	if t.ch.closed.Load() {
		return t.ch.errClosed()
	}
	if t.done {
		return ErrTxnDone
	}
	return nil
}

// Put stages events; capacity is checked at Commit, as in Flume.
func (t *memoryTxn) Put(events ...Event) error {
	if err := t.check(); err != nil {
		return err
	}
	if t.taking {
		return ErrMixed
	}
	if len(events) == 0 {
		return nil
	}
	// Flume counts an attempt for every event offered, refused or not.
	t.ch.putAttempts.Add(int64(len(events)))
	if limit := t.ch.opts.TransactionCapacity; len(t.puts)+len(events) > limit {
		return fmt.Errorf("channel %s: put %d events: transaction holds %d of transactionCapacity %d: %w",
			t.ch.name, len(events), len(t.puts), limit, ErrTxnFull)
	}
	for _, e := range events {
		t.putBytes += int64(e.Size())
	}
	t.puts = append(t.puts, events...)
	return nil
}

// Take removes up to max events from the head. Attempts are counted as Flume
// counts its one-event take() calls in a sink's batch loop: one per event
// returned, plus one for the empty take that ends a short batch.
func (t *memoryTxn) Take(max int) ([]Event, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	if len(t.puts) > 0 {
		return nil, ErrMixed
	}
	if max <= 0 {
		return nil, nil
	}
	t.taking = true
	if limit := t.ch.opts.TransactionCapacity; len(t.takes)+max > limit {
		t.ch.takeAttempts.Add(1)
		return nil, fmt.Errorf("channel %s: take %d events: transaction holds %d of transactionCapacity %d: %w",
			t.ch.name, max, len(t.takes), limit, ErrTxnFull)
	}
	out, err := t.ch.take(t, max)
	if err != nil {
		return nil, err
	}
	attempts := len(out)
	if len(out) < max {
		attempts++
	}
	t.ch.takeAttempts.Add(int64(attempts))
	for _, e := range out {
		t.takeBytes += int64(e.Size())
	}
	t.takes = append(t.takes, out...)
	return out, nil
}

// Commit publishes staged puts (waiting up to keep-alive for space) or makes
// takes permanent. A failed Commit leaves the transaction rolled back.
func (t *memoryTxn) Commit() error {
	if err := t.check(); err != nil {
		return err
	}
	t.done = true
	switch {
	case len(t.puts) > 0:
		return t.ch.commitPuts(t.puts, t.putBytes, t.origins)
	case len(t.takes) > 0:
		return t.ch.commitTakes(t, len(t.takes), t.takeBytes)
	}
	return nil
}

// Rollback drops staged puts or returns taken events to the head in order.
func (t *memoryTxn) Rollback() error {
	if err := t.check(); err != nil {
		return err
	}
	t.done = true
	if len(t.takes) > 0 {
		return t.ch.rollbackTakes(t)
	}
	return nil
}

// signal wakes every goroutine waiting for a state change. Its channel is made
// only when someone waits, so commits nobody waits for allocate nothing.
// The caller holds the channel's mutex for both methods.
type signal struct{ ch chan struct{} }

func (s *signal) wait() <-chan struct{} {
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) notify() {
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// MemoryOptions configure a memory channel. The "memory" factory fills them
// from Flume's keys; DefaultMemoryOptions gives Flume's defaults.
type MemoryOptions struct {
	// Capacity is the most events the channel holds, counting taken events
	// whose take has not committed. Zero means the capacity key's default.
	Capacity int
	// TransactionCapacity is the most events one transaction may put or take.
	// Zero means the transactionCapacity key's default, at most Capacity.
	TransactionCapacity int
	// KeepAlive is how long an empty Take and a Commit short of space wait.
	// Zero means do not wait (the keep-alive key's default is applied by the
	// factory and by DefaultMemoryOptions).
	KeepAlive time.Duration
	// ByteCapacity bounds the body bytes held, counting events whose take has
	// not committed. Headers are not counted, as in Flume; unlike Flume, which
	// rounds bodies down to 100-byte slots (so small events count as nothing),
	// bodies count byte for byte. Zero means unlimited (Flume: about 200 GB).
	ByteCapacity int64
	// ByteCapacityBufferPercentage is the share of ByteCapacity kept back for
	// what body bytes do not count (headers, object overhead), 0–99.
	ByteCapacityBufferPercentage int
}

// The memory channel's keys (FLUME.md §2.7). Their defaults are Flume's and
// are written here only: DefaultMemoryOptions and the README take them from
// these declarations.
var (
	memoryCapacity = config.Int("capacity", 100,
		"the most events the channel holds, counting taken events whose take has not committed")
	memoryTxCapacity = config.Int("transactionCapacity", 100,
		"the most events one transaction puts or takes")
	memoryKeepAlive = config.Seconds("keep-alive", 3*time.Second,
		"how long a take waits for an event and a commit for space")
	memoryByteCapacity = config.Bytes("byteCapacity", 0,
		"the most body bytes held, counted byte for byte; 0 is unlimited").
		DefaultText("80 % of `GOMEMLIMIT` when set, else unlimited")
	memoryBufferPercentage = config.Int("byteCapacityBufferPercentage", 20,
		"the share of byteCapacity kept back for what body bytes do not count (headers, overhead), 0-99")
)

// memoryType declares the memory channel.
var memoryType = &config.Spec{
	Type:    "memory",
	Classes: []string{"org.apache.flume.channel.MemoryChannel"},
	Doc:     "`byteCapacity` counts body bytes exactly; without it the limit is 80 % of `GOMEMLIMIT` when set, else none",
	Keys:    []config.Decl{memoryCapacity, memoryTxCapacity, memoryKeepAlive, memoryByteCapacity, memoryBufferPercentage},
}

// DefaultMemoryOptions returns Flume's defaults. Where Flume sizes byteCapacity
// at 80% of the JVM heap, flumed uses 80% of the Go memory limit (GOMEMLIMIT)
// when one is set and no byte limit otherwise: the event capacity still bounds
// memory, and a process without a limit has no heap size to take a share of.
func DefaultMemoryOptions() MemoryOptions {
	o := MemoryOptions{
		Capacity:                     memoryCapacity.Default(),
		TransactionCapacity:          memoryTxCapacity.Default(),
		KeepAlive:                    memoryKeepAlive.Default(),
		ByteCapacityBufferPercentage: memoryBufferPercentage.Default(),
	}
	if limit := debug.SetMemoryLimit(-1); limit > 0 && limit < math.MaxInt64 {
		o.ByteCapacity = limit / 10 * 8
	}
	return o
}

func (o MemoryOptions) normalize() MemoryOptions {
	if o.Capacity == 0 {
		o.Capacity = memoryCapacity.Default()
	}
	if o.TransactionCapacity == 0 {
		o.TransactionCapacity = min(memoryTxCapacity.Default(), o.Capacity)
	}
	return o
}

// Validate reports the first invalid option, zero values taken as documented.
func (o MemoryOptions) Validate() error {
	o = o.normalize()
	switch {
	case o.Capacity < 0:
		return fmt.Errorf("capacity %d is not positive", o.Capacity)
	case o.TransactionCapacity < 0:
		return fmt.Errorf("transactionCapacity %d is not positive", o.TransactionCapacity)
	case o.TransactionCapacity > o.Capacity:
		return fmt.Errorf("transactionCapacity %d is more than capacity %d", o.TransactionCapacity, o.Capacity)
	case o.KeepAlive < 0:
		return fmt.Errorf("keep-alive %s is negative", o.KeepAlive)
	case o.ByteCapacity < 0:
		return fmt.Errorf("byteCapacity %d is negative", o.ByteCapacity)
	case o.ByteCapacityBufferPercentage < 0 || o.ByteCapacityBufferPercentage > 99:
		return fmt.Errorf("byteCapacityBufferPercentage %d is not between 0 and 99", o.ByteCapacityBufferPercentage)
	case o.ByteCapacity > 0 && o.byteLimit() == 0:
		return fmt.Errorf("byteCapacity %d leaves no bytes after byteCapacityBufferPercentage %d",
			o.ByteCapacity, o.ByteCapacityBufferPercentage)
	}
	return nil
}

// byteLimit is the usable body bytes: ByteCapacity less the buffer percentage.
func (o MemoryOptions) byteLimit() int64 {
	if o.ByteCapacity <= 0 {
		return 0
	}
	// Divide first where the product could overflow.
	if o.ByteCapacity > math.MaxInt64/100 {
		return o.ByteCapacity / 100 * int64(100-o.ByteCapacityBufferPercentage)
	}
	return o.ByteCapacity * int64(100-o.ByteCapacityBufferPercentage) / 100
}

// memorySpec is a configured memory channel.
type memorySpec struct{ opts MemoryOptions }

func (s memorySpec) TransactionCapacity() int { return s.opts.TransactionCapacity }

func (s memorySpec) Open(name string, log *slog.Logger) (Channel, error) {
	if log != nil {
		log.Debug("memory channel open", "channel", name, "capacity", s.opts.Capacity,
			"transactionCapacity", s.opts.TransactionCapacity, "keepAlive", s.opts.KeepAlive,
			"byteCapacity", s.opts.ByteCapacity)
	}
	return NewMemory(name, s.opts), nil
}

// memoryFactory makes a memory channel spec from c, checked against
// memoryType. Where Flume silently falls back to a default for a bad or
// non-positive number, flumed records a problem (and carries on with the
// default, so every problem of the file is found). The returned spec is
// always valid.
func memoryFactory(_ string, c *config.Context) (Spec, error) {
	o := DefaultMemoryOptions()
	def := o
	o.Capacity, o.TransactionCapacity = readCapacities(c, memoryCapacity, memoryTxCapacity)
	if v := memoryKeepAlive.Get(c); v >= 0 {
		o.KeepAlive = v
	} else {
		c.Errorf(memoryKeepAlive.Name(), "must be zero or more seconds, not %d", v/time.Second)
	}
	if v, set := memoryByteCapacity.Lookup(c); set && v >= 0 {
		o.ByteCapacity = v
	} else if set {
		c.Errorf(memoryByteCapacity.Name(), "must be zero (unlimited) or more bytes, not %d", v)
	}
	if v := memoryBufferPercentage.Get(c); v >= 0 && v <= 99 {
		o.ByteCapacityBufferPercentage = v
	} else {
		c.Errorf(memoryBufferPercentage.Name(), "must be between 0 and 99, not %d", v)
	}
	if o.ByteCapacity > 0 && o.byteLimit() == 0 {
		c.Errorf(memoryByteCapacity.Name(), "%d leaves no bytes after byteCapacityBufferPercentage %d",
			o.ByteCapacity, o.ByteCapacityBufferPercentage)
		o.ByteCapacity, o.ByteCapacityBufferPercentage = def.ByteCapacity, def.ByteCapacityBufferPercentage
	}
	return memorySpec{opts: o}, nil
}
