// Package sink holds everything that drains a channel: the Sink contract, the
// sink processors that choose among a group's sinks (default, failover,
// load_balance) with Flume's penalties and backoffs, the runner loop, the
// delivery engine every sink runs (engine.go: take, deliver, commit in order,
// depth N), and the sinks themselves (logger, null, file_roll, avro),
// registered by Flume type name.
//
// A sink commits its take transaction only after the next hop has accepted the
// batch; on any failure it rolls back, so the events stay in the channel. A
// sink never holds more than Window(depth) batches delivered and not
// committed: that is all a crash may deliver twice. This package must never
// import source.
package sink

import (
	"context"
	"log/slog"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
)

// Status is what one Process call did (Flume's Sink.Status).
type Status int

const (
	// Ready means the call moved events; call again at once.
	Ready Status = iota
	// Backoff means there was nothing to do (or a transient channel problem);
	// the runner sleeps before the next call.
	Backoff
)

func (s Status) String() string {
	if s == Ready {
		return "READY"
	}
	return "BACKOFF"
}

// Sink moves events out of one channel.
//
// Start, Process and Stop are called from one goroutine at a time (the runner's).
// Process after Stop returns an error.
type Sink interface {
	// Name is the component name from the configuration ("k1").
	Name() string
	// Start binds the sink to its channel and acquires what it needs up front.
	// A sink whose remote end is down still starts: it fails in Process.
	Start(ctx context.Context, ch channel.Channel) error
	// Process takes up to one batch in a channel transaction and delivers it.
	// A nil error with Ready means the batch was taken and delivered, or, for
	// a sink that keeps batches in flight (the avro sink's pipeline-depth),
	// sent; its commit follows once it is answered, at once or behind the
	// runner (Engine), and a later Process or Stop waits for it. Backoff
	// means nothing was taken and nothing is in flight or being committed.
	// A non-nil error means delivery failed and every uncommitted batch was
	// rolled back to the channel: that is what drives failover.
	Process(ctx context.Context) (Status, error)
	// Stop releases connections and files. Idempotent.
	Stop() error
}

// Factory builds an unstarted sink of one type from its configuration. c
// has been checked against the type's config.Spec (unknown keys, bad values
// and missing required keys are reported already; "type" and "channel" are
// the tree's): the factory reads typed values through the type's declared
// keys, checks ranges and combinations, and records problems in c rather
// than failing on the first one. It fails (or returns nothing) only when
// the sink cannot be made; without a problem recorded, its error is
// reported at "type".
type Factory func(name string, c *config.Context, log *slog.Logger) (Sink, error)

// BatchSizer is implemented by sinks that take batches, so the agent can check
// the batch size against the channel's transactionCapacity before starting.
type BatchSizer interface {
	BatchSize() int
}

// BatchSizeKeyer is implemented by BatchSizers to name the key their batch
// size is set with (file_roll's "sink.batchSize", avro's "batch-size"), so a
// problem with the batch size names the key the user writes, set or not.
// A BatchSizer without it is taken to use "batchSize".
type BatchSizeKeyer interface {
	BatchSizeKey() string
}

// Processor runs a group of sinks as one (Flume's SinkProcessor). Process is
// called from the group's single runner goroutine.
type Processor interface {
	// Process asks the processor's chosen sink(s) to process one batch, with the
	// processor's failover or load-balancing policy. An error means every
	// eligible sink failed.
	Process(ctx context.Context) (Status, error)
	// Sinks returns the group's sinks in the order the processor prefers them.
	Sinks() []Sink
}

// ProcessorFactory builds a processor of one type over already-built sinks.
// c holds the group's processor.* keys with the "processor." prefix removed,
// checked against the type's spec with <sink> bound to the group's sinks;
// "type" is the tree's.
type ProcessorFactory func(group string, c *config.Context, sinks []Sink, log *slog.Logger) (Processor, error)
