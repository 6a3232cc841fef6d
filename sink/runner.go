package sink

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/flumed/flumed/internal/clock"
)

// RunnerOptions configure a Runner. Zero values take Flume's defaults.
type RunnerOptions struct {
	// BackoffStep and MaxBackoff: the k-th BACKOFF in a row sleeps
	// min(k × BackoffStep, MaxBackoff) (Flume: 1 s, 5 s).
	BackoffStep time.Duration
	MaxBackoff  time.Duration
	// ErrorSleep is the sleep after a failed Process (Flume: 5 s).
	ErrorSleep time.Duration
	// ErrorLogEvery rate-limits "unable to deliver event": the first failure is
	// logged, then at most one line per interval with the count suppressed
	// (default 1 min).
	ErrorLogEvery time.Duration
	// Empty, when set, tells Drain whether the group's channels are empty, so a
	// transient BACKOFF does not end a drain early. When nil, the first BACKOFF
	// while draining counts as empty.
	Empty func() bool
	// Clock times the sleeps and the error log's rate; nil is the wall
	// clock. Tests give a fake one to decide when a sleep ends.
	Clock clock.Clock
}

func (o *RunnerOptions) defaults() {
	if o.BackoffStep <= 0 {
		o.BackoffStep = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.ErrorSleep <= 0 {
		o.ErrorSleep = 5 * time.Second
	}
	if o.ErrorLogEvery <= 0 {
		o.ErrorLogEvery = time.Minute
	}
	o.Clock = clock.Or(o.Clock)
}

// Runner drives one processor from one goroutine (Flume's SinkRunner,
// FLUME.md §3.2): READY calls again at once, BACKOFF sleeps 1 s, 2 s, … 5 s,
// an error sleeps 5 s. Every sleep ends early on Stop, Drain or cancellation.
//
// Lifecycle, for the agent: start the group's sinks, then Start the runner.
// To stop, call Stop (take no new batch; the Process in flight finishes) or
// Drain (keep delivering until the channel is empty or the drain context ends,
// then stop; at the deadline the Process in flight is cancelled, so its take
// rolls back). Cancelling Start's context stops at once, cancelling the
// Process in flight as well. Stop the sinks only after Stop or Drain returns.
// Stop, Drain and Done may be called from any goroutine.
type Runner struct {
	name string
	p    Processor
	opts RunnerOptions
	log  *slog.Logger

	mu        sync.Mutex
	started   bool
	cancel    context.CancelFunc // cancels the context Process gets
	stop      chan struct{}      // closed: take no new batch
	stopOnce  sync.Once
	drain     chan struct{} // closed: drain mode
	drainOnce sync.Once
	done      chan struct{} // closed when the loop has exited
	drained   bool          // the loop ended because the channel was empty

	// Owned by the loop goroutine.
	failures   int       // consecutive failed calls
	suppressed int       // failures not logged since lastLogged
	lastLogged time.Time // when "unable to deliver event" was last logged

	onSleep func(time.Duration) // test seam: sees every sleep before it starts
}

// NewRunner makes a runner for processor p; name is the group (or sink) name
// used in log lines.
func NewRunner(name string, p Processor, opts RunnerOptions, log *slog.Logger) *Runner {
	opts.defaults()
	return &Runner{
		name:  name,
		p:     p,
		opts:  opts,
		log:   orDiscard(log),
		stop:  make(chan struct{}),
		drain: make(chan struct{}),
		done:  make(chan struct{}),
	}
}

// Start launches the runner's goroutine. Calling it again does nothing.
func (r *Runner) Start(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return
	}
	r.started = true
	ctx, r.cancel = context.WithCancel(ctx)
	go r.loop(ctx)
}

// Done is closed when the runner's goroutine has exited.
func (r *Runner) Done() <-chan struct{} { return r.done }

// Stop makes the runner take no new batch, waits for the Process in flight to
// finish, and returns when the goroutine has exited. Idempotent.
func (r *Runner) Stop() {
	if !r.isStarted() {
		return
	}
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.done
	r.cancel()
}

// Drain wakes the runner from any backoff sleep and keeps it delivering until
// a Process finds nothing to take (and Empty, if set, agrees), then stops it. It returns nil when the channel was drained, or ctx's error when ctx
// ended first: then the Process in flight is cancelled (its take rolls back)
// and the runner has stopped. It returns an error too when the runner had
// already been stopped before it drained.
func (r *Runner) Drain(ctx context.Context) error {
	if !r.isStarted() {
		return nil
	}
	r.drainOnce.Do(func() { close(r.drain) })
	select {
	case <-r.done:
	case <-ctx.Done():
		r.stopOnce.Do(func() { close(r.stop) })
		r.cancel()
		<-r.done
		return fmt.Errorf("drain %s: %w", r.name, ctx.Err())
	}
	r.cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.drained {
		return fmt.Errorf("drain %s: runner stopped before the channel was empty", r.name)
	}
	return nil
}

func (r *Runner) isStarted() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.started
}

func (r *Runner) loop(ctx context.Context) {
	defer close(r.done)
	backoffs := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.stop:
			return
		default:
		}
		draining := isClosed(r.drain)
		st, err := r.process(ctx)
		switch {
		case err != nil:
			r.logFailure(err)
			r.sleep(ctx, r.opts.ErrorSleep, draining)
		case st == Backoff:
			if draining && (r.opts.Empty == nil || r.opts.Empty()) {
				r.mu.Lock()
				r.drained = true
				r.mu.Unlock()
				return
			}
			backoffs++
			r.sleep(ctx, min(time.Duration(backoffs)*r.opts.BackoffStep, r.opts.MaxBackoff), draining)
		default:
			backoffs = 0
			if r.failures > 0 {
				r.log.Info("delivering again", "group", r.name, "after_failures", r.failures)
				r.failures, r.suppressed = 0, 0
			}
		}
	}
}

// process calls the processor, turning a panic into an error so one bad sink
// cannot bring the agent down (the engine rolls its takes back on the way out).
func (r *Runner) process(ctx context.Context) (st Status, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("sink panicked", "group", r.name, "panic", p, "stack", string(debug.Stack()))
			st, err = Backoff, fmt.Errorf("panic: %v", p)
		}
	}()
	return r.p.Process(ctx)
}

func (r *Runner) logFailure(err error) {
	r.failures++
	now := r.opts.Clock.Now()
	if r.failures > 1 && now.Sub(r.lastLogged) < r.opts.ErrorLogEvery {
		r.suppressed++
		return
	}
	r.log.Error("unable to deliver event", "group", r.name, "err", err,
		"consecutive_failures", r.failures, "suppressed", r.suppressed)
	r.lastLogged, r.suppressed = now, 0
}

// sleep waits d, or less when the runner is stopped, cancelled, or (when not
// yet draining) asked to drain.
func (r *Runner) sleep(ctx context.Context, d time.Duration, draining bool) {
	if r.onSleep != nil {
		r.onSleep(d)
	}
	drain := r.drain
	if draining {
		drain = nil // already draining: a closed channel would spin
	}
	select {
	case <-r.opts.Clock.After(d):
	case <-ctx.Done():
	case <-r.stop:
	case <-drain:
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
