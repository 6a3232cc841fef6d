package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/avrorpc"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/counter"
	"github.com/flumed/flumed/internal/tlskeys"
	"github.com/flumed/flumed/source/internal/logthrottle"
	"github.com/flumed/flumed/source/sourceapi"
)

// Avro is the avro source (FLUME.md §2.2, §7): it serves Flume's
// AvroSourceProtocol, so a Flume 1.9–1.11 agent's avro sink (or a flumed one)
// can send to it. append puts one event, appendBatch puts the whole batch
// through the channel processor; the client is told OK only after Process
// returned nil (every required channel committed), and FAILED when a channel
// refused (full, disk floor, closed), so nothing acknowledged is lost and the
// client resends whatever was refused.
//
// Its keys, their defaults and the bounds flumed adds (connections, frame,
// batch, header and body sizes, memory held, pipelined calls, read and idle
// timeouts) are declared in avroType and listed in the README.
//
// A client that pipelines calls on one connection (flumed's avro sink with
// pipeline-depth > 1) has up to max-calls-per-connection of them put at
// once, so a file channel commits them in one fsync; each is answered as its
// put commits. Batches of one connection may then reach the channel in
// another order than they were sent; events within a batch keep theirs.
// A connection that breaks the protocol or a bound is closed, logged
// (rate-limited) and counted in EventReadFail; the others carry on.
type Avro struct {
	name    string
	log     *slog.Logger
	addr    string
	opts    avrorpc.ServerOptions
	counter counter.Source
	fails   *logthrottle.Log

	mu   sync.Mutex
	srv  *avrorpc.Server
	ln   net.Listener
	done chan struct{} // closed when the accept loop returns
}

var (
	_ Source            = (*Avro)(nil)
	_ counter.Monitored = (*Avro)(nil)
)

var avroDefaults = avrorpc.DefaultLimits()

var (
	avroBind     = config.String("bind", "", "the address to listen on").Required()
	avroPort     = config.ListenPort("port", "the port to listen on (0 picks a free one)").Required()
	avroCompress = config.OneOf("compression-type", "none", []string{"none", "deflate"}, "deflate: one zlib stream each way, as Flume's")
	avroFilter   = config.Bool("ipFilter", false, "accept only the clients ipFilterRules allows")
	avroRules    = config.String("ipFilterRules", "", "Flume's rules, as `allow:ip:10.*,deny:name:*`; ignored unless ipFilter")
	avroConns    = config.Int("max-connections", avrorpc.DefaultMaxConnections, "connections served at once").Flumed()
	avroFrame    = config.Int("max-frame-bytes", avroDefaults.MaxFrameBytes, "the largest frame a client may send").Flumed()
	avroBatch    = config.Int("max-batch-events", avroDefaults.MaxBatchEvents, "the most events in one appendBatch").Flumed()
	avroHeaders  = config.Int("max-headers-per-event", avroDefaults.MaxHeaders, "the most headers of one event").Flumed()
	avroHdrBytes = config.Int("max-header-bytes", avroDefaults.MaxHeaderBytes, "the most bytes of one event's headers").Flumed()
	avroBody     = config.Int("max-body-bytes", avroDefaults.MaxBodyBytes, "the largest event body").Flumed()
	avroInflight = config.Int64("max-inflight-bytes", avrorpc.DefaultMaxMemory, "frame bytes held by all connections together").Flumed()
	avroCalls    = config.Int("max-calls-per-connection", avrorpc.DefaultMaxCallsPerConnection, "pipelined calls of one connection put at once").Flumed()
	avroRead     = config.Millis("read-timeout", avrorpc.DefaultReadTimeout, "how long a started frame may take to arrive").Flumed()
	avroIdle     = config.Millis("idle-timeout", time.Hour, "an idle connection is closed after this; 0 never").Flumed()
)

var avroType = &config.Spec{Type: "avro", Classes: []string{"org.apache.flume.source.AvroSource"},
	Doc: "replies OK only after every required channel committed; bounds frames, batches, headers, connections and in-flight bytes; at `max-connections` the longest-idle connection makes room; `threads` is ignored (as since Flume 1.10)",
	Keys: []config.Decl{avroBind, avroPort, avroCompress, avroFilter, avroRules,
		config.Ignore("threads", "ignored, as Flume ignores it since 1.10: each connection has its own goroutine; bound them with max-connections"),
		avroConns, avroFrame, avroBatch, avroHeaders, avroHdrBytes, avroBody, avroInflight, avroCalls, avroRead, avroIdle,
		tlskeys.Server, ProcessorKeys}}

