package sourcetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/source/sourceapi"
)

// Poller polls a started source in a loop, as the runner does, but backs
// off only 2 ms, so tests need no long waits.
type Poller struct {
	stop func()

	mu     sync.Mutex
	starts []time.Time // start times of the polls that completed
}

// Run starts src with out and polls it until Stop, which also stops src;
// the test's cleanup stops it too.
func Run(t testing.TB, src sourceapi.Pollable, out sourceapi.BatchPutter) *Poller {
	t.Helper()
	if err := src.Start(context.Background(), out); err != nil {
		t.Fatalf("start: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	p := &Poller{}
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			start := time.Now()
			st, err := src.Poll(ctx)
			if err != nil {
				t.Errorf("poll: %v", err)
			}
			p.mu.Lock()
			p.starts = append(p.starts, start)
			p.mu.Unlock()
			if st == sourceapi.Backoff {
				select {
				case <-ctx.Done():
				case <-time.After(2 * time.Millisecond): // the runner's backoff, shortened
				}
			}
		}
	}()
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			cancel()
			<-done
			if err := src.Stop(); err != nil {
				t.Errorf("stop: %v", err)
			}
		})
	}
	t.Cleanup(p.stop)
	return p
}

// Stop ends the loop and stops the source. It is idempotent.
func (p *Poller) Stop() { p.stop() }

// PolledSince is how many polls that started after t have completed.
func (p *Poller) PolledSince(t time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for i := len(p.starts) - 1; i >= 0 && p.starts[i].After(t); i-- {
		n++
	}
	return n
}

// Settle waits until r holds n events, then proves that no more arrive
// while the source goes on working: until three polls that started more
// than quiet after the n-th event have completed, each poll having run
// the source's periodic work (rescans, idle checks) that falls due within
// quiet. A late duplicate shows as a count above n.
func Settle(t testing.TB, r *Recorder, n int, p *Poller, quiet time.Duration) {
	t.Helper()
	await.True(t, fmt.Sprintf("%d events", n), func() bool { return r.Count() >= n })
	after := time.Now().Add(quiet)
	await.Never(t, fmt.Sprintf("an event beyond the %d expected", n),
		func() bool { return r.Count() > n },
		func() bool { return p.PolledSince(after) >= 3 })
}
