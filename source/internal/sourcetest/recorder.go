package sourcetest

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/source/sourceapi"
)

// Recorder is a BatchPutter that records the events it accepts. Its hooks
// are set before the source starts: Refuse is asked before each call
// (numbered from 1) whether to refuse it as a full channel would; Delay
// slows every call down, so a source lags behind a writer; During runs in
// each call before the answer, as whatever else happens while a channel
// takes a batch.
type Recorder struct {
	Refuse func(call int) bool
	Delay  time.Duration
	During func(call int)

	mu     sync.Mutex
	events []channel.Event
	calls  int
}

var _ sourceapi.BatchPutter = (*Recorder)(nil)

// PutBatch records events unless Refuse says no.
func (r *Recorder) PutBatch(evs []channel.Event) error {
	r.mu.Lock()
	r.calls++
	call := r.calls
	r.mu.Unlock()
	if r.Delay > 0 {
		time.Sleep(r.Delay) // a slow channel is what is simulated
	}
	if r.During != nil {
		r.During(call)
	}
	if r.Refuse != nil && r.Refuse(call) {
		return fmt.Errorf("put: %w", channel.ErrFull)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, evs...)
	return nil
}

// Bodies returns the bodies accepted so far, in order.
func (r *Recorder) Bodies() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.events))
	for i, e := range r.events {
		out[i] = string(e.Body)
	}
	return out
}

// Events returns the events accepted so far, in order.
func (r *Recorder) Events() []channel.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Count is how many events were accepted.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// Calls is how many times PutBatch was called, refused calls included.
func (r *Recorder) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}
