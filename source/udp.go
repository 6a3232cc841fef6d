package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/counter"
	"github.com/flumed/flumed/internal/syslog"
	"github.com/flumed/flumed/source/internal/logthrottle"
)

// UDP is the syslogudp source (Flume's SyslogUDPSource) and the netcatudp
// one (Flume's NetcatUdpSource): each datagram is one message. syslogudp
// parses it as Flume does (its first line only, at most eventSize bytes;
// internal/syslog); netcatudp takes its bytes up to the first "\n" as the
// body, with the sender as "/ip:port" in remoteAddressHeader when that is
// set. A reader goroutine parses datagrams
// into a queue of at most QueueEvents events; a putter takes up to BatchSize
// of them per transaction and retries a refused batch. UDP cannot push back,
// so when the queue is full (the channel is slower than the senders) a
// datagram is dropped, counted in SyslogDroppedCount and logged (throttled):
// memory stays bounded whatever arrives. Flume drops too, one event at a
// time, when its channel is full.
type UDP struct {
	name    string
	log     *slog.Logger
	o       SyslogUDPOptions
	counter counter.Source
	fails   *logthrottle.Log
	bad     syslogBadCounts

	mu     sync.Mutex
	pc     net.PacketConn
	stop   chan struct{}
	wg     sync.WaitGroup
	rcvbuf int // SO_RCVBUF as the kernel set it
	kind   string
	decode func(b []byte, from net.Addr) (channel.Event, bool)
}

// SyslogUDPOptions configure a syslogudp source.
type SyslogUDPOptions struct {
	Addr                 string
	Parser               *syslog.Parser
	BatchSize            int // events per transaction (100)
	QueueEvents          int // parsed events waiting for the channel (10 × BatchSize)
	ReceiveBuffer        int // SO_RCVBUF to ask for; 0 keeps the system's
	ClientIPHeader       string
	ClientHostnameHeader string
}

var (
	_ Source            = (*UDP)(nil)
	_ counter.Monitored = (*UDP)(nil)
)

// NewSyslogUDP returns a syslogudp source reading datagrams on o.Addr.
func NewSyslogUDP(name string, o SyslogUDPOptions, log *slog.Logger) *UDP {
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.QueueEvents <= 0 {
		o.QueueEvents = 10 * o.BatchSize
	}
	s := &UDP{name: name, log: log, o: o, fails: logthrottle.New(log, logthrottle.DefaultEvery), kind: "syslog udp"}
	hosts := map[string]string{} // only the reader goroutine uses it
	s.decode = func(b []byte, from net.Addr) (channel.Event, bool) {
		e, ok := o.Parser.Datagram(b)
		if !ok {
			return channel.Event{}, false // blank: Flume drops it too
		}
		s.bad.count(e, s.fails, s.name, from.String())
		if o.ClientIPHeader != "" || o.ClientHostnameHeader != "" {
			ip := ""
			if a, ok := from.(*net.UDPAddr); ok {
				ip = a.IP.String()
			}
			if o.ClientIPHeader != "" {
				e.Headers[o.ClientIPHeader] = ip
			}
			if o.ClientHostnameHeader != "" {
				h, ok := hosts[ip]
				if !ok {
					if len(hosts) >= 1024 { // bounded: senders are few, spoofed floods are not
						clear(hosts)
					}
					h = hostnameOf(ip)
					hosts[ip] = h
				}
				e.Headers[o.ClientHostnameHeader] = h
			}
		}
		return channel.Event{Headers: e.Headers, Body: e.Body}, true
	}
	return s
}

// NewNetcatUDP returns a netcatudp source reading datagrams on addr.
// remoteHeader, when set, names the header given the sender as "/ip:port"
// (Java's InetSocketAddress.toString).
func NewNetcatUDP(name, addr, remoteHeader string, log *slog.Logger) *UDP {
	s := &UDP{name: name, log: log, o: SyslogUDPOptions{Addr: addr, BatchSize: 100, QueueEvents: 1000},
		fails: logthrottle.New(log, logthrottle.DefaultEvery), kind: "netcat udp"}
	s.decode = func(b []byte, from net.Addr) (channel.Event, bool) {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[:i]
		}
		e := channel.Event{Headers: map[string]string{}, Body: bytes.Clone(b)}
		if remoteHeader != "" {
			e.Headers[remoteHeader] = "/" + from.String()
		}
		return e, true
	}
	return s
}

// Name returns the source's name.
func (s *UDP) Name() string { return s.name }

