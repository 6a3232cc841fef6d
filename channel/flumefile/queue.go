package flumefile

import "fmt"

// eventQueue is Flume's FlumeEventQueue as replay uses it: a queue of event
// pointers loaded from the checkpoint, to which replay adds committed puts at
// the tail, from which it removes committed takes (the first occurrence of a
// pointer, found through a set of the pointers present, as Flume's queueSet
// does), and to whose head it returns the takes never committed. It also
// keeps Flume's per-file reference counts, because Flume fails a take whose
// file has no count, and that failure must be reproduced, not papered over.
//
// Memory: 8 bytes per pointer, plus an index of about 20 bytes per pointer
// from the first take replay applies to its end (Flume keeps that index in
// a MapDB file instead).
type eventQueue struct {
	capacity int
	// back holds the checkpoint's pointers then the tail additions, front the
	// head additions (most recent last). dead marks entries removed from back.
	back  []int64
	dead  []bool
	front []int64
	size  int
	first int // index in back before which every entry is dead
	// index holds the pointers of Flume's queueSet: for a pointer queued once,
	// the position in back of its occurrence; for one queued more than once
	// (only a damaged channel does that), -1, its live positions being in
	// extra. Built at the first remove (nil before), dropped by
	// replayComplete.
	index map[int64]int
	extra map[int64][]int
	refs  map[int32]int32
	done  bool // replayComplete was called: no set any more
}

func newEventQueue(capacity int, ptrs []int64, refs map[int32]int32) *eventQueue {
	return &eventQueue{capacity: capacity, back: ptrs, dead: make([]bool, len(ptrs)), size: len(ptrs), refs: refs}
}

// indexed builds the set the first time replay needs it (a committed take):
// a replay that only adds, or reads nothing, never pays for it.
func (q *eventQueue) indexed() {
	if q.index != nil {
		return
	}
	q.index = make(map[int64]int, len(q.back))
	for i, p := range q.back {
		if !q.dead[i] {
			q.enter(p, i)
		}
	}
}

// push appends p to back and adds it to the set.
func (q *eventQueue) push(p int64) {
	i := len(q.back)
	q.back = append(q.back, p)
	q.dead = append(q.dead, false)
	q.size++
	if q.index != nil {
		q.enter(p, i)
	}
}

// enter adds back[i], holding p, to the set.
func (q *eventQueue) enter(p int64, i int) {
	if ex, ok := q.extra[p]; ok {
		q.extra[p] = append(ex, i)
		q.index[p] = -1
		return
	}
	if j, ok := q.index[p]; ok {
		if q.extra == nil {
			q.extra = make(map[int64][]int)
		}
		q.extra[p] = []int{j, i}
		q.index[p] = -1
		return
	}
	q.index[p] = i
}

// errQueue is an IllegalStateException or IllegalArgumentException thrown by
// Flume's queue: replay, or the take that meets it, fails.
type errQueue struct{ msg string }

func (e *errQueue) Error() string { return e.msg }

func checkPointer(p int64) error {
	if p == 0 {
		return &errQueue{"an event pointer is 0 (Flume's EMPTY)"}
	}
	if int32(p) < 0 {
		return &errQueue{fmt.Sprintf("event pointer %#x has a negative offset", p)}
	}
	return nil
}

// addTail adds p at the tail; Flume fails replay when the queue is full.
func (q *eventQueue) addTail(p int64) error {
	if err := checkPointer(p); err != nil {
		return err
	}
	if q.size == q.capacity {
		return &errQueue{fmt.Sprintf("unable to add %s: queue depth %d = capacity", pointerString(p), q.size)}
	}
	q.refs[pointerFile(p)]++
	q.push(p)
	return nil
}

// remove removes the first occurrence of p, if Flume's queueSet holds it.
func (q *eventQueue) remove(p int64) (bool, error) {
	if err := checkPointer(p); err != nil {
		return false, err
	}
	if q.done {
		return false, &errQueue{"a take removed after replay completed"}
	}
	q.indexed()
	i, ok := q.index[p]
	if !ok {
		return false, nil
	}
	// queueSet forgets the pointer even when another occurrence stays.
	delete(q.index, p)
	if i < 0 {
		ex := q.extra[p]
		i = ex[0] // Flume searches from the head: the first occurrence goes
		if len(ex) == 1 {
			delete(q.extra, p)
		} else {
			q.extra[p] = ex[1:]
		}
	}
	q.dead[i] = true
	q.size--
	for q.first < len(q.back) && q.dead[q.first] {
		q.first++
	}
	return true, q.decRef(p)
}

func (q *eventQueue) decRef(p int64) error {
	f := pointerFile(p)
	n, ok := q.refs[f]
	if !ok {
		return &errQueue{fmt.Sprintf("log-%d has no reference count (the checkpoint's active logs do not list it)", f)}
	}
	if n <= 1 {
		delete(q.refs, f)
	} else {
		q.refs[f] = n - 1
	}
	return nil
}

// replayComplete drops the set, as Flume does before re-adding the takes.
func (q *eventQueue) replayComplete() {
	q.index, q.extra = nil, nil
	q.done = true
}

// addHead puts p back at the head (a take never committed). Flume refuses
// when the queue is full and loses the event; flumed keeps it and reports
// it (full counts such events).
func (q *eventQueue) addHead(p int64) (full bool, err error) {
	if err := checkPointer(p); err != nil {
		return false, err
	}
	full = q.size >= q.capacity
	q.refs[pointerFile(p)]++
	q.front = append(q.front, p)
	q.size++
	return full, nil
}

// pointers returns the queue from head to tail.
func (q *eventQueue) pointers() []int64 {
	out := make([]int64, 0, q.size)
	for i := len(q.front) - 1; i >= 0; i-- {
		out = append(out, q.front[i])
	}
	for i := q.first; i < len(q.back); i++ {
		if !q.dead[i] {
			out = append(out, q.back[i])
		}
	}
	return out
}

func pointerFile(p int64) int32   { return int32(uint64(p) >> 32) }
func pointerOffset(p int64) int32 { return int32(p) }

func pointerString(p int64) string {
	return fmt.Sprintf("log-%d offset %d", pointerFile(p), pointerOffset(p))
}
