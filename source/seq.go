package source

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/counter"
	"github.com/flumed/flumed/source/internal/logthrottle"
)

// Seq is the sequence generator source (Flume's "seq", FLUME.md §2.6): a
// pollable source whose events have no headers and a body that is the decimal
// text of a counter starting at 0. It is the load generator of the end-to-end
// tests: a run is checked by counting the numbers that come out.
//
// When the channel refuses a batch the counter is not advanced, so the same
// numbers are offered again. After totalEvents it only returns Backoff.
// Unlike Flume, which returns READY after a channel failure (and so retries at
// once, in a tight loop), Seq returns Backoff so the runner sleeps.
type Seq struct {
	name      string
	log       *slog.Logger
	batchSize int
	total     int64
	inc, max  time.Duration
	warn      *logthrottle.Log
	counters  counter.Source

	mu   sync.Mutex
	proc BatchPutter
	next int64 // the next number to send; touched only by the runner's goroutine
}

var (
	_ Pollable          = (*Seq)(nil)
	_ BatchSizer        = (*Seq)(nil)
	_ BatchSizeKeyer    = (*Seq)(nil)
	_ counter.Monitored = (*Seq)(nil)
)

var (
	seqBatch = config.Int("batchSize", 1, "events put in one transaction")
	seqTotal = config.Int64("totalEvents", math.MaxInt64, "stop after this many events").DefaultText("unlimited")
	seqInc   = config.Millis("backoffSleepIncrement", time.Second, "the runner's backoff step when a batch is refused")
	seqMax   = config.Millis("maxBackoffSleep", 5*time.Second, "the runner's longest backoff")
)

var seqType = &config.Spec{Type: "seq", Classes: []string{"org.apache.flume.source.SequenceGeneratorSource"},
	Doc: "backs off when the channel refuses a batch instead of retrying in a tight loop", Keys: []config.Decl{seqBatch, seqTotal, seqInc, seqMax, ProcessorKeys}}

func newSeqSource(name string, c *config.Context, log *slog.Logger) (Source, error) {
	s := &Seq{
		name:      name,
		log:       log,
		batchSize: seqBatch.Get(c),
		total:     seqTotal.Get(c),
		inc:       seqInc.Get(c),
		max:       seqMax.Get(c),
		warn:      logthrottle.New(log, logthrottle.DefaultEvery),
	}
	ok := true
	if s.batchSize <= 0 {
		c.Errorf("batchSize", "must be positive, not %d", s.batchSize)
		ok = false
	}
	if s.total < 0 {
		c.Errorf("totalEvents", "must not be negative, not %d", s.total)
		ok = false
	}
	if s.inc <= 0 {
		c.Errorf("backoffSleepIncrement", "must be positive")
		ok = false
	}
	if s.max < s.inc {
		c.Errorf("maxBackoffSleep", "must be at least backoffSleepIncrement (%d ms)", s.inc.Milliseconds())
		ok = false
	}
	if !ok {
		return nil, errConfig
	}
	return s, nil
}

// Name returns the source's name.
func (s *Seq) Name() string { return s.name }

// BatchSize returns the configured batchSize.
func (s *Seq) BatchSize() int { return s.batchSize }

// BatchSizeKey implements BatchSizeKeyer.
func (s *Seq) BatchSizeKey() string { return "batchSize" }

// Backoff returns backoffSleepIncrement and maxBackoffSleep.
func (s *Seq) Backoff() (increment, max time.Duration) { return s.inc, s.max }

// Start binds the source to its processor; the runner does the work.
func (s *Seq) Start(_ context.Context, p BatchPutter) error {
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	s.counters.Started()
	return nil
}

// Stop records the stop time. The runner must have been stopped first.
func (s *Seq) Stop() error {
	s.counters.Stopped()
	return nil
}

// FlumeMetrics returns Flume's SOURCE counters: EventAcceptedCount,
// AppendBatchAcceptedCount (batchSize > 1 only, as in Flume) and
// ChannelWriteFail.
func (s *Seq) FlumeMetrics() map[string]string { return s.counters.FlumeMetrics() }

// Poll sends the next batch of numbers. It returns Ready when a full batch
// was committed, Backoff when totalEvents is reached (also after a final short
// batch, as Flume does) or the channel refused.
func (s *Seq) Poll(context.Context) (Status, error) {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return Backoff, errors.New("seq source used before Start")
	}
	if s.next >= s.total {
		return Backoff, nil
	}
	n := int64(s.batchSize)
	if left := s.total - s.next; left < n {
		n = left
	}
	events := make([]channel.Event, n)
	for i := range events {
		events[i].Body = strconv.AppendInt(nil, s.next+int64(i), 10)
	}
	if err := p.PutBatch(events); err != nil {
		s.counters.ChannelWriteFail.Add(1)
		s.warn.Warn("put", "channel refused the batch; the same numbers will be retried",
			slog.Int64("first", s.next), slog.Int64("events", n), slog.Any("err", err))
		return Backoff, nil
	}
	s.next += n
	if s.batchSize == 1 {
		s.counters.EventAccepted.Add(1)
		return Ready, nil
	}
	s.counters.AppendBatchAccepted.Add(1)
	s.counters.EventAccepted.Add(n)
	if n < int64(s.batchSize) {
		return Backoff, nil
	}
	return Ready, nil
}
