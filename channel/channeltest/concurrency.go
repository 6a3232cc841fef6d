package channeltest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
)

// The concurrency cases run many producer and consumer goroutines through a
// small channel, so puts meet a full channel and takes an empty one, and check
// that every committed event is delivered exactly once. Run them under -race.
const (
	producers   = 8
	consumers   = 8
	perProducer = 300
	maxBatch    = 16
)

func (s suite) concurrency(t *testing.T) {
	t.Run("concurrent producers and consumers deliver every event exactly once, in producer order per consumer", func(t *testing.T) {
		s.runConcurrent(t, false)
	})
	t.Run("concurrent rollbacks of puts and takes neither lose nor duplicate events", func(t *testing.T) {
		s.runConcurrent(t, true)
	})
}

// delivery is one event as a consumer committed it.
type delivery struct{ producer, seq int }

// stallLimit is how long the run may go without any commit before the case
// fails: generous for channels that fsync, short enough to fail fast.
const stallLimit = 10 * time.Second

// run is the state the goroutines of one concurrency case share.
type run struct {
	t         *testing.T
	ch        channel.Channel
	rollbacks bool         // consumers roll back some takes
	failed    atomic.Bool  // a goroutine failed: everyone stops
	progress  atomic.Int64 // unix ns of the last commit that moved events
	delivered atomic.Int64 // events committed by consumers

	mu    sync.Mutex
	moved chan struct{} // closed (and replaced) by every commit that moves events, and by a failure
}

func (r *run) fail(format string, args ...any) {
	r.failed.Store(true)
	r.t.Errorf(format, args...)
	r.wake()
}

func (r *run) advanced() {
	r.progress.Store(time.Now().UnixNano())
	r.wake()
}

func (r *run) wake() {
	r.mu.Lock()
	defer r.mu.Unlock()
	close(r.moved)
	r.moved = make(chan struct{})
}

// changes returns a channel closed at the next commit that moves events.
// A producer facing a full channel, or a consumer an empty one, takes it
// before trying and waits on it after failing: only the other side's next
// commit can change what it found, and a commit in between is not missed.
func (r *run) changes() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.moved
}

// waitFor waits for a change, or at most stallLimit: a run that stopped
// moving is then reported by stalled.
func (r *run) waitFor(change <-chan struct{}) {
	timer := time.NewTimer(stallLimit)
	defer timer.Stop()
	select {
	case <-change:
	case <-timer.C:
	}
}

func (r *run) stalled() bool {
	return time.Since(time.Unix(0, r.progress.Load())) > stallLimit
}

func (s suite) runConcurrent(t *testing.T, takeRollbacks bool) {
	const total = producers * perProducer
	r := &run{t: t, rollbacks: takeRollbacks, moved: make(chan struct{}),
		ch: s.open(t, Options{Capacity: 128, TransactionCapacity: maxBatch, KeepAlive: 20 * time.Millisecond})}
	r.advanced()

	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() { r.produce(p) })
	}
	got := make([][]delivery, consumers)
	for c := range consumers {
		wg.Go(func() { got[c] = r.consume(c, total) })
	}
	statsDone := make(chan struct{})
	var statsWG sync.WaitGroup
	statsWG.Go(func() { r.watchStats(statsDone) })
	wg.Wait()
	close(statsDone)
	statsWG.Wait()
	if r.failed.Load() {
		return
	}

	seen := make(map[delivery]int, total)
	for c, ds := range got {
		last := make(map[int]int) // producer -> last seq this consumer committed
		for _, d := range ds {
			seen[d]++
			if !takeRollbacks {
				if prev, ok := last[d.producer]; ok && d.seq <= prev {
					t.Errorf("consumer %d got producer %d's event %d after %d", c, d.producer, d.seq, prev)
				}
				last[d.producer] = d.seq
			}
		}
	}
	for p := range producers {
		for i := range perProducer {
			if n := seen[delivery{p, i}]; n != 1 {
				t.Errorf("producer %d's event %d delivered %d times", p, i, n)
			}
		}
	}
	if len(seen) != total {
		t.Errorf("delivered %d distinct events, want %d (phantom events?)", len(seen), total)
	}
	if size := r.ch.Stats().Size; size != 0 {
		t.Errorf("size after delivering everything: %d, want 0", size)
	}
}

