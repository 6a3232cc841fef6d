package sink

// Test doubles shared by this package's tests: a transactional in-memory
// channel with fault injection and an operation trace, scripted sinks and a log
// capture. The fake channel follows the channel contract that
// matters here: takes come from the head, a rollback returns them to the head
// in order, a failed Commit leaves the transaction rolled back.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/hdfstest"
)

// TestMain stops the real HDFS the hdfs sink's tests started, if any,
// before goleak looks for goroutines left behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(hdfstest.Main(m)) }

// trace records operations from several fakes in one order.
type trace struct {
	mu  sync.Mutex
	ops []string
}

func (t *trace) add(format string, args ...any) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ops = append(t.ops, fmt.Sprintf(format, args...))
}

func (t *trace) list() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.ops...)
}

type fakeChannel struct {
	name string
	tr   *trace

	mu        sync.Mutex
	queue     []channel.Event
	takeErr   error // returned by the next Take
	commitErr error // returned by the next Commit
	commits   int
	rollbacks int
}

func newFakeChannel(tr *trace) *fakeChannel { return &fakeChannel{name: "c1", tr: tr} }

func (c *fakeChannel) Name() string         { return c.name }
func (c *fakeChannel) Stats() channel.Stats { return channel.Stats{Size: int64(c.size())} }
func (c *fakeChannel) Close() error         { return nil }
func (c *fakeChannel) Begin() channel.Txn   { return &fakeTxn{ch: c} }
func (c *fakeChannel) put(es ...channel.Event) {
	c.mu.Lock()
	c.queue = append(c.queue, es...)
	c.mu.Unlock()
}

func (c *fakeChannel) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

// bodies returns the queued bodies as strings, head first.
func (c *fakeChannel) bodies() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.queue))
	for i, e := range c.queue {
		out[i] = string(e.Body)
	}
	return out
}

type fakeTxn struct {
	ch    *fakeChannel
	taken []channel.Event
	done  bool
}

func (t *fakeTxn) Put(...channel.Event) error { return errors.New("fake channel: put not supported") }

func (t *fakeTxn) Take(max int) ([]channel.Event, error) {
	if t.done {
		return nil, channel.ErrTxnDone
	}
	c := t.ch
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.takeErr; err != nil {
		c.takeErr = nil
		return nil, err
	}
	n := min(max, len(c.queue))
	out := append([]channel.Event(nil), c.queue[:n]...)
	c.queue = c.queue[n:]
	t.taken = append(t.taken, out...)
	c.tr.add("take %d", n)
	return out, nil
}

func (t *fakeTxn) Commit() error {
	if t.done {
		return channel.ErrTxnDone
	}
	t.ch.mu.Lock()
	err := t.ch.commitErr
	t.ch.commitErr = nil
	t.ch.mu.Unlock()
	if err != nil {
		_ = t.Rollback()
		return err
	}
	t.done = true
	t.ch.mu.Lock()
	t.ch.commits++
	t.ch.mu.Unlock()
	t.ch.tr.add("commit")
	return nil
}

func (t *fakeTxn) Rollback() error {
	if t.done {
		return channel.ErrTxnDone
	}
	t.done = true
	c := t.ch
	c.mu.Lock()
	c.queue = append(append([]channel.Event(nil), t.taken...), c.queue...)
	c.rollbacks++
	c.mu.Unlock()
	c.tr.add("rollback")
	return nil
}

// bodyEvents makes events whose bodies are the given strings.
func bodyEvents(bodies ...string) []channel.Event {
	out := make([]channel.Event, len(bodies))
	for i, b := range bodies {
		out[i] = channel.Event{Headers: map[string]string{}, Body: []byte(b)}
	}
	return out
}

// numbered makes n events with bodies e0, e1, ….
func numbered(n int) []channel.Event {
	out := make([]channel.Event, n)
	for i := range out {
		out[i] = channel.Event{Body: []byte(fmt.Sprintf("e%d", i))}
	}
	return out
}

// scriptSink is a sink whose Process result is set by the test. Every call is
// recorded in the shared trace as its name.
type scriptSink struct {
	name string
	tr   *trace

	mu    sync.Mutex
	st    Status
	err   error
	calls int
}

func newScriptSink(name string, tr *trace) *scriptSink {
	return &scriptSink{name: name, tr: tr, st: Ready}
}

func (s *scriptSink) set(st Status, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st, s.err = st, err
}

func (s *scriptSink) ready()   { s.set(Ready, nil) }
func (s *scriptSink) backoff() { s.set(Backoff, nil) }
func (s *scriptSink) fail()    { s.set(Backoff, fmt.Errorf("%s: connection refused", s.name)) }

func (s *scriptSink) Name() string                                 { return s.name }
func (s *scriptSink) Start(context.Context, channel.Channel) error { return nil }
func (s *scriptSink) Stop() error                                  { return nil }

func (s *scriptSink) Process(context.Context) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.tr.add("%s", s.name)
	return s.st, s.err
}

func sinks(ss ...*scriptSink) []Sink {
	out := make([]Sink, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// logBuffer is a goroutine-safe destination for a text slog logger.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// checkedSink is the factory of a registered sink type that checks its
// context against the type's spec first, as the agent does.
func checkedSink(typ string) Factory {
	f, ok := Lookup(typ)
	if !ok {
		panic("sink type " + typ + " is not registered")
	}
	return f
}

// checkedProcessor is checkedSink for sink processors.
func checkedProcessor(typ string) ProcessorFactory {
	f, ok := ProcessorLookup(typ)
	if !ok {
		panic("sink processor type " + typ + " is not registered")
	}
	return f
}
