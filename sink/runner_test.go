package sink

// The runner is Flume's SinkRunner (FLUME.md §3.2): READY calls again at once,
// the k-th BACKOFF in a row sleeps min(k × step, max), an error sleeps the
// error sleep and is logged ("unable to deliver event", rate-limited). Sleeps
// end early on Stop, Drain and cancellation. Stop lets the Process in flight
// finish; Drain delivers until the channel is empty or its context ends, and
// at that deadline cancels the Process in flight.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
)

// scriptProcessor returns results from a script, then repeats the last one.
type scriptProcessor struct {
	mu     sync.Mutex
	script []func(ctx context.Context) (Status, error)
	calls  int
	called chan struct{} // receives after each call, if not full
}

func newScriptProcessor(script ...func(ctx context.Context) (Status, error)) *scriptProcessor {
	return &scriptProcessor{script: script, called: make(chan struct{}, 1)}
}

func (p *scriptProcessor) Process(ctx context.Context) (Status, error) {
	p.mu.Lock()
	i := min(p.calls, len(p.script)-1)
	p.calls++
	f := p.script[i]
	p.mu.Unlock()
	st, err := f(ctx)
	select {
	case p.called <- struct{}{}:
	default:
	}
	return st, err
}

func (p *scriptProcessor) Sinks() []Sink { return nil }

func ret(st Status, err error) func(context.Context) (Status, error) {
	return func(context.Context) (Status, error) { return st, err }
}

// sleepRecorder collects the runner's requested sleeps and stops the runner
// after n of them.
type sleepRecorder struct {
	mu    sync.Mutex
	got   []time.Duration
	n     int
	full  chan struct{}
	fired bool
}

func newSleepRecorder(n int) *sleepRecorder { return &sleepRecorder{n: n, full: make(chan struct{})} }

func (s *sleepRecorder) record(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, d)
	if len(s.got) >= s.n && !s.fired {
		s.fired = true
		close(s.full)
	}
}

func (s *sleepRecorder) sleeps() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got[:s.n])
}

func TestRunnerBackoffSleepsGrowToTheMaxAndReadyResetsThem(t *testing.T) {
	const ms = time.Millisecond
	b := ret(Backoff, nil)
	p := newScriptProcessor(b, b, b, b, b, ret(Ready, nil), b, b)
	rec := newSleepRecorder(7)
	r := NewRunner("g1", p, RunnerOptions{BackoffStep: ms, MaxBackoff: 3 * ms}, nil)
	r.onSleep = rec.record
	r.Start(context.Background())
	await.Done(t, "seven sleeps", rec.full)
	r.Stop()
	want := []time.Duration{1 * ms, 2 * ms, 3 * ms, 3 * ms, 3 * ms, 1 * ms, 2 * ms}
	if got := rec.sleeps(); !slices.Equal(got, want) {
		t.Fatalf("sleeps = %v, want %v", got, want)
	}
}

func TestRunnerFlumeDefaults(t *testing.T) {
	r := NewRunner("g1", newScriptProcessor(ret(Ready, nil)), RunnerOptions{}, nil)
	if r.opts.BackoffStep != time.Second || r.opts.MaxBackoff != 5*time.Second || r.opts.ErrorSleep != 5*time.Second {
		t.Fatalf("defaults = %+v, want 1s/5s/5s", r.opts)
	}
}

func TestRunnerErrorSleepsAndLogsRateLimited(t *testing.T) {
	const ms = time.Millisecond
	fail := ret(Backoff, errors.New("collector down"))
	p := newScriptProcessor(fail, fail, fail, fail, fail, ret(Ready, nil), ret(Backoff, nil))
	rec := newSleepRecorder(6)
	log, logs := newTestLogger()
	r := NewRunner("g1", p, RunnerOptions{BackoffStep: 2 * ms, ErrorSleep: 7 * ms, ErrorLogEvery: time.Hour}, log)
	r.onSleep = rec.record
	r.Start(context.Background())
	await.Done(t, "six sleeps", rec.full)
	r.Stop()
	// An error does not reset the BACKOFF count in Flume, but READY does: the
	// BACKOFF after the READY sleeps one step.
	want := []time.Duration{7 * ms, 7 * ms, 7 * ms, 7 * ms, 7 * ms, 2 * ms}
	if got := rec.sleeps(); !slices.Equal(got, want) {
		t.Fatalf("sleeps = %v, want %v", got, want)
	}
	out := logs.String()
	if n := strings.Count(out, "unable to deliver event"); n != 1 {
		t.Fatalf("logged %d failures, want 1 (rate-limited):\n%s", n, out)
	}
	if !strings.Contains(out, "collector down") || !strings.Contains(out, "delivering again") || !strings.Contains(out, "after_failures=5") {
		t.Fatalf("log misses the error or the recovery:\n%s", out)
	}
}

