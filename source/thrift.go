package source

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/counter"
	"github.com/flumed/flumed/internal/netconn"
	"github.com/flumed/flumed/internal/thriftrpc"
	"github.com/flumed/flumed/internal/thriftrpc/flume"
	"github.com/flumed/flumed/internal/tlskeys"
	"github.com/flumed/flumed/source/internal/logthrottle"
)

// Thrift is the thrift source (Flume's ThriftSource): Flume's
// ThriftSourceProtocol over framed transport, compact (Flume's default) or
// binary protocol, optionally TLS. append and appendBatch are answered OK
// once the events are committed, FAILED when the channel refused them.
// flumed bounds frames (max-frame-bytes) and connections (netconn).
type Thrift struct {
	name    string
	log     *slog.Logger
	addr    string
	opts    thriftrpc.ServerOptions
	counter counter.Source
	fails   *logthrottle.Log

	mu   sync.Mutex
	srv  *thriftrpc.Server
	ln   net.Listener
	done chan struct{}
}

var (
	_ Source            = (*Thrift)(nil)
	_ counter.Monitored = (*Thrift)(nil)
)

// The thrift source's keys.
var (
	thriftBind     = config.String("bind", "0.0.0.0", "the address listened on")
	thriftPort     = config.ListenPort("port", "the port listened on").Required()
	thriftProtocol = config.OneOf("protocol", "compact", []string{"compact", "binary"}, "the Thrift protocol; the transport is framed")
	thriftMaxFrame = config.Bytes("max-frame-bytes", 64<<20, "a longer frame closes the connection").Flumed()
	thriftMaxConns = config.Int("max-connections", netconn.DefaultMaxConnections, "open connections at most; at the cap the longest-idle one is closed to make room").Flumed()
	thriftIdle     = config.Millis("idle-timeout", time.Hour, "close a connection idle this long; 0 never").Flumed()
	thriftThreads  = config.Ignore("threads", "each connection has its own goroutine; bound them with max-connections")
	thriftKerberos = config.Ignore("kerberos", "Kerberos is not supported by flumed")
	thriftPrinc    = config.Ignore("agent-principal", "Kerberos is not supported by flumed")
	thriftKeytab   = config.Ignore("agent-keytab", "Kerberos is not supported by flumed")
)

var thriftType = &config.Spec{
	Type: "thrift", Classes: []string{"org.apache.flume.source.ThriftSource"},
	Doc: "answers OK only after the batch committed, FAILED when the channel refused it; a garbage frame or one over " +
		"max-frame-bytes closes its connection and is counted (EventReadFail); TLS keystores are PKCS12 or PEM (JKS " +
		"is refused with the keytool command that converts it); at max-connections the longest-idle connection makes " +
		"room; no Kerberos",
	Keys: []config.Decl{thriftBind, thriftPort, thriftProtocol, thriftMaxFrame, thriftMaxConns, thriftIdle,
		thriftThreads, thriftKerberos, thriftPrinc, thriftKeytab, tlskeys.Server, ProcessorKeys},
}

func newThriftSource(name string, c *config.Context, log *slog.Logger) (Source, error) {
	o := thriftrpc.ServerOptions{
		Compact:        thriftProtocol.Get(c) == "compact",
		MaxFrameBytes:  int(thriftMaxFrame.Get(c)),
		MaxConnections: thriftMaxConns.Get(c),
		IdleTimeout:    thriftIdle.Get(c),
	}
	cfg, ok := tlskeys.ServerConfig(c)
	if !ok {
		return nil, errConfig
	}
	o.TLS = cfg
	return NewThrift(name, net.JoinHostPort(thriftBind.Get(c), strconv.Itoa(thriftPort.Get(c))), o, log), nil
}

// NewThrift returns a thrift source listening on addr.
func NewThrift(name, addr string, o thriftrpc.ServerOptions, log *slog.Logger) *Thrift {
	o.Log = log
	return &Thrift{name: name, log: log, addr: addr, opts: o, fails: logthrottle.New(log, logthrottle.DefaultEvery)}
}

// Name returns the source's name.
func (s *Thrift) Name() string { return s.name }

// Addr returns the address listened on, nil when not started.
func (s *Thrift) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// FlumeMetrics implements counter.Monitored with Flume's SourceCounter.
func (s *Thrift) FlumeMetrics() map[string]string {
	s.mu.Lock()
	if s.srv != nil {
		st := s.srv.Stats()
		s.counter.OpenConnections.Store(st.Open)
		s.counter.EventReadFail.Store(st.BadInput)
	}
	s.mu.Unlock()
	return s.counter.FlumeMetrics()
}

// Start listens and returns; connections are served until Stop.
func (s *Thrift) Start(ctx context.Context, p BatchPutter) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("thrift source %s: %w", s.name, err)
	}
	srv := thriftrpc.NewServer(&thriftHandler{s: s, p: p}, s.opts)
	done := make(chan struct{})
	s.mu.Lock()
	s.srv, s.ln, s.done = srv, ln, done
	s.mu.Unlock()
	s.counter.Started()
	s.log.Info("thrift source listening", slog.String("source", s.name), slog.String("addr", ln.Addr().String()), slog.Bool("compact", s.opts.Compact))
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return nil
}

// Stop closes the listener and every connection and waits for calls in
// progress. Idempotent.
func (s *Thrift) Stop() error {
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

type thriftHandler struct {
	s *Thrift
	p BatchPutter
}

func (h *thriftHandler) AppendBatch(_ context.Context, events []*flume.ThriftFlumeEvent) flume.Status {
	c := &h.s.counter
	c.AppendBatchReceived.Add(1)
	c.EventReceived.Add(int64(len(events)))
	evs := make([]channel.Event, len(events))
	for i, e := range events {
		evs[i] = channel.Event{Headers: e.Headers, Body: e.Body}
		if evs[i].Headers == nil {
			evs[i].Headers = map[string]string{}
		}
	}
	if err := h.p.PutBatch(evs); err != nil {
		c.ChannelWriteFail.Add(1)
		h.s.fails.Warn("put", "thrift source: channel refused a batch; answered FAILED", slog.String("source", h.s.name), slog.Any("err", err))
		return flume.Status_FAILED
	}
	c.AppendBatchAccepted.Add(1)
	c.EventAccepted.Add(int64(len(events)))
	return flume.Status_OK
}
