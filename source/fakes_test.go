package source

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
)

// fakeChannel is a channel.Channel that keeps committed events in memory and
// can be told to refuse puts, so tests see exactly what was committed, staged,
// rolled back and refused.
type fakeChannel struct {
	name string

	mu        sync.Mutex
	committed []channel.Event
	commitAt  []time.Time // when each committed batch landed
	refuse    int         // refuse this many Put calls (-1: all) with refuseErr
	refuseErr error
	txCap     int // most events per transaction; 0 is unlimited
	puts      int
	rollbacks int
	open      int // transactions begun and not finished
}

func newFakeChannel(name string) *fakeChannel {
	return &fakeChannel{name: name, refuseErr: channel.ErrFull}
}

func (f *fakeChannel) Name() string { return f.name }

func (f *fakeChannel) Begin() channel.Txn {
	f.mu.Lock()
	f.open++
	f.mu.Unlock()
	return &fakeTxn{ch: f}
}

func (f *fakeChannel) Stats() channel.Stats { return channel.Stats{Type: "fake"} }
func (f *fakeChannel) Close() error         { return nil }

// setRefuse makes the next n Put calls fail (-1: every call until changed).
func (f *fakeChannel) setRefuse(n int) {
	f.mu.Lock()
	f.refuse = n
	f.mu.Unlock()
}

// bodies returns the committed bodies as strings, in commit order.
func (f *fakeChannel) bodies() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.committed))
	for i, ev := range f.committed {
		out[i] = string(ev.Body)
	}
	return out
}

func (f *fakeChannel) events() []channel.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.committed)
}

type fakeTxn struct {
	ch     *fakeChannel
	staged []channel.Event
	done   bool
}

func (t *fakeTxn) Put(events ...channel.Event) error {
	f := t.ch
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.done {
		return channel.ErrTxnDone
	}
	f.puts++
	if f.refuse != 0 {
		if f.refuse > 0 {
			f.refuse--
		}
		return fmt.Errorf("fake %s: %w", f.name, f.refuseErr)
	}
	if f.txCap > 0 && len(t.staged)+len(events) > f.txCap {
		return channel.ErrTxnFull
	}
	t.staged = append(t.staged, events...)
	return nil
}

func (t *fakeTxn) Take(int) ([]channel.Event, error) { return nil, channel.ErrMixed }

func (t *fakeTxn) Commit() error {
	f := t.ch
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.done {
		return channel.ErrTxnDone
	}
	t.done = true
	f.open--
	f.committed = append(f.committed, t.staged...)
	f.commitAt = append(f.commitAt, time.Now())
	return nil
}

func (t *fakeTxn) Rollback() error {
	f := t.ch
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.done {
		return channel.ErrTxnDone
	}
	t.done = true
	f.open--
	f.rollbacks++
	t.staged = nil
	return nil
}

// logBuffer is a concurrency-safe text log sink for tests that assert what
// was logged.
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

func newTestLog() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// props turns "key = value" lines into a map for config.FromMap, so tests read
// like the .properties files they stand for.
func props(t *testing.T, text string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("bad property line %q", line)
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return m
}

// problems finishes c and returns its errors as strings.
func problems(c *config.Context) []string {
	c.Finish()
	var out []string
	for _, p := range c.Problems().Errors() {
		out = append(out, p.String())
	}
	return out
}

// waitFor polls cond until it holds or 20 s pass (generous: the taildir
// tests wait on fsyncs and rescans on a loaded machine).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recordingPutter is a BatchPutter that returns scripted errors and
// records what it accepted.
type recordingPutter struct {
	mu       sync.Mutex
	errs     []error // returned in order, then nil
	accepted [][]channel.Event
	calls    int
}

func (r *recordingPutter) PutBatch(events []channel.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if len(r.errs) > 0 {
		err := r.errs[0]
		r.errs = r.errs[1:]
		if err != nil {
			return err
		}
	}
	r.accepted = append(r.accepted, slices.Clone(events))
	return nil
}
