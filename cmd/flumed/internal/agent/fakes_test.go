package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/sink"
	"github.com/flumed/flumed/source"
)

func TestMain(m *testing.M) {
	// lumberjack v2.2.1's goroutine that removes old log files never ends
	// (there is no way to stop it): one per log file, for the process's life.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("gopkg.in/natefinch/lumberjack%2ev2.(*Logger).millRun"))
}

// recorder keeps the lifecycle calls of the recording components, in order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// faults scripts failures of the recording components by name.
type faults struct {
	openFailures  map[string]*atomic.Int64 // channel -> Open calls left to fail
	startFailures map[string]*atomic.Int64 // sink or source -> Start calls left to fail
	startPanics   map[string]*atomic.Int64 // sink -> Start calls left to panic
	slowSink      time.Duration            // sleep per delivered batch
	failDelivery  atomic.Bool              // every sink Process fails (events roll back)

	// hold, when set, keeps every sink from taking until it is closed, so a
	// test can read a channel's state before any sink can change it.
	hold chan struct{}
	// onSourceStop, when set, runs as a source's Stop begins: the moment
	// the agent's stop starts, before its drain.
	onSourceStop func()
	// retryHold, when set, keeps a channel or sink whose scripted failures
	// are used up from opening or starting until it is closed, so a test
	// can look at the agent between the first attempts and the retries.
	retryHold chan struct{}
}

func failTimes(n int64) *atomic.Int64 {
	v := &atomic.Int64{}
	v.Store(n)
	return v
}

func (f *faults) fail(m map[string]*atomic.Int64, name string) bool {
	if c := m[name]; c != nil && c.Add(-1) >= 0 {
		return true
	}
	return false
}

// retried reports whether name's scripted failures in m are used up: the
// call after fail returned false for them is a retry.
func (f *faults) retried(m map[string]*atomic.Int64, name string) bool {
	c := m[name]
	return c != nil && c.Load() < 0
}

// recordingRegistries are the real registries with every channel, sink and
// source wrapped so that Open/Close and Start/Stop are recorded and can be
// made to fail.
func recordingRegistries(rec *recorder, f *faults) *registries {
	real := realRegistries()
	r := *real
	r.channels = wrapFactories(real.channels, func(inner channel.Factory) channel.Factory {
		return func(name string, c *config.Context) (channel.Spec, error) {
			spec, err := inner(name, c)
			if err != nil {
				return nil, err
			}
			return &recSpec{Spec: spec, rec: rec, f: f}, nil
		}
	})
	r.sinks = wrapFactories(real.sinks, func(inner sink.Factory) sink.Factory {
		return func(name string, c *config.Context, log *slog.Logger) (sink.Sink, error) {
			s, err := inner(name, c, log)
			if err != nil {
				return nil, err
			}
			return &recSink{Sink: s, rec: rec, f: f}, nil
		}
	})
	r.sources = wrapFactories(real.sources, func(inner source.Factory) source.Factory {
		return func(name string, c *config.Context, log *slog.Logger) (source.Source, error) {
			s, err := inner(name, c, log)
			if err != nil {
				return nil, err
			}
			p, ok := s.(source.Pollable)
			if !ok {
				return nil, errors.New("recording sources must be pollable")
			}
			return &recSource{Pollable: p, rec: rec, f: f}, nil
		}
	})
	return &r
}

// wrapFactories is reg with every factory wrapped, and extra types added.
func wrapFactories[F any](reg *config.Registry[F], wrap func(F) F, extra ...config.Entry[F]) *config.Registry[F] {
	var entries []config.Entry[F]
	for _, e := range reg.Entries() {
		entries = append(entries, config.Entry[F]{Spec: e.Spec, New: wrap(e.New)})
	}
	return config.NewRegistry(reg.Kind(), append(entries, extra...), reg.Unsupported())
}

type recSpec struct {
	channel.Spec
	rec *recorder
	f   *faults
}

func (s *recSpec) Open(name string, log *slog.Logger) (channel.Channel, error) {
	if s.f.fail(s.f.openFailures, name) {
		s.rec.add("open %s failed", name)
		return nil, errors.New("scripted open failure")
	}
	if s.f.retryHold != nil && s.f.retried(s.f.openFailures, name) {
		<-s.f.retryHold
	}
	ch, err := s.Spec.Open(name, log)
	if err != nil {
		return nil, err
	}
	s.rec.add("open %s", name)
	return &recChannel{Channel: ch, rec: s.rec}, nil
}

