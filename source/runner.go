package source

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/flumed/flumed/source/internal/logthrottle"
)

// Runner drives a Pollable source (Flume's PollableSourceRunner, FLUME.md
// §3.3): it calls Poll in a loop; after Backoff it sleeps
// min(k × increment, max), where k counts consecutive Backoff results and
// Ready resets it; after an error (or a panic, which it recovers and logs) it
// sleeps max without touching k. Sleeps end at once when the runner stops.
//
// The agent starts a pollable source with src.Start(ctx, channelProcessor), then runs
// `go runner.Run(ctx)`; to stop it calls runner.Stop() (which returns once Run
// has returned, so no Poll call is in flight) and then src.Stop().
type Runner struct {
	src Pollable
	log *slog.Logger
	// sleep waits d or until ctx ends, reporting whether it waited the whole
	// time; tests replace it to record the backoff sequence.
	sleep func(ctx context.Context, d time.Duration) bool
	errs  *logthrottle.Log

	stopOnce sync.Once
	stop     chan struct{}
	mu       sync.Mutex
	stopped  bool
	done     chan struct{} // closed when Run returns; nil before Run
}

// NewRunner returns a runner for src. It does not start anything.
func NewRunner(src Pollable, log *slog.Logger) *Runner {
	return &Runner{
		src:   src,
		log:   log,
		sleep: sleepCtx,
		errs:  logthrottle.New(log, logthrottle.DefaultEvery),
		stop:  make(chan struct{}),
	}
}

// Run polls the source until ctx ends or Stop is called. Call it once, from
// the goroutine that owns the loop; it blocks. If Stop was called first, Run
// returns at once.
func (r *Runner) Run(ctx context.Context) {
	r.mu.Lock()
	if r.stopped || r.done != nil {
		r.mu.Unlock()
		return
	}
	r.done = make(chan struct{})
	r.mu.Unlock()
	defer close(r.done)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()

	consecutive := 0
	for ctx.Err() == nil {
		status, err := r.poll(ctx)
		inc, maxSleep := r.src.Backoff()
		switch {
		case err != nil:
			r.errs.Error("process", "source failed; backing off", slog.Duration("sleep", maxSleep), slog.Any("err", err))
			r.sleep(ctx, maxSleep)
		case status == Backoff:
			consecutive++
			d := inc * time.Duration(consecutive)
			if d > maxSleep || d < 0 || consecutive > 1<<20 {
				d = maxSleep
			}
			r.sleep(ctx, d)
		default:
			consecutive = 0
		}
	}
}

// poll calls Poll once, turning a panic into an error so one bad input
// cannot take the agent down.
func (r *Runner) poll(ctx context.Context) (st Status, err error) {
	defer func() {
		if v := recover(); v != nil {
			r.log.Error("source panicked", slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("panic in Poll: %v", v)
		}
	}()
	return r.src.Poll(ctx)
}

// Stop makes Run return and waits until it has. It is idempotent and safe to
// call from any goroutine, also when Run was never called.
func (r *Runner) Stop() {
	r.stopOnce.Do(func() { close(r.stop) })
	r.mu.Lock()
	r.stopped = true
	done := r.done
	r.mu.Unlock()
	if done != nil {
		<-done
	}
}

// sleepCtx waits d, or less when ctx ends; it reports whether it waited the
// whole time.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
