package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/counter"
	"github.com/flumed/flumed/internal/netconn"
	"github.com/flumed/flumed/internal/syslog"
	"github.com/flumed/flumed/source/internal/logthrottle"
)

// SyslogTCP is the syslogtcp source (Flume's SyslogTcpSource), and with
// several ports the multiport_syslogtcp one: it reads syslog messages from
// TCP connections — newline-terminated as Flume reads them, or RFC 6587
// octet-counted — and turns each into an event with Flume's headers
// (internal/syslog). Where Flume puts one event at a time and drops it when
// the channel is full, flumed puts up to batchSize messages of one
// connection in one transaction, as soon as no further complete message is
// already received, and when the channel refuses a batch it retries it
// (doubling from 100 ms to 5 s) without reading on, so TCP pushes back on the
// sender instead of losing its messages. A batch is put whole or not at all;
// a message cut by the end of the connection is never put.
//
// Connections go through internal/netconn (max-connections, idle-timeout):
// a connection is idle between batches, and at the cap the one idle the
// longest is closed to make room.
type SyslogTCP struct {
	name    string
	log     *slog.Logger
	o       SyslogTCPOptions
	counter counter.Source
	fails   *logthrottle.Log
	bad     syslogBadCounts

	mu    sync.Mutex
	lns   []net.Listener
	conns *netconn.Manager
	stop  chan struct{}
	wg    sync.WaitGroup
}

// SyslogPort is one listening port of a syslog TCP source.
type SyslogPort struct {
	Addr   string         // host:port
	Parser *syslog.Parser // the port's parse rules (eventSize, keepFields)
	// Multiport, when set, frames and parses as multiport_syslogtcp does
	// (Flume's SyslogParser) in the port's charset; nil is syslogtcp's rules.
	Multiport *syslog.MultiportLines
}

// SyslogTCPOptions configure a SyslogTCP.
type SyslogTCPOptions struct {
	Ports                []SyslogPort
	BatchSize            int    // events per transaction (Flume's batchSize, 100)
	ReadBufferSize       int    // bytes read from a connection at once (readBufferBytes)
	PortHeader           string // header carrying the local port, "" for none (multiport's portHeader)
	ClientIPHeader       string // header carrying the peer's IP, "" for none
	ClientHostnameHeader string // header carrying the peer's host name (reverse DNS once per connection)
	MaxConnections       int
	IdleTimeout          time.Duration
}

var (
	_ Source            = (*SyslogTCP)(nil)
	_ counter.Monitored = (*SyslogTCP)(nil)
)

// NewSyslogTCP returns a source reading o.Ports.
func NewSyslogTCP(name string, o SyslogTCPOptions, log *slog.Logger) *SyslogTCP {
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.ReadBufferSize <= 0 {
		o.ReadBufferSize = 64 << 10
	}
	return &SyslogTCP{name: name, log: log, o: o, fails: logthrottle.New(log, logthrottle.DefaultEvery)}
}

// Name returns the source's name.
func (s *SyslogTCP) Name() string { return s.name }

// Addrs returns the addresses listened on, nil when not started.
func (s *SyslogTCP) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []net.Addr
	for _, l := range s.lns {
		out = append(out, l.Addr())
	}
	return out
}

// FlumeMetrics implements counter.Monitored: Flume's SourceCounter, plus
// flumed's counts of bad input (SyslogInvalidCount, SyslogIncompleteCount,
// SyslogTruncatedCount: messages cut by the end of a connection, never put).
func (s *SyslogTCP) FlumeMetrics() map[string]string {
	s.mu.Lock()
	if s.conns != nil {
		s.counter.OpenConnections.Store(s.conns.Stats().Open)
	}
	s.mu.Unlock()
	m := s.counter.FlumeMetrics()
	s.bad.fill(m)
	return m
}

// Start listens on every port and returns; connections are served until Stop.
func (s *SyslogTCP) Start(ctx context.Context, p BatchPutter) error {
	var lc net.ListenConfig
	var lns []net.Listener
	for _, port := range s.o.Ports {
		ln, err := lc.Listen(ctx, "tcp", port.Addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("syslog source %s: %w", s.name, err)
		}
		lns = append(lns, ln)
	}
	s.mu.Lock()
	s.lns, s.stop = lns, make(chan struct{})
	s.conns = netconn.New(netconn.Options{MaxConnections: s.o.MaxConnections, IdleTimeout: s.o.IdleTimeout, Log: s.log})
	s.mu.Unlock()
	s.counter.Started()
	for i, ln := range lns {
		s.log.Info("syslog source listening", slog.String("source", s.name), slog.String("addr", ln.Addr().String()))
		s.wg.Add(1)
		go s.accept(ln, s.o.Ports[i], p)
	}
	return nil
}

// Stop closes the listeners and every connection and waits for their
// goroutines. A batch being put is committed or not; one being retried is
// given up (the sender was never told it arrived). Idempotent.
func (s *SyslogTCP) Stop() error {
	s.mu.Lock()
	lns, conns, stop := s.lns, s.conns, s.stop
	s.lns, s.stop = nil, nil
	s.mu.Unlock()
	if stop == nil {
		return nil
	}
	close(stop)
	for _, l := range lns {
		l.Close()
	}
	conns.Close()
	s.wg.Wait()
	s.counter.Stopped()
	return nil
}

