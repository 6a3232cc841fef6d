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
	"github.com/flumed/flumed/internal/tlskeys"
)

// AvroOptions configure an avro sink (FLUME.md §2.10).
type AvroOptions struct {
	Hostname       string
	Port           int
	BatchSize      int           // batch-size
	ConnectTimeout time.Duration // connect-timeout: connect, TLS handshake, handing a request to the socket
	RequestTimeout time.Duration // request-timeout: waiting for a reply
	// ResetConnectionInterval (reset-connection-interval, seconds; 0 = off)
	// makes the next Process after it elapses close the connection and
	// reconnect, re-resolving Hostname (for collectors behind a load balancer).
	ResetConnectionInterval time.Duration
	Deflate                 bool
	DeflateLevel            int         // compression-level
	TLS                     *tls.Config // nil: plain TCP
	// PipelineDepth (pipeline-depth, a flumed key) is how many batches may
	// be in flight to the collector at once, each in its own take
	// transaction. Zero or 1 is Flume's sink, one batch at a time.
	PipelineDepth int
	// NoDedup (dedup = false, a flumed key) sends batches without their
	// identity, so a flumed collector puts a resend again, as Flume does.
	NoDedup bool
}

// The avro sink's keys (FLUME.md §2.10), and the TLS client keys.
var (
	avroHostname = config.String("hostname", "", "the collector's host name or address, resolved again at every reconnection").Required()
	avroPort     = config.Port("port", "the collector's port").Required()
	avroBatch    = config.Int("batch-size", 100, "the most events taken in one transaction and sent in one appendBatch")
	// The timeouts' defaults are the wire client's own.
	avroConnectTimeout = config.Millis("connect-timeout", avrorpc.DefaultConnectTimeout,
		"how long connecting, the TLS handshake and handing a request to the socket may take (at least 1000)")
	avroRequestTimeout = config.Millis("request-timeout", avrorpc.DefaultRequestTimeout,
		"how long to wait for the collector's reply (at least 1000)")
	avroResetInterval = config.Seconds("reset-connection-interval", 0,
		"reconnect (resolving the host again) after this long, for collectors behind a load balancer; 0 never does")
	avroCompression = config.OneOf("compression-type", "none", []string{"none", "deflate"},
		"deflate compresses the stream; the collector must use it too")
	avroCompressionLevel = config.Int("compression-level", 6, "the deflate level, 0-9")
	avroPipelineDepth    = config.Int("pipeline-depth", DefaultPipelineDepth,
		"how many batches may be in flight at once, each its own take transaction; 1 is Flume's one at a time").Flumed()
	avroDedup = config.Bool("dedup", true,
		"send each event's origin and sequence number (from a file channel) so a flumed collector answers a resend without putting it again; Apache Flume ignores them").Flumed()
)

// avroType declares the avro sink.
var avroType = &config.Spec{
	Type:    "avro",
	Classes: []string{"org.apache.flume.sink.AvroSink"},
	Doc: "keeps up to `pipeline-depth` batches in flight on its connection (`1` is Flume's one batch at a " +
		"time), each its own take transaction, committed in order once answered OK; on any failure rolls back " +
		"every uncommitted batch (latest first, so the channel keeps its order), closes the connection and " +
		"reconnects (resolving the host again) on the next batch. A collector that handles calls concurrently " +
		"(flumed's does) may put batches in a different order. Duplicates: " +
		"[Delivery and duplicates](#delivery-and-duplicates)",
	Keys: []config.Decl{avroHostname, avroPort, avroBatch, avroConnectTimeout, avroRequestTimeout,
		avroResetInterval, avroCompression, avroCompressionLevel, avroPipelineDepth, avroDedup,
		config.Ignore("maxIoWorkers", "no longer supported (Flume ignores it since 1.10); ignored"), tlskeys.Client},
}

// DefaultPipelineDepth is the pipeline-depth key's default, a constant for
// the tests and benchmarks that size against it: with one batch in flight
// the sink waits out the collector's commit and then its own, serially;
// four keep both hops' file channels group-committing
// (bench/pipeline_test.go).
const DefaultPipelineDepth = 4

// maxPipelineDepth bounds pipeline-depth: every batch in flight holds its
// events in memory and its own take transaction open.
const maxPipelineDepth = 64

