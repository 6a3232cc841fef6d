package sink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/avrorpc"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/counter"
)

// AvroOptions configure an avro sink (FLUME.md §2.10).
type AvroOptions struct {
	Hostname       string
	Port           int
	BatchSize      int           // batch-size, 100
	ConnectTimeout time.Duration // connect-timeout, 20 s: connect, TLS handshake, handing a request to the socket
	RequestTimeout time.Duration // request-timeout, 20 s: waiting for a reply
	// ResetConnectionInterval (reset-connection-interval, seconds; 0 = off)
	// makes the next Process after it elapses close the connection and
	// reconnect, re-resolving Hostname (for collectors behind a load balancer).
	ResetConnectionInterval time.Duration
	Deflate                 bool
	DeflateLevel            int         // compression-level, 6
	TLS                     *tls.Config // nil: plain TCP
}

// Avro is Flume's avro sink: it takes up to BatchSize events in one channel
// transaction, sends them as appendBatch calls of at most BatchSize events,
// and commits only after every call was answered OK. A connect failure, a
// timeout, a FAILED or UNKNOWN reply or any other error rolls the take back,
// closes the connection and returns the error, which is what makes a failover
// processor move on; the next Process reconnects, resolving the host name
// again. An empty channel returns Backoff without connecting. Start succeeds
// whether or not the collector is up.
//
// Delivery is at-least-once, as in Flume: a batch the collector committed
// but whose reply was lost is sent again.
type Avro struct {
	name    string
	opts    AvroOptions
	log     *slog.Logger
	counter counter.Sink
	take    *BatchTaker
	stopped bool

	// Owned by the runner goroutine.
	client      *avrorpc.Client
	connectedAt time.Time
	wire        []avrorpc.Event // scratch: a chunk in the wire type
}

var (
	_ Sink              = (*Avro)(nil)
	_ BatchSizer        = (*Avro)(nil)
	_ BatchSizeKeyer    = (*Avro)(nil)
	_ counter.Monitored = (*Avro)(nil)
)

// NewAvro builds an avro sink; zero BatchSize and timeouts get Flume's defaults.
func NewAvro(name string, opts AvroOptions, log *slog.Logger) *Avro {
	if opts.BatchSize < 1 {
		opts.BatchSize = 100
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = avrorpc.DefaultConnectTimeout
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = avrorpc.DefaultRequestTimeout
	}
	return &Avro{name: name, opts: opts, log: orDiscard(log)}
}

// minTimeout is the smallest timeout Flume accepts; below it the default applies.
const minTimeout = time.Second

func newAvroFactory(name string, c *config.Context, log *slog.Logger) (Sink, error) {
	o := AvroOptions{
		Hostname:                c.Required("hostname"),
		BatchSize:               c.Int("batch-size", 100),
		ConnectTimeout:          c.Duration("connect-timeout", avrorpc.DefaultConnectTimeout, time.Millisecond),
		RequestTimeout:          c.Duration("request-timeout", avrorpc.DefaultRequestTimeout, time.Millisecond),
		ResetConnectionInterval: c.Duration("reset-connection-interval", 0, time.Second),
		Deflate:                 c.OneOf("compression-type", "none", "none", "deflate") == "deflate",
		DeflateLevel:            c.Int("compression-level", 6),
	}
	ok := true
	if port := c.Required("port"); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			c.Errorf("port", "not a TCP port (1-65535): %q", port)
			ok = false
		}
		o.Port = n
	}
	if o.BatchSize < 1 {
		c.Warnf("batch-size", "must be at least 1; using 100 as Flume does")
		o.BatchSize = 100
	}
	for key, d := range map[string]*time.Duration{"connect-timeout": &o.ConnectTimeout, "request-timeout": &o.RequestTimeout} {
		if *d < minTimeout {
			c.Warnf(key, "below Flume's minimum of 1000 ms; using 20000 as Flume does")
			*d = 20 * time.Second
		}
	}
	if o.ResetConnectionInterval < 0 {
		c.Errorf("reset-connection-interval", "must not be negative (0 never resets)")
		ok = false
	}
	if o.DeflateLevel < 0 || o.DeflateLevel > 9 {
		c.Errorf("compression-level", "must be 0-9, not %d", o.DeflateLevel)
		ok = false
	}
	if c.Has("maxIoWorkers") {
		c.Warnf("maxIoWorkers", "no longer supported (Flume ignores it since 1.10); ignored")
	}
	tlsCfg, tlsOK := avrorpc.ClientTLS(c)
	o.TLS = tlsCfg
	if !ok || !tlsOK || o.Hostname == "" {
		return nil, fmt.Errorf("configure avro sink %s: invalid configuration", name)
	}
	return NewAvro(name, o, log), nil
}