func (s *SyslogTCP) accept(ln net.Listener, sp SyslogPort, p BatchPutter) {
	defer s.wg.Done()
	port := ""
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		port = strconv.Itoa(a.Port)
	}
	for {
		raw, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("accept", slog.String("source", s.name), slog.Any("err", err))
			time.Sleep(50 * time.Millisecond) // e.g. out of file descriptors: do not spin
			continue
		}
		mc, err := s.conns.Admit(raw)
		if err != nil {
			raw.Close()
			continue
		}
		s.wg.Add(1)
		go s.serve(mc, sp, port, p)
	}
}

// serve reads one connection's messages and puts them in batches.
func (s *SyslogTCP) serve(mc *netconn.Conn, sp SyslogPort, port string, p BatchPutter) {
	defer s.wg.Done()
	defer mc.Close()
	remote := mc.RemoteAddr().String()
	extra := s.connHeaders(mc, port)
	var st *syslog.Stream
	if sp.Multiport != nil {
		st = syslog.NewMultiportStream(sp.Parser, mc, s.o.ReadBufferSize, *sp.Multiport)
	} else {
		st = syslog.NewStream(sp.Parser, mc, s.o.ReadBufferSize)
	}
	batch := make([]channel.Event, 0, s.o.BatchSize)
	// reading mirrors what the manager was last told (Waiting or Started),
	// so that a busy connection tells it once per wait rather than taking
	// the manager's lock for every message.
	reading := false
	for {
		if len(batch) == 0 && st.Buffered() == 0 {
			mc.Waiting()
			reading = false
		}
		e, err := st.Next()
		if err == nil {
			if !reading {
				mc.Started()
				reading = true
			}
			s.bad.count(e, s.fails, s.name, remote)
			for k, v := range extra {
				e.Headers[k] = v
			}
			batch = append(batch, channel.Event{Headers: e.Headers, Body: e.Body})
		}
		// Put when the batch is full, when no further complete message is
		// already here (so a quiet sender's messages do not wait), and
		// before giving up on the connection.
		if len(batch) > 0 && (err != nil || len(batch) == s.o.BatchSize || !st.Ready()) {
			if !s.put(p, batch) {
				return
			}
			batch = make([]channel.Event, 0, s.o.BatchSize) // the channel owns the old array
		}
		if err != nil {
			s.ended(mc, remote, err)
			return
		}
	}
}

// put puts one batch, retrying while the channel refuses it; false when the
// source is stopping.
func (s *SyslogTCP) put(p BatchPutter, batch []channel.Event) bool {
	s.counter.AppendBatchReceived.Add(1)
	s.counter.EventReceived.Add(int64(len(batch)))
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := p.PutBatch(batch)
		if err == nil {
			s.counter.AppendBatchAccepted.Add(1)
			s.counter.EventAccepted.Add(int64(len(batch)))
			return true
		}
		s.counter.ChannelWriteFail.Add(1)
		s.fails.Warn("put", "channel refused a syslog batch; retrying without reading on",
			slog.String("source", s.name), slog.Int("events", len(batch)), slog.Any("err", err), slog.Duration("retry-in", wait))
		select {
		case <-s.stop:
			s.log.Warn("syslog source stopping: a refused batch is given up", slog.String("source", s.name), slog.Int("events", len(batch)))
			return false
		case <-time.After(wait):
		}
	}
}

// ended logs why a connection's reading stopped.
func (s *SyslogTCP) ended(mc *netconn.Conn, remote string, err error) {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
	case mc.Evicted():
		s.log.Debug("syslog connection closed to make room for another", slog.String("remote", remote))
	case errors.Is(err, syslog.ErrTruncated):
		s.bad.truncated.Add(1)
		s.fails.Warn("truncated", "syslog connection ended inside a message; the partial message is dropped",
			slog.String("source", s.name), slog.String("remote", remote))
	case errors.As(err, &ne) && ne.Timeout():
		s.log.Info("closing idle syslog connection", slog.String("source", s.name), slog.String("remote", remote))
	case errors.Is(err, net.ErrClosed):
	default:
		s.log.Info("syslog connection failed", slog.String("source", s.name), slog.String("remote", remote), slog.Any("err", err))
	}
}

// connHeaders returns the headers every event of a connection gets.
func (s *SyslogTCP) connHeaders(c net.Conn, port string) map[string]string {
	h := map[string]string{}
	if s.o.PortHeader != "" {
		h[s.o.PortHeader] = port
	}
	ip := ""
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip = a.IP.String()
	}
	if s.o.ClientIPHeader != "" {
		h[s.o.ClientIPHeader] = ip
	}
	if s.o.ClientHostnameHeader != "" {
		h[s.o.ClientHostnameHeader] = hostnameOf(ip)
	}
	return h
}

// hostnameOf resolves ip as Java's InetSocketAddress.getHostName does: the
// name, or the address itself when it has none.
func hostnameOf(ip string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if names, err := net.DefaultResolver.LookupAddr(ctx, ip); err == nil && len(names) > 0 {
		n := names[0]
		if len(n) > 1 && n[len(n)-1] == '.' {
			n = n[:len(n)-1]
		}
		return n
	}
	return ip
}
