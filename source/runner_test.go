package source

// The pollable-source runner (FLUME.md §3.3): after Backoff it sleeps
// min(k × increment, max) with k the number of consecutive Backoffs; Ready
// resets k; an error sleeps max and leaves k alone; a panic counts as an
// error. Stop interrupts a sleep and returns once Run has returned.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/source/internal/sourcetest"
)

// scriptedPollable returns the scripted results in order, then Backoff
// forever; the string "panic" in the script makes Poll panic.
type scriptedPollable struct {
	inc, max time.Duration
	script   []any // Status, error, or "panic"

	mu    sync.Mutex
	calls int
	done  chan struct{} // closed when the script is used up
}

func (s *scriptedPollable) Name() string                             { return "fake" }
func (s *scriptedPollable) Start(context.Context, BatchPutter) error { return nil }
func (s *scriptedPollable) Stop() error                              { return nil }
func (s *scriptedPollable) Backoff() (time.Duration, time.Duration) {
	return s.inc, s.max
}

func (s *scriptedPollable) Poll(context.Context) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.calls
	s.calls++
	if i >= len(s.script) {
		if i == len(s.script) {
			close(s.done)
		}
		return Backoff, nil
	}
	switch v := s.script[i].(type) {
	case Status:
		return v, nil
	case error:
		return Ready, v
	default:
		panic("scripted panic")
	}
}

func TestRunnerBackoffSequence(t *testing.T) {
	src := &scriptedPollable{
		inc: 10 * time.Millisecond, max: 25 * time.Millisecond, done: make(chan struct{}),
		script: []any{Backoff, Backoff, Backoff, Ready, Backoff, errors.New("boom"), Backoff, "panic", Ready, Backoff},
	}
	r := NewRunner(src, sourcetest.DiscardLog())
	var mu sync.Mutex
	var slept []time.Duration
	r.sleep = func(ctx context.Context, d time.Duration) bool {
		mu.Lock()
		defer mu.Unlock()
		select {
		case <-src.done:
			return sleepCtx(ctx, time.Hour) // script over: idle until stopped
		default:
		}
		slept = append(slept, d)
		return true
	}
	go r.Run(context.Background())
	await.Done(t, "the script to be played", src.done)
	r.Stop()
	ms := time.Millisecond
	// 1, 2, 3 increments capped at 25; Ready resets; the error and the panic
	// sleep max without resetting; after Ready again the count restarts.
	want := []time.Duration{10 * ms, 20 * ms, 25 * ms, 10 * ms, 25 * ms, 20 * ms, 25 * ms, 10 * ms}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(slept, want) {
		t.Errorf("slept %v, want %v", slept, want)
	}
}

func TestRunnerStopInterruptsALongSleep(t *testing.T) {
	src := &scriptedPollable{inc: time.Hour, max: time.Hour, done: make(chan struct{})}
	r := NewRunner(src, sourcetest.DiscardLog())
	ran := make(chan struct{})
	go func() {
		r.Run(context.Background())
		close(ran)
	}()
	await.Done(t, "the first poll", src.done) // the runner now sleeps an hour
	r.Stop()
	// Run returned before Stop did; its goroutine closes ran a moment later.
	await.Done(t, "Run to return after Stop, not after its hour", ran)
	r.Stop() // idempotent
}

func TestRunnerEndsWithItsContext(t *testing.T) {
	src := &scriptedPollable{inc: time.Hour, max: time.Hour, done: make(chan struct{})}
	r := NewRunner(src, sourcetest.DiscardLog())
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		r.Run(ctx)
		close(ran)
	}()
	await.Done(t, "the first poll", src.done) // the runner now sleeps an hour
	cancel()
	await.Done(t, "Run to return once its context ended, not after its hour", ran)
	r.Stop()
}

func TestRunnerStoppedBeforeRunDoesNothing(t *testing.T) {
	src := &scriptedPollable{inc: time.Millisecond, max: time.Millisecond, done: make(chan struct{})}
	r := NewRunner(src, sourcetest.DiscardLog())
	r.Stop()
	r.Run(context.Background())
	if src.calls != 0 {
		t.Errorf("Poll called %d times after Stop", src.calls)
	}
}