func newAvroSource(name string, c *config.Context, log *slog.Logger) (Source, error) {
	ok := true
	bind := avroBind.Get(c)
	port, portOK := avroPort.Lookup(c)
	if bind == "" || !portOK {
		ok = false
	}
	lim := avrorpc.Limits{
		MaxFrameBytes:  avroFrame.Get(c),
		MaxBatchEvents: avroBatch.Get(c),
		MaxHeaders:     avroHeaders.Get(c),
		MaxHeaderBytes: avroHdrBytes.Get(c),
		MaxBodyBytes:   avroBody.Get(c),
	}
	o := avrorpc.ServerOptions{
		Limits:                lim,
		Deflate:               avroCompress.Get(c) == "deflate",
		MaxConnections:        avroConns.Get(c),
		MaxCallsPerConnection: avroCalls.Get(c),
		MaxMemory:             avroInflight.Get(c),
		ReadTimeout:           avroRead.Get(c),
		IdleTimeout:           avroIdle.Get(c),
		Log:                   log,
	}
	for key, v := range map[string]int64{
		"max-frame-bytes": int64(lim.MaxFrameBytes), "max-batch-events": int64(lim.MaxBatchEvents),
		"max-headers-per-event": int64(lim.MaxHeaders), "max-header-bytes": int64(lim.MaxHeaderBytes),
		"max-body-bytes": int64(lim.MaxBodyBytes), "max-connections": int64(o.MaxConnections),
		"max-inflight-bytes": o.MaxMemory, "read-timeout": int64(o.ReadTimeout),
		"max-calls-per-connection": int64(o.MaxCallsPerConnection),
	} {
		if v < 1 {
			c.Errorf(key, "must be positive")
			ok = false
		}
	}
	if o.MaxMemory < int64(lim.MaxFrameBytes) {
		c.Errorf("max-inflight-bytes", "must be at least max-frame-bytes (%d), or no frame of that size could ever be read", lim.MaxFrameBytes)
		ok = false
	}
	if o.IdleTimeout < 0 {
		c.Errorf("idle-timeout", "must not be negative (0 never closes idle connections)")
		ok = false
	}
	if avroFilter.Get(c) {
		rules, set := avroRules.Lookup(c)
		if !set {
			c.Errorf(avroRules.Name(), "required key is missing")
		}
		if f, err := avrorpc.ParseIPFilter(rules); err != nil {
			c.Errorf("ipFilterRules", "%v", err)
			ok = false
		} else {
			o.Filter = f.Allow
		}
	}
	tlsCfg, tlsOK := tlskeys.ServerConfig(c)
	o.TLS = tlsCfg
	if !ok || !tlsOK {
		return nil, errConfig
	}
	return &Avro{
		name: name, log: log, addr: net.JoinHostPort(bind, strconv.Itoa(port)), opts: o,
		fails: logthrottle.New(log, logthrottle.DefaultEvery),
	}, nil
}

// Name returns the source's name.
func (s *Avro) Name() string { return s.name }

// Addr returns the address the source listens on, nil when not started. With
// port 0 it tells which port the system chose.
func (s *Avro) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// FlumeMetrics implements counter.Monitored with Flume's SourceCounter.
// OpenConnectionCount is current (Flume refreshes it every 60 s) and
// EventReadFail counts connections closed for bad input.
func (s *Avro) FlumeMetrics() map[string]string {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv != nil {
		st := srv.Stats()
		s.counter.OpenConnections.Store(st.Open)
		s.counter.EventReadFail.Store(st.BadInput)
	}
	return s.counter.FlumeMetrics()
}