type recChannel struct {
	channel.Channel
	rec *recorder
}

func (c *recChannel) Close() error {
	c.rec.add("close %s (size %d)", c.Name(), c.Stats().Size)
	return c.Channel.Close()
}

type recSink struct {
	sink.Sink
	rec *recorder
	f   *faults
}

func (s *recSink) Start(ctx context.Context, ch channel.Channel) error {
	if s.f.fail(s.f.startPanics, s.Name()) {
		s.rec.add("start %s panicked", s.Name())
		panic("scripted panic")
	}
	if s.f.fail(s.f.startFailures, s.Name()) {
		s.rec.add("start %s failed", s.Name())
		return errors.New("scripted start failure")
	}
	if s.f.retryHold != nil && (s.f.retried(s.f.startPanics, s.Name()) || s.f.retried(s.f.startFailures, s.Name())) {
		select {
		case <-s.f.retryHold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.rec.add("start %s", s.Name())
	return s.Sink.Start(ctx, ch)
}

func (s *recSink) Process(ctx context.Context) (sink.Status, error) {
	if s.f.hold != nil {
		select {
		case <-s.f.hold:
		case <-ctx.Done():
			return sink.Backoff, nil
		}
	}
	if s.f.failDelivery.Load() {
		// Take a batch and roll it back, as a sink whose next hop is down.
		return sink.Backoff, errors.New("scripted delivery failure")
	}
	st, err := s.Sink.Process(ctx)
	if st == sink.Ready && s.f.slowSink > 0 {
		// Not a wait: this sleep is the slow next hop being simulated.
		time.Sleep(s.f.slowSink)
	}
	return st, err
}

func (s *recSink) Stop() error {
	s.rec.add("stop %s", s.Name())
	return s.Sink.Stop()
}

type recSource struct {
	source.Pollable
	rec *recorder
	f   *faults
}

func (s *recSource) Start(ctx context.Context, p source.BatchPutter) error {
	if s.f.fail(s.f.startFailures, s.Name()) {
		s.rec.add("start %s failed", s.Name())
		return errors.New("scripted start failure")
	}
	s.rec.add("start %s", s.Name())
	return s.Pollable.Start(ctx, p)
}

func (s *recSource) Stop() error {
	if s.f.onSourceStop != nil {
		s.f.onSourceStop()
	}
	s.rec.add("stop %s", s.Name())
	return s.Pollable.Stop()
}

func (s *recSource) FlumeMetrics() map[string]string {
	if m, ok := s.Pollable.(interface{ FlumeMetrics() map[string]string }); ok {
		return m.FlumeMetrics()
	}
	return nil
}

// agentFrom parses a .properties snippet, builds its only agent, and fails
// the test on any configuration error.
func agentFrom(t *testing.T, text string, opts Options) *Agent {
	t.Helper()
	ca := config.Build(config.Options{}, config.Source{Name: "t.properties", Data: []byte(text)}).Agent("")
	a, err := Build(ca, opts)
	if err != nil {
		t.Fatalf("build:\n%v", err)
	}
	return a
}

// buildErrors builds a snippet that must fail and returns its messages.
func buildErrors(t *testing.T, text string) []string {
	t.Helper()
	ca := config.Build(config.Options{}, config.Source{Name: "t.properties", Data: []byte(text)}).Agent("")
	_, err := Build(ca, Options{})
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("want a *config.Error, got %v", err)
	}
	out := []string{}
	for _, p := range ce.Problems {
		out = append(out, p.String())
	}
	return out
}

// fastOptions make every wait of the agent short.
func fastOptions(log *slog.Logger) Options {
	return Options{
		Log:          log,
		DrainTimeout: 2 * time.Second,
		RestartMin:   10 * time.Millisecond,
		RestartMax:   40 * time.Millisecond,
		SinkRunner:   sink.RunnerOptions{BackoffStep: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, ErrorSleep: 20 * time.Millisecond},
	}
}

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
