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

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/thriftrpc/flume"
	"github.com/flumed/flumed/internal/tlskeys"
)

// Thrift is the thrift sink (Flume's ThriftSink with its ThriftRpcClient):
// each batch is one appendBatch call over framed transport, compact (the
// default) or binary protocol, optionally TLS; the take commits only once
// the call is answered OK. Any other answer or error rolls the batch back,
// closes the connection and reconnects on the next batch. One call at a
// time, as Flume's client; no Kerberos.
type Thrift struct {
	name string
	o    ThriftOptions
	log  *slog.Logger
	eng  *Engine

	// The connection; only the runner goroutine uses it (DeliverFunc).
	tr       thrift.TTransport
	client   *flume.ThriftSourceProtocolClient
	answered bool // the connection has had an OK: only then is it logged as connected
}

// ThriftOptions configure a thrift sink.
type ThriftOptions struct {
	Addr           string
	Compact        bool
	BatchSize      int
	ConnectTimeout time.Duration
	RequestTimeout time.Duration
	TLS            *tls.Config
}

var _ Sink = (*Thrift)(nil)

// The thrift sink's keys (Flume's RpcClientConfigurationConstants).
var (
	thriftHost     = config.String("hostname", "", "the host of the thrift source").Required()
	thriftPort     = config.Port("port", "its port").Required()
	thriftBatch    = config.Int("batch-size", 100, "events per appendBatch call and per take transaction")
	thriftProtocol = config.OneOf("protocol", "compact", []string{"compact", "binary"}, "the Thrift protocol; the transport is framed")
	thriftConnect  = config.Millis("connect-timeout", 20*time.Second, "how long a connect may take")
	thriftRequest  = config.Millis("request-timeout", 20*time.Second, "how long a call may take to be answered")
	thriftReset    = config.Ignore("connection-reset-interval", "flumed reconnects only after a failure; ignored")
	thriftKerberos = config.Ignore("kerberos", "Kerberos is not supported by flumed")
	thriftClientP  = config.Ignore("client-principal", "Kerberos is not supported by flumed")
	thriftClientK  = config.Ignore("client-keytab", "Kerberos is not supported by flumed")
	thriftServerP  = config.Ignore("server-principal", "Kerberos is not supported by flumed")
)

var thriftType = &config.Spec{
	Type: "thrift", Classes: []string{"org.apache.flume.sink.ThriftSink"},
	Doc: "commits a take only once appendBatch is answered OK; reconnects after any failure; logs connected only " +
		"after the first OK; TLS truststores are PKCS12 or PEM (JKS is refused with the keytool command that " +
		"converts it); no Kerberos",
	Keys: []config.Decl{thriftHost, thriftPort, thriftBatch, thriftProtocol, thriftConnect, thriftRequest,
		thriftReset, thriftKerberos, thriftClientP, thriftClientK, thriftServerP, tlskeys.Client},
}

func newThriftFactory(name string, c *config.Context, log *slog.Logger) (Sink, error) {
	o := ThriftOptions{
		Addr:           net.JoinHostPort(thriftHost.Get(c), strconv.Itoa(thriftPort.Get(c))),
		Compact:        thriftProtocol.Get(c) == "compact",
		BatchSize:      thriftBatch.Get(c),
		ConnectTimeout: thriftConnect.Get(c),
		RequestTimeout: thriftRequest.Get(c),
	}
	if o.BatchSize < 1 {
		c.Errorf(thriftBatch.Name(), "must be at least 1, not %d", o.BatchSize)
	}
	cfg, ok := tlskeys.ClientConfig(c)
	if !ok {
		return nil, errors.New("invalid TLS configuration")
	}
	o.TLS = cfg
	return NewThrift(name, o, log), nil
}

// NewThrift returns a thrift sink.
func NewThrift(name string, o ThriftOptions, log *slog.Logger) *Thrift {
	if o.BatchSize < 1 {
		o.BatchSize = thriftBatch.Default()
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = thriftConnect.Default()
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = thriftRequest.Default()
	}
	return &Thrift{name: name, o: o, log: orDiscard(log)}
}

// Name implements Sink.
func (s *Thrift) Name() string { return s.name }

// BatchSize implements BatchSizer.
func (s *Thrift) BatchSize() int { return s.o.BatchSize }

// BatchSizeKey implements BatchSizeKeyer.
func (s *Thrift) BatchSizeKey() string { return "batch-size" }

// Start implements Sink; the connection is made by the first batch.
func (s *Thrift) Start(_ context.Context, ch channel.Channel) error {
	s.eng = NewEngine(EngineOptions{Sink: s.name, Channel: ch, BatchSize: s.o.BatchSize, Depth: 1, Log: s.log}, DeliverFunc(s.deliver))
	return nil
}

// Process implements Sink.
func (s *Thrift) Process(ctx context.Context) (Status, error) {
	if s.eng == nil {
		return Backoff, errors.New("thrift sink not started")
	}
	return s.eng.Process(ctx)
}

// Stop implements Sink: it waits for the commits under way and closes the
// connection.
func (s *Thrift) Stop() error {
	if s.eng != nil {
		_ = s.eng.Settle(context.Background())
	}
	s.eng = nil
	s.disconnect()
	return nil
}

func (s *Thrift) deliver(ctx context.Context, events []channel.Event) error {
	if s.client == nil {
		if err := s.connect(); err != nil {
			return err
		}
	}
	batch := make([]*flume.ThriftFlumeEvent, len(events))
	for i, e := range events {
		h := e.Headers
		if h == nil {
			h = map[string]string{}
		}
		batch[i] = &flume.ThriftFlumeEvent{Headers: h, Body: e.Body}
	}
	st, err := s.client.AppendBatch(ctx, batch)
	if err == nil && st != flume.Status_OK {
		err = fmt.Errorf("thrift sink %s: the source answered %v", s.name, st)
	}
	if err != nil {
		s.disconnect() // a failed call leaves the stream in an unknown state
		return fmt.Errorf("thrift sink %s: append batch: %w", s.name, err)
	}
	if !s.answered {
		// Said only now: a TCP connect alone (to anything listening) proves
		// nothing about the peer.
		s.answered = true
		s.log.Info("thrift sink connected", slog.String("sink", s.name), slog.String("addr", s.o.Addr))
	}
	return nil
}

func (s *Thrift) connect() error {
	conf := &thrift.TConfiguration{ConnectTimeout: s.o.ConnectTimeout, SocketTimeout: s.o.RequestTimeout, TLSConfig: s.o.TLS}
	var sock thrift.TTransport
	if s.o.TLS != nil {
		sock = thrift.NewTSSLSocketConf(s.o.Addr, conf)
	} else {
		sock = thrift.NewTSocketConf(s.o.Addr, conf)
	}
	tr := thrift.NewTFramedTransportConf(sock, conf)
	if err := tr.Open(); err != nil {
		return fmt.Errorf("thrift sink %s: connect %s: %w", s.name, s.o.Addr, err)
	}
	var pf thrift.TProtocolFactory = thrift.NewTBinaryProtocolFactoryConf(conf)
	if s.o.Compact {
		pf = thrift.NewTCompactProtocolFactoryConf(conf)
	}
	s.tr, s.client, s.answered = tr, flume.NewThriftSourceProtocolClientFactory(tr, pf), false
	return nil
}

func (s *Thrift) disconnect() {
	if s.tr != nil {
		s.tr.Close()
	}
	s.tr, s.client = nil, nil
}