func TestRunnerStopsPromptlyWhenTheContextIsCancelled(t *testing.T) {
	p := newScriptProcessor(ret(Backoff, nil))
	r := NewRunner("g1", p, RunnerOptions{BackoffStep: time.Hour, MaxBackoff: time.Hour}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	r.Start(ctx)
	await.Done(t, "the first Process", p.called)
	cancel() // the runner is in its hour-long sleep
	await.Done(t, "the runner to exit", r.Done())
}

func TestRunnerStopLetsTheProcessInFlightFinish(t *testing.T) {
	release, inFlight := make(chan struct{}), make(chan struct{})
	var sawCancel bool
	p := newScriptProcessor(func(ctx context.Context) (Status, error) {
		close(inFlight)
		<-release
		sawCancel = ctx.Err() != nil
		return Ready, nil
	})
	r := NewRunner("g1", p, RunnerOptions{}, nil)
	r.Start(context.Background())
	await.Done(t, "Process to start", inFlight)
	stopped := make(chan struct{})
	go func() { r.Stop(); close(stopped) }()
	// Once Stop has told the loop to stop, all it may do is wait for it.
	await.Never(t, "Stop returning while Process was still running",
		func() bool { return isClosed(stopped) }, func() bool { return isClosed(r.stop) })
	close(release)
	await.Done(t, "Stop", stopped)
	if sawCancel {
		t.Fatal("Stop cancelled the Process in flight")
	}
	if p.calls != 1 {
		t.Fatalf("Process called %d times, want 1 (no new batch after Stop)", p.calls)
	}
}

func TestRunnerDrainEmptiesTheChannelThenStops(t *testing.T) {
	ch := newFakeChannel(nil)
	s := NewNull("k1", 100, nil)
	if err := s.Start(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	rec := newSleepRecorder(1)
	r := NewRunner("k1", NewDefault(s), RunnerOptions{BackoffStep: time.Hour, MaxBackoff: time.Hour}, nil)
	r.onSleep = rec.record
	r.Start(context.Background())
	await.Done(t, "the runner to sleep on an empty channel", rec.full)
	ch.put(numbered(1050)...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Drain(ctx); err != nil {
		t.Fatalf("Drain = %v", err)
	}
	if n := ch.size(); n != 0 {
		t.Fatalf("%d events left after Drain", n)
	}
	// The empty take before the put, 11 batches, and the empty take that ended the drain.
	if ch.commits != 13 {
		t.Fatalf("%d commits, want 13", ch.commits)
	}
	await.Done(t, "the runner to exit", r.Done())
	r.Stop() // idempotent after Drain
}

func TestRunnerDrainWaitsForEmptyDespiteATransientBackoff(t *testing.T) {
	var mu sync.Mutex
	left := 3
	p := newScriptProcessor(func(context.Context) (Status, error) {
		mu.Lock()
		defer mu.Unlock()
		if left == 3 { // a dead sink's retry says BACKOFF with events queued
			left--
			return Backoff, nil
		}
		if left == 0 {
			return Backoff, nil
		}
		left--
		return Ready, nil
	})
	empty := func() bool { mu.Lock(); defer mu.Unlock(); return left == 0 }
	r := NewRunner("g1", p, RunnerOptions{BackoffStep: time.Millisecond, Empty: empty}, nil)
	r.Start(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Drain(ctx); err != nil {
		t.Fatalf("Drain = %v", err)
	}
	if !empty() {
		t.Fatal("Drain stopped at the transient BACKOFF")
	}
}

func TestRunnerDrainDeadlineCancelsTheProcessInFlight(t *testing.T) {
	cancelled := make(chan struct{})
	p := newScriptProcessor(func(ctx context.Context) (Status, error) {
		<-ctx.Done() // a delivery that hangs until cancelled
		close(cancelled)
		return Backoff, ctx.Err()
	})
	r := NewRunner("g1", p, RunnerOptions{}, nil)
	r.Start(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := r.Drain(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain = %v, want a deadline error", err)
	}
	await.Done(t, "the Process in flight to be cancelled", cancelled)
	await.Done(t, "the runner to exit", r.Done())
}

func TestRunnerSurvivesAPanickingSink(t *testing.T) {
	p := newScriptProcessor(func(context.Context) (Status, error) { panic("bug in sink") }, ret(Ready, nil))
	rec := newSleepRecorder(1)
	log, logs := newTestLogger()
	r := NewRunner("g1", p, RunnerOptions{ErrorSleep: time.Millisecond}, log)
	r.onSleep = rec.record
	r.Start(context.Background())
	await.Done(t, "the error sleep", rec.full)
	r.Stop()
	if !strings.Contains(logs.String(), "bug in sink") {
		t.Fatalf("panic not logged:\n%s", logs.String())
	}
}

func TestRunnerStopAndDrainBeforeStartDoNothing(t *testing.T) {
	r := NewRunner("g1", newScriptProcessor(ret(Ready, nil)), RunnerOptions{}, nil)
	r.Stop()
	if err := r.Drain(context.Background()); err != nil {
		t.Fatalf("Drain before Start = %v", err)
	}
}
