package e2e

import (
	"context"
	"sync"
	"time"
)

// CounterWatch polls one counter of a process's /metrics and remembers when
// it went up. It measures when events reached a collector: its avro source's
// SOURCE.<name>.EventAcceptedCount goes up as soon as a batch is committed
// to its channel, before the collector's own sink (whose runner may sleep up
// to 5 s when idle) writes them out. Counters start again from 0 when the
// process restarts; the watch counts only increases.
type CounterWatch struct {
	Proc      *Proc
	Component string // "SOURCE.r1"
	Attr      string // "EventAcceptedCount"

	mu    sync.Mutex
	last  int64
	total int64
	steps []Step
}

// Step is one observed increase of a watched counter.
type Step struct {
	At    time.Time
	Delta int64
}

// Poll reads the counter once.
func (w *CounterWatch) Poll(ctx context.Context) {
	m, err := w.Proc.Metrics(ctx)
	if err != nil {
		return // down or restarting: nothing arrives there meanwhile
	}
	v := m.Int(w.Component, w.Attr)
	if v < 0 {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if v < w.last { // a new run of the process
		w.last = 0
	}
	if v > w.last {
		w.steps = append(w.steps, Step{At: now, Delta: v - w.last})
		w.total += v - w.last
		w.last = v
	}
}

// Run polls every interval until ctx ends.
func (w *CounterWatch) Run(ctx context.Context, interval time.Duration) {
	for {
		w.Poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// Total is the sum of all increases seen.
func (w *CounterWatch) Total() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total
}

// FirstAfter returns when the counter first went up at or after t.
func (w *CounterWatch) FirstAfter(t time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.steps {
		if !s.At.Before(t) {
			return s.At, true
		}
	}
	return time.Time{}, false
}

// Since is the sum of the increases seen at or after t.
func (w *CounterWatch) Since(t time.Time) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var n int64
	for _, s := range w.steps {
		if !s.At.Before(t) {
			n += s.Delta
		}
	}
	return n
}

// WaitFirstAfter polls until the counter goes up at or after t, or timeout
// passes; it returns the time of the increase.
func (w *CounterWatch) WaitFirstAfter(ctx context.Context, t time.Time, timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	for {
		if at, ok := w.FirstAfter(t); ok {
			return at, true
		}
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		select {
		case <-ctx.Done():
			return time.Time{}, false
		case <-time.After(10 * time.Millisecond):
		}
	}
}
