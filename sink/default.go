package sink

import (
	"context"
	"errors"
	"log/slog"

	"github.com/flumed/flumed/internal/config"
)

// Default is Flume's DefaultSinkProcessor: it runs exactly one sink and passes
// its status and errors through. The agent gives every sink that is in no sink
// group its own Default processor and runner.
type Default struct {
	sink Sink
}

var _ Processor = (*Default)(nil)

// NewDefault wraps one sink.
func NewDefault(s Sink) *Default { return &Default{sink: s} }

// defaultType declares the default processor: it has no keys.
var defaultType = &config.Spec{
	Type:    "default",
	Classes: []string{"org.apache.flume.sink.DefaultSinkProcessor"},
	Doc:     "as in Flume: every sink outside a group gets one",
}

func newDefaultFactory(group string, c *config.Context, sinks []Sink, _ *slog.Logger) (Processor, error) {
	if len(sinks) != 1 {
		c.Errorf("type", "the default processor runs exactly one sink; group %s has %d (use failover or load_balance)", group, len(sinks))
	}
	if len(sinks) == 0 {
		return &Default{}, nil
	}
	return NewDefault(sinks[0]), nil
}

// Process implements Processor.
func (d *Default) Process(ctx context.Context) (Status, error) {
	if d.sink == nil {
		return Backoff, errors.New("default processor has no sink")
	}
	return d.sink.Process(ctx)
}

// Sinks implements Processor.
func (d *Default) Sinks() []Sink {
	if d.sink == nil {
		return nil
	}
	return []Sink{d.sink}
}