// produce puts events 0..perProducer-1 of producer p in random batches,
// rolling back some (their numbers are reused by the next batch) and retrying
// when the channel is full.
func (r *run) produce(p int) {
	rng := rand.New(rand.NewPCG(uint64(p), 1))
	next := 0
	for next < perProducer && !r.failed.Load() {
		if r.stalled() {
			r.fail("producer %d: no progress for %s, stuck at event %d", p, stallLimit, next)
			return
		}
		moved := r.changes()
		n := min(1+rng.IntN(maxBatch), perProducer-next)
		batch := make([]channel.Event, n)
		for i := range batch {
			batch[i] = channel.Event{
				Headers: map[string]string{"p": strconv.Itoa(p), "seq": strconv.Itoa(next + i)},
				Body:    fmt.Appendf(nil, "producer %d event %d", p, next+i),
			}
		}
		tx := r.ch.Begin()
		err := tx.Put(batch...)
		if err == nil && rng.IntN(8) == 0 {
			if err := tx.Rollback(); err != nil {
				r.fail("producer %d: rollback: %v", p, err)
				return
			}
			continue
		}
		if err == nil {
			err = tx.Commit()
		} else {
			_ = tx.Rollback()
		}
		switch {
		case err == nil:
			next += n
			r.advanced()
		case errors.Is(err, channel.ErrFull):
			// The channel waited keep-alive for room: wait for a consumer's
			// commit before trying again.
			r.waitFor(moved)
		default:
			r.fail("producer %d: %v", p, err)
			return
		}
	}
}

// consume takes random batches until every event has been delivered,
// rolling some back when r.rollbacks is set, and returns what it committed.
func (r *run) consume(c int, total int64) []delivery {
	rng := rand.New(rand.NewPCG(uint64(c), 2))
	var out []delivery
	for {
		moved := r.changes() // before the check: the last delivery's wake-up is not missed
		if r.delivered.Load() >= total || r.failed.Load() {
			return out
		}
		if r.stalled() {
			r.fail("consumer %d: no progress for %s with %d of %d events delivered", c, stallLimit, r.delivered.Load(), total)
			return out
		}
		tx := r.ch.Begin()
		got, err := tx.Take(1 + rng.IntN(maxBatch))
		if err != nil {
			_ = tx.Rollback()
			r.fail("consumer %d: take: %v", c, err)
			return out
		}
		if r.rollbacks && len(got) > 0 && rng.IntN(4) == 0 {
			if err := tx.Rollback(); err != nil {
				r.fail("consumer %d: rollback: %v", c, err)
				return out
			}
			continue
		}
		if err := tx.Commit(); err != nil {
			r.fail("consumer %d: commit: %v", c, err)
			return out
		}
		if len(got) == 0 {
			r.waitFor(moved) // for a producer's commit: channels that do not wait on empty return at once
			continue
		}
		for _, e := range got {
			p, errP := strconv.Atoi(e.Headers["p"])
			seq, errS := strconv.Atoi(e.Headers["seq"])
			if errP != nil || errS != nil || string(e.Body) != fmt.Sprintf("producer %d event %d", p, seq) {
				r.fail("consumer %d: mangled event %q %q", c, e.Headers, e.Body)
				return out
			}
			out = append(out, delivery{p, seq})
		}
		r.delivered.Add(int64(len(got)))
		r.advanced()
	}
}

// watchStats reads Stats while the others work, after every commit that
// moves events, for the race detector and for the bounds Size must keep.
func (r *run) watchStats(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-r.changes():
		}
		st := r.ch.Stats()
		if st.Size < 0 || st.Size > st.Capacity {
			r.fail("stats: size %d outside 0..%d", st.Size, st.Capacity)
			return
		}
		if st.PutSuccesses > st.PutAttempts || st.TakeSuccesses > st.PutSuccesses {
			r.fail("stats: inconsistent counters %+v", st)
			return
		}
	}
}