// Addr returns the address listened on, nil when not started.
func (s *UDP) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pc == nil {
		return nil
	}
	return s.pc.LocalAddr()
}

// ReceiveBuffer returns SO_RCVBUF as the kernel set it (Linux doubles what
// is asked, within net.core.rmem_max), 0 when unknown.
func (s *UDP) ReceiveBuffer() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rcvbuf
}

// FlumeMetrics implements counter.Monitored (see SyslogTCP.FlumeMetrics).
func (s *UDP) FlumeMetrics() map[string]string {
	m := s.counter.FlumeMetrics()
	s.bad.fill(m)
	return m
}

// Start binds the socket and returns; datagrams are read until Stop.
func (s *UDP) Start(ctx context.Context, p BatchPutter) error {
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", s.o.Addr)
	if err != nil {
		return fmt.Errorf("%s source %s: %w", s.kind, s.name, err)
	}
	rcvbuf := 0
	if uc, ok := pc.(*net.UDPConn); ok {
		if s.o.ReceiveBuffer > 0 {
			if err := uc.SetReadBuffer(s.o.ReceiveBuffer); err != nil {
				s.log.Warn("cannot set SO_RCVBUF", slog.String("source", s.name), slog.Any("err", err))
			}
		}
		rcvbuf = socketReceiveBuffer(uc)
	}
	q := make(chan channel.Event, s.o.QueueEvents)
	s.mu.Lock()
	s.pc, s.stop, s.rcvbuf = pc, make(chan struct{}), rcvbuf
	stop := s.stop
	s.mu.Unlock()
	s.counter.Started()
	s.log.Info(s.kind+" source listening", slog.String("source", s.name), slog.String("addr", pc.LocalAddr().String()),
		slog.Int("SO_RCVBUF", rcvbuf))
	s.wg.Add(2)
	go s.read(pc, q)
	go s.putLoop(p, q, stop)
	return nil
}

// Stop closes the socket, puts what was already queued (once; a refused
// batch is given up), and waits. Idempotent.
func (s *UDP) Stop() error {
	s.mu.Lock()
	pc, stop := s.pc, s.stop
	s.pc, s.stop = nil, nil
	s.mu.Unlock()
	if pc == nil {
		return nil
	}
	close(stop)
	pc.Close()
	s.wg.Wait()
	s.counter.Stopped()
	return nil
}

// read parses datagrams into q until the socket is closed; it closes q.
func (s *UDP) read(pc net.PacketConn, q chan<- channel.Event) {
	defer s.wg.Done()
	defer close(q)
	buf := make([]byte, 64<<10) // the largest UDP payload
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn(s.kind+" read failed", slog.String("source", s.name), slog.Any("err", err))
			}
			return
		}
		e, ok := s.decode(buf[:n], from)
		if !ok {
			continue
		}
		select {
		case q <- e:
		default:
			s.bad.dropped.Add(1)
			s.fails.Warn("udp-drop", s.kind+" queue full (the channel is slower than the senders); datagram dropped",
				slog.String("source", s.name), slog.Int("queue", cap(q)))
		}
	}
}

// putLoop puts queued events in batches until q is closed and drained.
func (s *UDP) putLoop(p BatchPutter, q <-chan channel.Event, stop <-chan struct{}) {
	defer s.wg.Done()
	for {
		e, ok := <-q
		if !ok {
			return
		}
		batch := make([]channel.Event, 1, s.o.BatchSize)
		batch[0] = e
	fill:
		for len(batch) < s.o.BatchSize {
			select {
			case e, ok := <-q:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			default:
				break fill
			}
		}
		s.counter.AppendBatchReceived.Add(1)
		s.counter.EventReceived.Add(int64(len(batch)))
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
			err := p.PutBatch(batch)
			if err == nil {
				s.counter.AppendBatchAccepted.Add(1)
				s.counter.EventAccepted.Add(int64(len(batch)))
				break
			}
			s.counter.ChannelWriteFail.Add(1)
			s.fails.Warn("put", "channel refused a "+s.kind+" batch; retrying", slog.String("source", s.name),
				slog.Int("events", len(batch)), slog.Any("err", err))
			select {
			case <-stop:
				s.bad.dropped.Add(int64(len(batch)))
				s.log.Warn(s.kind+" source stopping: a refused batch is given up", slog.String("source", s.name), slog.Int("events", len(batch)))
				for range q { // drain what the reader still queues until it closes q
					s.bad.dropped.Add(1)
				}
				return
			case <-time.After(wait):
			}
		}
	}
}
