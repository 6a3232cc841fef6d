package source

import (
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

// SyslogUDP is the syslogudp source (Flume's SyslogUDPSource): each datagram
// is one message, parsed as Flume does (its first line only, at most
// eventSize bytes; internal/syslog). A reader goroutine parses datagrams
// into a queue of at most QueueEvents events; a putter takes up to BatchSize
// of them per transaction and retries a refused batch. UDP cannot push back,
// so when the queue is full (the channel is slower than the senders) a
// datagram is dropped, counted in SyslogDroppedCount and logged (throttled):
// memory stays bounded whatever arrives. Flume drops too, one event at a
// time, when its channel is full.
type SyslogUDP struct {
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
}

// SyslogUDPOptions configure a SyslogUDP.
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
	_ Source            = (*SyslogUDP)(nil)
	_ counter.Monitored = (*SyslogUDP)(nil)
)

// NewSyslogUDP returns a source reading datagrams on o.Addr.
func NewSyslogUDP(name string, o SyslogUDPOptions, log *slog.Logger) *SyslogUDP {
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.QueueEvents <= 0 {
		o.QueueEvents = 10 * o.BatchSize
	}
	return &SyslogUDP{name: name, log: log, o: o, fails: logthrottle.New(log, logthrottle.DefaultEvery)}
}

// Name returns the source's name.
func (s *SyslogUDP) Name() string { return s.name }

// Addr returns the address listened on, nil when not started.
func (s *SyslogUDP) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pc == nil {
		return nil
	}
	return s.pc.LocalAddr()
}

// ReceiveBuffer returns SO_RCVBUF as the kernel set it (Linux doubles what
// is asked, within net.core.rmem_max), 0 when unknown.
func (s *SyslogUDP) ReceiveBuffer() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rcvbuf
}

// FlumeMetrics implements counter.Monitored (see SyslogTCP.FlumeMetrics).
func (s *SyslogUDP) FlumeMetrics() map[string]string {
	m := s.counter.FlumeMetrics()
	s.bad.fill(m)
	return m
}

// Start binds the socket and returns; datagrams are read until Stop.
func (s *SyslogUDP) Start(ctx context.Context, p BatchPutter) error {
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", s.o.Addr)
	if err != nil {
		return fmt.Errorf("syslog udp source %s: %w", s.name, err)
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
	s.log.Info("syslog udp source listening", slog.String("source", s.name), slog.String("addr", pc.LocalAddr().String()),
		slog.Int("SO_RCVBUF", rcvbuf))
	s.wg.Add(2)
	go s.read(pc, q)
	go s.putLoop(p, q, stop)
	return nil
}

// Stop closes the socket, puts what was already queued (once; a refused
// batch is given up), and waits. Idempotent.
func (s *SyslogUDP) Stop() error {
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
func (s *SyslogUDP) read(pc net.PacketConn, q chan<- channel.Event) {
	defer s.wg.Done()
	defer close(q)
	buf := make([]byte, 64<<10) // the largest UDP payload
	hosts := map[string]string{}
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("syslog udp read failed", slog.String("source", s.name), slog.Any("err", err))
			}
			return
		}
		e, ok := s.o.Parser.Datagram(buf[:n])
		if !ok {
			continue // blank: Flume drops it too
		}
		remote := from.String()
		s.bad.count(e, s.fails, s.name, remote)
		if s.o.ClientIPHeader != "" || s.o.ClientHostnameHeader != "" {
			ip := ""
			if a, ok := from.(*net.UDPAddr); ok {
				ip = a.IP.String()
			}
			if s.o.ClientIPHeader != "" {
				e.Headers[s.o.ClientIPHeader] = ip
			}
			if s.o.ClientHostnameHeader != "" {
				h, ok := hosts[ip]
				if !ok {
					if len(hosts) >= 1024 { // bounded: senders are few, spoofed floods are not
						clear(hosts)
					}
					h = hostnameOf(ip)
					hosts[ip] = h
				}
				e.Headers[s.o.ClientHostnameHeader] = h
			}
		}
		select {
		case q <- channel.Event{Headers: e.Headers, Body: e.Body}:
		default:
			s.bad.dropped.Add(1)
			s.fails.Warn("udp-drop", "syslog udp queue full (the channel is slower than the senders); datagram dropped",
				slog.String("source", s.name), slog.Int("queue", cap(q)))
		}
	}
}

// putLoop puts queued events in batches until q is closed and drained.
func (s *SyslogUDP) putLoop(p BatchPutter, q <-chan channel.Event, stop <-chan struct{}) {
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
			s.fails.Warn("put", "channel refused a syslog udp batch; retrying", slog.String("source", s.name),
				slog.Int("events", len(batch)), slog.Any("err", err))
			select {
			case <-stop:
				s.bad.dropped.Add(int64(len(batch)))
				s.log.Warn("syslog udp source stopping: a refused batch is given up", slog.String("source", s.name), slog.Int("events", len(batch)))
				for range q { // drain what the reader still queues until it closes q
					s.bad.dropped.Add(1)
				}
				return
			case <-time.After(wait):
			}
		}
	}
}