// Avro is Flume's avro sink: it takes up to BatchSize events in one channel
// transaction, sends them as one appendBatch call and commits the
// transaction only after the collector answered OK. A connect failure, a
// timeout, a FAILED or UNKNOWN reply or any other error rolls back every
// transaction not yet committed, closes the connection and returns the
// error, which is what makes a failover processor move on; the next Process
// reconnects, resolving the host name again. An empty channel returns
// Backoff without connecting. Start succeeds whether or not the collector
// is up.
//
// With PipelineDepth N > 1 up to N batches are in flight on the one
// connection, each its own take transaction, run by the sink's Engine: one
// round trip to the collector costs its put commit (an fsync) plus the
// network, and keeping several calls outstanding lets the collector commit
// them together and this agent take and send the next batch while earlier
// ones are answered. Answered batches commit in the order taken, in groups,
// on a goroutine of the engine's while the runner sends the next ones; so a
// Process may return Ready with its batch sent but not yet committed, and a
// later Process, or Stop, commits it or rolls it back. A failure rolls back
// every uncommitted transaction, latest first, so their events return to
// the head of the channel in their order. With N = 1 there is one call at
// a time, as in Flume.
//
// Delivery is at-least-once, as in Flume: a batch the collector committed
// but whose reply was lost, or whose transaction was rolled back with a
// later failure, is sent again: at most N batches per failure of the
// collector, Window(N) per crash of this agent (engine.go).
type Avro struct {
	name    string
	opts    AvroOptions
	log     *slog.Logger
	counter counter.Sink
	stopped bool

	// Owned by the runner goroutine.
	eng         *Engine // nil until Start
	client      *avrorpc.Client
	connectedAt time.Time
	greeted     bool            // the connection's first call was answered: the peer speaks Avro RPC
	wire        []avrorpc.Event // scratch: a batch in the wire type
}

var (
	_ Sink              = (*Avro)(nil)
	_ BatchSizer        = (*Avro)(nil)
	_ BatchSizeKeyer    = (*Avro)(nil)
	_ counter.Monitored = (*Avro)(nil)
)

// NewAvro builds an avro sink; a zero BatchSize and timeouts get their
// keys' defaults.
func NewAvro(name string, opts AvroOptions, log *slog.Logger) *Avro {
	if opts.BatchSize < 1 {
		opts.BatchSize = avroBatch.Default()
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = avroConnectTimeout.Default()
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = avroRequestTimeout.Default()
	}
	opts.PipelineDepth = max(opts.PipelineDepth, 1)
	return &Avro{name: name, opts: opts, log: orDiscard(log)}
}

// minTimeout is the smallest timeout Flume accepts; below it the default applies.
const minTimeout = time.Second

func newAvroFactory(name string, c *config.Context, log *slog.Logger) (Sink, error) {
	o := AvroOptions{
		Hostname:                avroHostname.Get(c),
		Port:                    avroPort.Get(c),
		BatchSize:               avroBatch.Get(c),
		ConnectTimeout:          avroConnectTimeout.Get(c),
		RequestTimeout:          avroRequestTimeout.Get(c),
		ResetConnectionInterval: avroResetInterval.Get(c),
		Deflate:                 avroCompression.Get(c) == "deflate",
		DeflateLevel:            avroCompressionLevel.Get(c),
		PipelineDepth:           avroPipelineDepth.Get(c),
		NoDedup:                 !avroDedup.Get(c),
	}
	_, portOK := avroPort.Lookup(c)
	ok := portOK && o.Hostname != ""
	if o.BatchSize < 1 {
		c.Warnf(avroBatch.Name(), "must be at least 1; using %d as Flume does", avroBatch.Default())
		o.BatchSize = avroBatch.Default()
	}
	for _, t := range []struct {
		key config.Key[time.Duration]
		d   *time.Duration
	}{{avroConnectTimeout, &o.ConnectTimeout}, {avroRequestTimeout, &o.RequestTimeout}} {
		if *t.d < minTimeout {
			c.Warnf(t.key.Name(), "below Flume's minimum of %d ms; using %d as Flume does",
				minTimeout.Milliseconds(), t.key.Default().Milliseconds())
			*t.d = t.key.Default()
		}
	}
	if o.ResetConnectionInterval < 0 {
		c.Errorf(avroResetInterval.Name(), "must not be negative (0 never resets)")
		ok = false
	}
	if o.PipelineDepth < 1 || o.PipelineDepth > maxPipelineDepth {
		c.Errorf(avroPipelineDepth.Name(), "must be 1-%d batches in flight (1 is Flume's one at a time), not %d", maxPipelineDepth, o.PipelineDepth)
		ok = false
	}
	if o.DeflateLevel < 0 || o.DeflateLevel > 9 {
		c.Errorf(avroCompressionLevel.Name(), "must be 0-9, not %d", o.DeflateLevel)
		ok = false
	}
	tlsCfg, tlsOK := tlskeys.ClientConfig(c)
	o.TLS = tlsCfg
	if !ok || !tlsOK {
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
	s.eng = NewEngine(EngineOptions{
		Sink: s.name, Channel: ch, BatchSize: s.opts.BatchSize, Depth: s.opts.PipelineDepth,
		Counter: &s.counter, Log: s.log,
	}, avroDelivery{s})
	s.stopped = false
	s.counter.Started()
	return nil
}

// Process delivers one batch (see Avro and engine.go). A delivery failure
// closes the connection; the next Process reconnects.
func (s *Avro) Process(ctx context.Context) (st Status, err error) {
	if s.eng == nil || s.stopped {
		return Backoff, errors.New("avro sink not started")
	}
	// A panic is a bug; the engine rolls its batches back, and the
	// connection, whose calls are abandoned, goes too.
	defer func() {
		if p := recover(); p != nil {
			s.disconnect()
			panic(p)
		}
	}()
	if s.client != nil && s.opts.ResetConnectionInterval > 0 && time.Since(s.connectedAt) >= s.opts.ResetConnectionInterval {
		if err := s.eng.Settle(ctx); err != nil {
			return Backoff, s.failed(err)
		}
		s.log.Info("avro sink resetting its connection", slog.String("sink", s.name),
			slog.Duration("reset-connection-interval", s.opts.ResetConnectionInterval))
		s.disconnect()
	}
	st, err = s.eng.Process(ctx)
	if err != nil {
		return st, s.failed(err)
	}
	return st, nil
}

// failed closes the connection after a delivery failure (the engine has
// rolled back every uncommitted batch) and names the collector in the error.
func (s *Avro) failed(err error) error {
	s.disconnect()
	return fmt.Errorf("avro sink %s to %s: %w", s.name, s.addr(), err)
}

// Stop finishes the batches in flight (each waits at most request-timeout
// for its reply; one that fails rolls back with the rest) and closes the
// connection. Idempotent.
func (s *Avro) Stop() error {
	if s.stopped {
		return nil
	}
	if s.eng != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.RequestTimeout+s.opts.ConnectTimeout)
		if err := s.eng.Settle(ctx); err != nil {
			s.log.Warn("avro sink stopping: batches in flight rolled back", slog.String("sink", s.name), slog.Any("err", err))
		}
		cancel()
	}
	s.disconnect()
	s.stopped = true
	s.counter.Stopped()
	return nil
}

