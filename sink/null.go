package sink

import (
	"context"
	"errors"
	"log/slog"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
)

// Null is Flume's null sink (FLUME.md §2.12): it takes up to batchSize events,
// commits and discards them. It has no counters, as in Flume.
//
// Flume returns BACKOFF whenever a batch is not full; flumed returns Ready
// whenever it took something, so a trickle is drained without 1 s naps.
type Null struct {
	name      string
	batchSize int
	log       *slog.Logger
	eng       *Engine // nil until Start
}

var (
	_ Sink           = (*Null)(nil)
	_ BatchSizer     = (*Null)(nil)
	_ BatchSizeKeyer = (*Null)(nil)
)

// nullBatchSize is the null sink's one key (FLUME.md §2.12).
var nullBatchSize = config.Int("batchSize", 100, "the most events taken in one transaction")

// nullType declares the null sink.
var nullType = &config.Spec{
	Type:    "null",
	Classes: []string{"org.apache.flume.sink.NullSink"},
	Doc:     "returns READY whenever it took events (Flume backs off after a partial batch)",
	Keys:    []config.Decl{nullBatchSize},
}

// NewNull builds a null sink; a batchSize below 1 becomes the batchSize
// key's default.
func NewNull(name string, batchSize int, log *slog.Logger) *Null {
	if batchSize < 1 {
		batchSize = nullBatchSize.Default()
	}
	return &Null{name: name, batchSize: batchSize, log: orDiscard(log)}
}

func newNullFactory(name string, c *config.Context, log *slog.Logger) (Sink, error) {
	n := nullBatchSize.Get(c)
	if n < 1 {
		c.Errorf(nullBatchSize.Name(), "must be at least 1, not %d", n)
	}
	return NewNull(name, n, log), nil
}

// Name implements Sink.
func (s *Null) Name() string { return s.name }

// BatchSize implements BatchSizer.
func (s *Null) BatchSize() int { return s.batchSize }

// BatchSizeKey implements BatchSizeKeyer.
func (s *Null) BatchSizeKey() string { return "batchSize" }

// Start implements Sink.
func (s *Null) Start(_ context.Context, ch channel.Channel) error {
	s.eng = NewEngine(EngineOptions{Sink: s.name, Channel: ch, BatchSize: s.batchSize, Depth: DefaultPipelineDepth, Log: s.log},
		DeliverFunc(func(context.Context, []channel.Event) error { return nil }))
	return nil
}

// Process takes one batch and throws it away.
func (s *Null) Process(ctx context.Context) (Status, error) {
	if s.eng == nil {
		return Backoff, errors.New("null sink not started")
	}
	return s.eng.Process(ctx)
}

// Stop implements Sink: it waits for the commits under way.
func (s *Null) Stop() error {
	if s.eng != nil {
		_ = s.eng.Settle(context.Background())
	}
	s.eng = nil
	return nil
}
