package channel

import "time"

// The memory channel's queue: the events, oldest first, and beside them
// when each was put, so that Stats can say how long the oldest event has
// waited. Put times are kept per commit, not per event (a run of n events
// committed together shares one time), so they cost one small entry per
// put transaction. Taken events carry their runs in their transaction
// until it commits or rolls back; the open take transactions are linked
// into a list (no allocation, no map) so that the oldest event held,
// queued or taken, is found under the channel's mutex without a scan of
// the queue. Everything here is guarded by the Memory's mu.

// putRun is n consecutive events of the queue committed at one time (unix
// nanoseconds, from the channel's clock).
type putRun struct {
	at int64
	n  int
}

// appendRun appends r to runs, merging it into the last run when both
// were put at the same time.
func appendRun(runs []putRun, r putRun) []putRun {
	if k := len(runs); k > 0 && runs[k-1].at == r.at {
		runs[k-1].n += r.n
		return runs
	}
	return append(runs, r)
}

// pushTimes records that n events put at at joined the tail.
func (m *Memory) pushTimes(at int64, n int) {
	if m.times.len() > 0 {
		if last := m.times.back(); last.at == at {
			last.n += n
			return
		}
	}
	m.times.pushBack([]putRun{{at, n}})
}

// popTimes moves the put times of the n events just taken from the head
// into t, which becomes an open taker if it was not one.
func (m *Memory) popTimes(t *memoryTxn, n int) {
	if t.runs == nil {
		t.runs = t.runsBuf[:0]
	}
	for n > 0 {
		r := m.times.front()
		k := min(n, r.n)
		t.runs = appendRun(t.runs, putRun{r.at, k})
		if len(t.runs) == 1 || r.at < t.oldest {
			t.oldest = r.at
		}
		r.n -= k
		n -= k
		if r.n == 0 {
			var one [1]putRun
			m.times.popFront(one[:])
		}
	}
	if !t.linked {
		m.link(t)
	}
}

// unpopTimes returns t's put times to the head, in order, with its events
// (a rollback), and forgets t as a taker.
func (m *Memory) unpopTimes(t *memoryTxn) {
	runs := t.runs
	if m.times.len() > 0 && len(runs) > 0 {
		if head := m.times.front(); head.at == runs[len(runs)-1].at {
			head.n += runs[len(runs)-1].n
			runs = runs[:len(runs)-1]
		}
	}
	m.times.pushFront(runs)
	m.unlink(t)
}

// link adds t to the open takers.
func (m *Memory) link(t *memoryTxn) {
	t.linked = true
	t.prev, t.next = nil, m.takers
	if m.takers != nil {
		m.takers.prev = t
	}
	m.takers = t
}

// unlink removes t from the open takers, if it is one.
func (m *Memory) unlink(t *memoryTxn) {
	if !t.linked {
		return
	}
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		m.takers = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	t.prev, t.next, t.linked, t.runs = nil, nil, false, nil
}

// oldestPut is the put time of the oldest event held, queued or in an
// open take, and false when the channel holds none.
func (m *Memory) oldestPut() (time.Time, bool) {
	var oldest int64
	found := false
	if m.times.len() > 0 {
		oldest, found = m.times.front().at, true
	}
	for t := m.takers; t != nil; t = t.next {
		if !found || t.oldest < oldest {
			oldest, found = t.oldest, true
		}
	}
	if !found {
		return time.Time{}, false
	}
	return time.Unix(0, oldest), true
}

// ring is a growable circular FIFO with O(1) pushes at both ends, so a
// rolled-back take goes back to the head without shifting the queue.
// It grows by doubling. It shrinks only when it empties after a fill that
// used under a quarter of it, so a drained burst does not pin its memory
// while a steady put/take cycle never reallocates.
type ring[T any] struct {
	buf  []T
	head int // index of the oldest element
	n    int
	peak int // most elements held since the ring last emptied
}

const ringMin = 64

func (r *ring[T]) len() int { return r.n }

// front and back return the oldest and the newest element; the ring is not
// empty.
func (r *ring[T]) front() *T { return &r.buf[r.head] }
func (r *ring[T]) back() *T  { return &r.buf[(r.head+r.n-1)%len(r.buf)] }

func (r *ring[T]) reserve(extra int) {
	if r.n+extra <= len(r.buf) {
		return
	}
	nb := make([]T, max(ringMin, 2*len(r.buf), r.n+extra))
	if r.n > 0 {
		k := copy(nb, r.buf[r.head:min(r.head+r.n, len(r.buf))])
		copy(nb[k:r.n], r.buf)
	}
	r.buf, r.head = nb, 0
}

func (r *ring[T]) pushBack(es []T) {
	r.reserve(len(es))
	for _, e := range es {
		r.buf[(r.head+r.n)%len(r.buf)] = e
		r.n++
	}
	r.peak = max(r.peak, r.n)
}

// pushFront puts es at the head so that es[0] is the next one popped.
func (r *ring[T]) pushFront(es []T) {
	r.reserve(len(es))
	for i := len(es) - 1; i >= 0; i-- {
		r.head = (r.head - 1 + len(r.buf)) % len(r.buf)
		r.buf[r.head] = es[i]
		r.n++
	}
	r.peak = max(r.peak, r.n)
}

// popFront moves len(dst) <= r.len() elements from the head into dst,
// clearing their slots so the ring does not keep what they point to alive.
func (r *ring[T]) popFront(dst []T) {
	var zero T
	for i := range dst {
		dst[i] = r.buf[r.head]
		r.buf[r.head] = zero
		r.head = (r.head + 1) % len(r.buf)
		r.n--
	}
	if r.n == 0 {
		if len(r.buf) > ringMin && r.peak < len(r.buf)/4 {
			r.buf = make([]T, max(ringMin, 2*r.peak))
		}
		r.head, r.peak = 0, 0
	}
}