// Name implements Sink.
func (s *Avro) Name() string { return s.name }

// BatchSize implements BatchSizer.
func (s *Avro) BatchSize() int { return s.opts.BatchSize }

// BatchSizeKey implements BatchSizeKeyer: the avro sink's key is batch-size.
func (s *Avro) BatchSizeKey() string { return "batch-size" }

// FlumeMetrics implements counter.Monitored with Flume's SinkCounter.
func (s *Avro) FlumeMetrics() map[string]string { return s.counter.FlumeMetrics() }

// Start binds the sink to its channel. It does not connect: the first batch
// does, so a collector that is down does not stop the agent from starting.
func (s *Avro) Start(_ context.Context, ch channel.Channel) error {
	s.take = &BatchTaker{Sink: s.name, Channel: ch, Size: s.opts.BatchSize, Counter: &s.counter, Log: s.log}
	s.stopped = false
	s.counter.Started()
	return nil
}

// Process delivers one batch (see Avro).
func (s *Avro) Process(ctx context.Context) (Status, error) {
	if s.take == nil || s.stopped {
		return Backoff, errors.New("avro sink not started")
	}
	if s.client != nil && s.opts.ResetConnectionInterval > 0 && time.Since(s.connectedAt) >= s.opts.ResetConnectionInterval {
		s.log.Info("avro sink resetting its connection", slog.String("sink", s.name),
			slog.Duration("reset-connection-interval", s.opts.ResetConnectionInterval))
		s.disconnect()
	}
	return s.take.Process(ctx, s.deliver)
}

// Stop closes the connection. Idempotent.
func (s *Avro) Stop() error {
	if !s.stopped {
		s.disconnect()
		s.stopped = true
		s.counter.Stopped()
	}
	return nil
}

func (s *Avro) addr() string { return net.JoinHostPort(s.opts.Hostname, strconv.Itoa(s.opts.Port)) }

// deliver sends events as appendBatch calls of at most BatchSize events; nil
// means every call was answered OK.
func (s *Avro) deliver(ctx context.Context, events []channel.Event) error {
	for len(events) > 0 {
		n := min(len(events), s.opts.BatchSize)
		if err := s.send(ctx, events[:n]); err != nil {
			s.disconnect()
			return fmt.Errorf("avro sink %s to %s: %w", s.name, s.addr(), err)
		}
		events = events[n:]
	}
	return nil
}

// send makes one appendBatch call, connecting first when needed. A
// connection the collector closed while idle is replaced once: nothing of
// the call had been sent on it.
func (s *Avro) send(ctx context.Context, events []channel.Event) error {
	s.wire = s.wire[:0]
	for _, e := range events {
		s.wire = append(s.wire, avrorpc.Event(e))
	}
	for attempt := 0; ; attempt++ {
		if s.client == nil {
			if err := s.connect(ctx); err != nil {
				return err
			}
		}
		err := s.client.AppendBatch(ctx, s.wire)
		if errors.Is(err, avrorpc.ErrIdleClosed) && attempt == 0 {
			s.log.Info("avro sink reconnecting: the collector closed the idle connection", slog.String("sink", s.name))
			s.disconnect()
			continue
		}
		return err
	}
}

func (s *Avro) connect(ctx context.Context) error {
	c, err := avrorpc.Dial(ctx, s.addr(), avrorpc.ClientOptions{
		Deflate:        s.opts.Deflate,
		DeflateLevel:   s.opts.DeflateLevel,
		TLS:            s.opts.TLS,
		ConnectTimeout: s.opts.ConnectTimeout,
		RequestTimeout: s.opts.RequestTimeout,
	})
	if err != nil {
		s.counter.ConnectionFailed.Add(1)
		return fmt.Errorf("connect: %w", err)
	}
	s.client, s.connectedAt = c, time.Now()
	s.counter.ConnectionCreated.Add(1)
	s.log.Info("avro sink connected", slog.String("sink", s.name), slog.String("addr", s.addr()))
	return nil
}

func (s *Avro) disconnect() {
	if s.client != nil {
		_ = s.client.Close()
		s.client = nil
		s.counter.ConnectionClosed.Add(1)
	}
}
