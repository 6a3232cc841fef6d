package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/flumed/flumed/internal/clock"
	"github.com/flumed/flumed/sink"
)

// DefaultFailingAfter is how long every sink of a group may fail before
// /readyz says the agent is not ready: 60 s, Fluent Bit's HC_Period. A
// collector restarting, or a failover group switching, takes seconds; a
// minute of every delivery failing is an outage an orchestrator should see.
const DefaultFailingAfter = 60 * time.Second

// deliveryHealth stands between a sink group's runner and its processor
// and remembers since when every delivery failed: a processor's Process
// returns an error only when every eligible sink failed (sink.Processor).
// A batch delivered ends the streak; a Process that found nothing to take
// says nothing either way and changes nothing.
type deliveryHealth struct {
	sink.Processor
	clock clock.Clock

	mu    sync.Mutex
	since time.Time // the first failure of the current streak; zero if none
}

func (h *deliveryHealth) Process(ctx context.Context) (sink.Status, error) {
	st, err := h.Processor.Process(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err != nil && h.since.IsZero():
		h.since = h.clock.Now()
	case err == nil && st == sink.Ready:
		h.since = time.Time{}
	}
	return st, err
}

// failingFor is how long every delivery has failed; zero when the last
// delivery succeeded (or none failed yet).
func (h *deliveryHealth) failingFor() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.since.IsZero() {
		return 0
	}
	return h.clock.Now().Sub(h.since)
}

// Ready reports whether the agent is ready to take traffic, and if not,
// why: one reason per part that is not. It is not ready before it starts
// and from the moment its stop begins (the drain), while a part is not
// running (it failed to start, or waits for a channel), and while every
// sink of a group has failed for longer than Options.FailingAfter.
func (a *Agent) Ready() (bool, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case !a.started:
		return false, []string{"agent " + a.name + ": not started"}
	case a.stopped:
		return false, []string{"agent " + a.name + ": stopping (sources stopped, sinks draining)"}
	}
	var why []string
	for _, st := range a.stages {
		for _, s := range st.units {
			if !s.up.Load() {
				r := s.u.id() + ": not running"
				if n := s.failures.Load(); n > 0 {
					r += fmt.Sprintf(" (%d failed starts)", n)
				} else if !depsReady(s.u) {
					r += " (waiting for its channels)"
				}
				why = append(why, r)
				continue
			}
			if g, ok := s.u.(*groupUnit); ok {
				if d := g.health.failingFor(); d > a.opts.FailingAfter {
					why = append(why, fmt.Sprintf("%s: every sink has failed for %s", g.id(), d.Round(time.Second)))
				}
			}
		}
	}
	return len(why) == 0, why
}