// Start listens and returns; connections are served until Stop.
func (s *Avro) Start(ctx context.Context, p BatchPutter) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("avro source %s: %w", s.name, err)
	}
	srv := avrorpc.NewServer(&avroHandler{s: s, p: p}, s.opts)
	done := make(chan struct{})
	s.mu.Lock()
	s.srv, s.ln, s.done = srv, ln, done
	s.mu.Unlock()
	s.counter.Started()
	s.log.Info("avro source listening", slog.String("source", s.name), slog.String("addr", ln.Addr().String()),
		slog.Bool("ssl", s.opts.TLS != nil), slog.Bool("deflate", s.opts.Deflate))
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil {
			s.log.Error("avro source stopped accepting", slog.String("source", s.name), slog.Any("err", err))
		}
	}()
	return nil
}

// Stop closes the listener and every connection and waits until every call
// in progress has returned: a batch being put when Stop comes is committed or
// not, and its reply may not reach the client, which then resends it.
// Idempotent.
func (s *Avro) Stop() error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv, s.ln, s.done = nil, nil, nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	<-done
	s.counter.Stopped()
	return err
}

// avroHandler puts what the server decodes through the channel processor.
type avroHandler struct {
	s *Avro
	p BatchPutter
}

func (h *avroHandler) Append(e avrorpc.Event) avrorpc.Status {
	c := &h.s.counter
	c.AppendReceived.Add(1)
	c.EventReceived.Add(1)
	if !h.put([]channel.Event{channel.Event(e)}) {
		return avrorpc.StatusFailed
	}
	c.AppendAccepted.Add(1)
	c.EventAccepted.Add(1)
	return avrorpc.StatusOK
}

func (h *avroHandler) AppendBatch(events []avrorpc.Event) avrorpc.Status {
	c := &h.s.counter
	c.AppendBatchReceived.Add(1)
	c.EventReceived.Add(int64(len(events)))
	evs := make([]channel.Event, len(events))
	for i, e := range events {
		evs[i] = channel.Event(e)
	}
	if !h.put(evs) {
		return avrorpc.StatusFailed
	}
	c.AppendBatchAccepted.Add(1)
	c.EventAccepted.Add(int64(len(events)))
	return avrorpc.StatusOK
}

var _ avrorpc.OriginHandler = (*avroHandler)(nil)

// AppendBatchFrom implements avrorpc.OriginHandler: a batch from a flumed
// sink that named its events (origin and sequence numbers). Each channel
// leaves out the events it committed before (a resend after the sender's
// crash or a lost reply), per event, so a resend cut into other batches is
// recognised too, and the whole batch is answered OK once every event is
// committed, now or before.
func (h *avroHandler) AppendBatchFrom(id *avrorpc.Identity, events []avrorpc.Event) avrorpc.Status {
	op, ok := h.p.(sourceapi.OriginBatchPutter)
	if !ok {
		return h.AppendBatch(events)
	}
	c := &h.s.counter
	c.AppendBatchReceived.Add(1)
	c.EventReceived.Add(int64(len(events)))
	evs := make([]channel.Event, len(events))
	for i, e := range events {
		evs[i] = channel.Event(e)
	}
	if !h.putWith(evs, func() error { return op.PutBatchFrom(channel.OriginID(id.Origin), id.Seqs, evs) }) {
		return avrorpc.StatusFailed
	}
	c.AppendBatchAccepted.Add(1)
	c.EventAccepted.Add(int64(len(events)))
	return avrorpc.StatusOK
}

// put hands events to the channel processor; false means they were refused
// and the client must be told FAILED.
func (h *avroHandler) put(evs []channel.Event) bool {
	return h.putWith(evs, func() error { return h.p.PutBatch(evs) })
}

// putWith runs put, a put of evs, and logs why it was refused.
func (h *avroHandler) putWith(evs []channel.Event, put func() error) bool {
	err := put()
	if err == nil {
		return true
	}
	h.s.counter.ChannelWriteFail.Add(1)
	reason := "channel error"
	switch {
	case errors.Is(err, channel.ErrFull):
		reason = "channel full"
	case errors.Is(err, channel.ErrTxnFull):
		reason = "batch larger than the channel's transactionCapacity"
	case errors.Is(err, channel.ErrClosed):
		reason = "channel closed"
	}
	h.s.fails.Warn(reason, "avro source: unable to put events; answering FAILED so the client resends",
		slog.String("source", h.s.name), slog.Int("events", len(evs)), slog.String("reason", reason), slog.Any("err", err))
	return false
}