func (s *Avro) addr() string { return net.JoinHostPort(s.opts.Hostname, strconv.Itoa(s.opts.Port)) }

// avroDelivery is the avro sink's Delivery: one appendBatch call per batch,
// answered by the collector's reply.
type avroDelivery struct{ s *Avro }

var _ OriginDelivery = avroDelivery{}

func (d avroDelivery) Send(ctx context.Context, events []channel.Event) (Pending, error) {
	call, err := d.s.send(ctx, nil, events)
	if err != nil {
		return nil, err
	}
	return call, nil
}

// SendFrom implements OriginDelivery: the batch's identity rides in the
// call metadata (internal/avrorpc/identity.go), unless dedup is off.
func (d avroDelivery) SendFrom(ctx context.Context, origin channel.OriginID, seqs []uint64, events []channel.Event) (Pending, error) {
	var id *avrorpc.Identity
	if !d.s.opts.NoDedup {
		id = &avrorpc.Identity{Origin: origin, Seqs: seqs}
	}
	call, err := d.s.send(ctx, id, events)
	if err != nil {
		return nil, err
	}
	return call, nil
}

// send puts one appendBatch call on the wire, connecting first when needed,
// and returns without its reply. A connection the collector closed while
// idle is replaced once: nothing of the call had been sent on it, and every
// earlier call on it had been answered (ErrIdleClosed says so).
func (s *Avro) send(ctx context.Context, id *avrorpc.Identity, events []channel.Event) (*avrorpc.Pending, error) {
	s.wire = s.wire[:0]
	for _, e := range events {
		s.wire = append(s.wire, avrorpc.Event(e))
	}
	for attempt := 0; ; attempt++ {
		if s.client == nil {
			if err := s.connect(ctx); err != nil {
				return nil, err
			}
		}
		call, err := s.client.SendFrom(ctx, id, s.wire)
		if errors.Is(err, avrorpc.ErrIdleClosed) && attempt == 0 {
			s.log.Info("avro sink reconnecting: the collector closed the idle connection", slog.String("sink", s.name))
			s.disconnect()
			continue
		}
		if !s.greeted {
			s.greet(call, err)
		}
		return call, err
	}
}

// greet logs how a connection's first call went: that call carries the
// Avro handshake and is answered before Send returns, so only its reply
// (OK, or a FAILED or UNKNOWN status, which a real collector sends too)
// shows that the peer is an Avro collector; a TCP connect says nothing (an
// HTTP server accepts it). A failure of that call (a protocol error, a
// timeout, a reset) is logged here, once per connection, so it shows at the
// rate of the reconnects; the runner's error line is rate-limited to one a
// minute. A refused connect has no connection to log: the runner's line
// says it.
func (s *Avro) greet(call *avrorpc.Pending, err error) {
	if err == nil {
		select {
		case <-call.Done():
			err = call.Wait(context.Background()) // answered: returns at once
		default:
			return // not the handshake call: nothing known yet
		}
	}
	var se *avrorpc.StatusError
	if err != nil && !errors.As(err, &se) {
		s.log.Warn("avro sink connection failed", slog.String("sink", s.name), slog.String("addr", s.addr()), slog.Any("err", err))
		return
	}
	s.greeted = true
	s.log.Info("avro sink connected", slog.String("sink", s.name), slog.String("addr", s.addr()))
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
	// Connected at the TCP level only: greet says whether it is a collector.
	s.client, s.connectedAt, s.greeted = c, time.Now(), false
	s.counter.ConnectionCreated.Add(1)
	return nil
}

func (s *Avro) disconnect() {
	if s.client != nil {
		_ = s.client.Close()
		s.client = nil
		s.counter.ConnectionClosed.Add(1)
	}
}
