// Package sourceapi is the contract between flumed's sources and the rest
// of the agent: what a source is (Source, Pollable), what it puts its events
// through (BatchPutter), how it is built from configuration (Factory) and
// what it returns when that configuration is wrong (ErrConfig).
//
// It exists so that sources in their own packages (source/taildir,
// source/spooldir) can implement the contract without importing package
// source, whose registry imports them; package source re-exports every name.
// It must never import another flumed source package, and holds no code but
// the contract.
package sourceapi

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
)

// Status is what one Poll call of a pollable source did.
type Status int

const (
	// Ready means events were produced; poll again at once.
	Ready Status = iota
	// Backoff means there was nothing to read (or the channel refused); the
	// runner sleeps with the source's backoff before polling again.
	Backoff
)

// BatchPutter is where a source hands its events: the source's
// ChannelProcessor (Flume's processEventBatch), or a test's recorder.
// PutBatch is safe for concurrent use. A nil error means the events are
// committed to every required channel; an error (wrapping channel.ErrFull,
// channel.ErrClosed, ...) means they must be treated as not accepted, although
// some required channels may already hold them (Flume's behaviour: commits
// across channels are not atomic, so a retry may duplicate there).
type BatchPutter interface {
	PutBatch(events []channel.Event) error
}

// OriginBatchPutter is the optional power of a BatchPutter that
// deduplicates (the ChannelProcessor has it): event i is number seqs[i] of
// the upstream channel origin, and every channel that already committed it
// (channel.OriginPutter) leaves it out, answering for it as committed. A
// nil error means every required channel holds every event, from this call
// or an earlier one. Safe for concurrent use.
type OriginBatchPutter interface {
	PutBatchFrom(origin channel.OriginID, seqs []uint64, events []channel.Event) error
}

// Source produces events.
//
// Start and Stop are called by the agent's goroutine. Event-driven sources
// (exec, netcat, avro) start their own goroutines in Start and stop them in
// Stop; pollable sources implement Pollable and are driven by a runner.
type Source interface {
	// Name is the component name from the configuration ("r1").
	Name() string
	// Start begins producing events into out. It returns once the source is
	// ready (for a server: listening), not when it finishes.
	Start(ctx context.Context, out BatchPutter) error
	// Stop stops producing and waits for the source's goroutines. Input read
	// but not committed is not acknowledged. Idempotent.
	Stop() error
}

// Pollable is a source driven by a runner loop (Flume's PollableSource).
type Pollable interface {
	Source
	// Poll produces at most one batch. An error is logged by the runner,
	// which then sleeps MaxBackoff.
	Poll(ctx context.Context) (Status, error)
	// Backoff returns the sleep increment and cap used after Backoff
	// (Flume's backoffSleepIncrement and maxBackoffSleep).
	Backoff() (increment, max time.Duration)
}

// Factory builds an unstarted source of one type from its configuration,
// checked against the type's spec (which includes ProcessorKeys, read by the
// channel processor). It reads its keys with their Key's Get, records range
// and combination problems in c rather than failing on the first one, and
// then returns ErrConfig; one that fails without recording a problem gets
// its error reported at the source's "type".
type Factory func(name string, c *config.Context, log *slog.Logger) (Source, error)

// BatchSizer is implemented by sources that put batches, so the agent can check
// the batch size against each channel's transactionCapacity before starting.
type BatchSizer interface {
	BatchSize() int
}

// BatchSizeKeyer is implemented by BatchSizers to name the key their batch
// size is set with, so a problem with the batch size names the key the user
// writes, set or not. A BatchSizer without it is taken to use "batchSize".
type BatchSizeKeyer interface {
	BatchSizeKey() string
}

// ErrConfig is what a source, interceptor or selector builder returns after
// recording its problems in the configuration context: the context's
// problems are the real report, naming file, line and key.
var ErrConfig = errors.New("invalid configuration")

// Interceptors is a source's interceptor list, read by the channel processor.
var Interceptors = config.List("interceptors", " ", "", "the source's interceptors, run in this order")

// ProcessorKeys are the channel processor's keys, which every source's spec
// includes: its interceptors and its channel selector, each nested
// component's keys checked against its own type's spec.
var ProcessorKeys = &config.Group{
	Name: "Channel processor (every source)",
	Doc:  "interceptors, then the channel selector, then one transaction per channel",
	Keys: []config.Decl{
		Interceptors,
		config.Nested("interceptors.<name>.*", "an interceptor's type and the keys of that interceptor type"),
		config.Nested("selector.*", "the channel selector's type (replicating by default) and the keys of that selector type"),
	},
}
