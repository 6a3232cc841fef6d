package thriftrpc

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/flumed/flumed/internal/netconn"
	"github.com/flumed/flumed/internal/thriftrpc/flume"
)

// Handler receives the calls; it returns flume.Status_OK once the events
// are committed, flume.Status_FAILED when they were refused (the client
// resends). Called from many goroutines at once.
type Handler interface {
	AppendBatch(ctx context.Context, events []*flume.ThriftFlumeEvent) flume.Status
}

// ServerOptions configure a Server. Zero values mean the defaults.
type ServerOptions struct {
	Compact        bool        // the compact protocol (Flume's default); else binary
	TLS            *tls.Config // nil: plain TCP
	MaxFrameBytes  int         // a longer frame closes the connection (64 MiB)
	MaxConnections int
	IdleTimeout    time.Duration
	Log            *slog.Logger
}

// ServerStats are a server's counters.
type ServerStats struct {
	Open, Accepted, Evicted, BadInput int64
}

// Server serves ThriftSourceProtocol on listeners.
type Server struct {
	h     Handler
	o     ServerOptions
	conns *netconn.Manager

	mu       sync.Mutex
	closed   bool
	lns      []net.Listener
	wg       sync.WaitGroup
	badInput atomic.Int64
	lastWarn atomic.Int64
}

// NewServer returns a server handing calls to h.
func NewServer(h Handler, o ServerOptions) *Server {
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = 64 << 20
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Server{h: h, o: o, conns: netconn.New(netconn.Options{MaxConnections: o.MaxConnections, IdleTimeout: o.IdleTimeout, Log: o.Log})}
}

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	st := s.conns.Stats()
	return ServerStats{Open: st.Open, Accepted: st.Accepted, Evicted: st.Evicted, BadInput: s.badInput.Load()}
}

// Serve accepts connections on l until Close; it returns nil after Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return l.Close()
	}
	s.lns = append(s.lns, l)
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	for {
		raw, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			s.o.Log.Warn("thrift accept failed; retrying", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		mc, err := s.conns.Admit(raw)
		if err != nil {
			raw.Close()
			continue
		}
		s.wg.Add(1)
		go s.serve(mc)
	}
}

// Close stops accepting, closes every connection and waits for their calls.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, l := range s.lns {
		l.Close()
	}
	s.mu.Unlock()
	s.conns.Close()
	s.wg.Wait()
	return nil
}

// activity marks a connection busy from the first byte of a frame.
type activity struct {
	net.Conn
	mc *netconn.Conn
}

func (a activity) Read(p []byte) (int, error) {
	n, err := a.Conn.Read(p)
	if n > 0 {
		a.mc.Started()
	}
	return n, err
}

func (s *Server) serve(mc *netconn.Conn) {
	defer s.wg.Done()
	defer mc.Close()
	var conn net.Conn = activity{Conn: mc.Conn, mc: mc}
	if s.o.TLS != nil {
		tc := tls.Server(conn, s.o.TLS)
		_ = mc.SetDeadline(time.Now().Add(30 * time.Second))
		if err := tc.Handshake(); err != nil {
			s.bad(mc, "tls handshake", err)
			return
		}
		_ = mc.SetDeadline(time.Time{})
		conn = tc
	}
	conf := &thrift.TConfiguration{MaxFrameSize: int32(s.o.MaxFrameBytes), MaxMessageSize: int32(s.o.MaxFrameBytes)}
	tr := thrift.NewTFramedTransportConf(thrift.NewTSocketFromConnConf(conn, conf), conf)
	var proto thrift.TProtocol
	if s.o.Compact {
		proto = thrift.NewTCompactProtocolConf(tr, conf)
	} else {
		proto = thrift.NewTBinaryProtocolConf(tr, conf)
	}
	proc := flume.NewThriftSourceProtocolProcessor(handler{s.h})
	ctx := context.Background()
	for {
		mc.Waiting()
		ok, err := proc.Process(ctx, proto, proto)
		if err != nil || !ok {
			var te thrift.TTransportException
			switch {
			case mc.Evicted():
			case errors.As(err, &te) && (te.TypeId() == thrift.END_OF_FILE || errors.Is(te.Err(), io.EOF)):
			case errors.Is(err, net.ErrClosed):
			case errors.As(err, &te) && te.TypeId() == thrift.TIMED_OUT:
				s.o.Log.Info("closing idle thrift connection", "remote", mc.RemoteAddr().String())
			default:
				s.bad(mc, "bad frame or call", err)
			}
			return
		}
	}
}

// bad counts and logs (at most once a second) a connection closed for bad input.
func (s *Server) bad(mc *netconn.Conn, what string, err error) {
	s.badInput.Add(1)
	now := time.Now().UnixNano()
	if last := s.lastWarn.Load(); now-last >= int64(time.Second) && s.lastWarn.CompareAndSwap(last, now) {
		s.o.Log.Warn("closing thrift connection: "+what, "remote", mc.RemoteAddr().String(), "err", err)
	}
}

// handler adapts Handler to the generated interface: append is a batch of one.
type handler struct{ h Handler }

func (h handler) Append(ctx context.Context, e *flume.ThriftFlumeEvent) (flume.Status, error) {
	return h.h.AppendBatch(ctx, []*flume.ThriftFlumeEvent{e}), nil
}

func (h handler) AppendBatch(ctx context.Context, events []*flume.ThriftFlumeEvent) (flume.Status, error) {
	return h.h.AppendBatch(ctx, events), nil
}
