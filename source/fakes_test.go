package source

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/source/internal/sourcetest"
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

// newTestLog returns a logger and what it logged, for tests that assert it.
func newTestLog() (*slog.Logger, *sourcetest.Log) {
	l := &sourcetest.Log{}
	return l.Logger(), l
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
