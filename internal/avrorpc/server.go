package avrorpc

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flumed/flumed/internal/netconn"
)

// Handler receives the calls a server decodes. Calls of different
// connections arrive concurrently, and so do the calls one client pipelines
// on one connection (up to ServerOptions.MaxCallsPerConnection at once), so
// a channel can commit them together; a connection's handshake call comes
// alone, before any other. The Status returned is what the client is told,
// so a handler returns StatusOK only once the events are safe. Handlers own
// the events they are given; bodies alias the frame they came in.
type Handler interface {
	Append(e Event) Status
	AppendBatch(events []Event) Status
}

// OriginHandler is the optional power of a Handler that deduplicates: an
// appendBatch whose metadata names its events (identity.go) goes to
// AppendBatchFrom instead of AppendBatch, with the same rules. It answers
// OK for an event it committed before without committing it again.
type OriginHandler interface {
	AppendBatchFrom(id *Identity, events []Event) Status
}

// Defaults for ServerOptions' zero values.
const (
	DefaultMaxConnections = 1024
	DefaultMaxMemory      = 512 << 20
	DefaultReadTimeout    = 30 * time.Second
	// DefaultMaxCallsPerConnection is how many pipelined calls of one
	// connection are handled at once: enough for a sink keeping a few
	// batches in flight, few enough that one connection holds at most that
	// many frames (and the global MaxMemory still caps them all).
	DefaultMaxCallsPerConnection = 8
)

// ServerOptions configure a Server. Zero values mean the documented defaults.
type ServerOptions struct {
	Limits  Limits
	Deflate bool // compression-type=deflate: one zlib stream each way
	// DeflateLevel compresses replies (which are a few dozen bytes). Zero means
	// Huffman-only coding, which keeps each connection's compressor small;
	// any level decodes the same on the peer.
	DeflateLevel int
	TLS          *tls.Config // nil: plain TCP
	// MaxConnections caps open connections. At the cap a new connection
	// closes the one idle the longest (internal/netconn); it is refused only
	// when every connection is in the middle of a frame or a call.
	MaxConnections int
	// MaxCallsPerConnection caps the calls of one connection handled at
	// once; past it the connection is not read until one finishes. Replies
	// go out as calls finish, each with its request's serial. 1 handles a
	// connection's calls one at a time, in order. Zero means 8.
	MaxCallsPerConnection int
	// MaxMemory caps frame bytes held by all connections at once (the budget).
	// It must be at least Limits.MaxFrameBytes.
	MaxMemory int64
	// IdleTimeout closes a connection that starts no frame for this long.
	// Zero keeps idle connections open (Flume's behaviour).
	IdleTimeout time.Duration
	// ReadTimeout bounds how long a started frame, and the TLS handshake, may
	// take to arrive, and how long a reply may take to be written.
	ReadTimeout time.Duration
	// Filter, when set, decides whether a peer may connect (ipFilterRules).
	Filter func(net.Addr) bool
	// ClientHashes are client protocol hashes answered without asking for the
	// client's protocol, besides ProtocolHash. Nil means {Flume19Hash}.
	ClientHashes []Hash
	Log          *slog.Logger
}

// ServerStats are a server's counters.
type ServerStats struct {
	Open     int64 // connections open now
	Accepted int64 // connections accepted in total
	Refused  int64 // closed at once: at MaxConnections with all busy, or denied by Filter
	Evicted  int64 // closed idle to make room for a new connection at MaxConnections
	BadInput int64 // closed for breaking the protocol, a limit or a timeout
}

// Server serves Flume's AvroSourceProtocol on one or more listeners.
type Server struct {
	h      Handler
	o      ServerOptions
	log    *slog.Logger
	budget *budget
	conns  *netconn.Manager

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	known     map[Hash]bool // client protocol hashes we accept without their text
	wg        sync.WaitGroup

	open, accepted, refused, badInput atomic.Int64
	badLog                            logLimiter

	// readerWaits counts the times a connection's reader waited in admit for
	// a call to finish: what a test shows as proof that a limit holds the
	// reader back, where it could otherwise only wait and hope.
	readerWaits atomic.Int64
}

// maxLearned bounds how many client protocol hashes a server remembers after
// validating their texts; beyond that it keeps asking (NONE) for them.
const maxLearned = 64

// NewServer returns a server that hands calls to h.
func NewServer(h Handler, o ServerOptions) *Server {
	o.Limits = o.Limits.withDefaults()
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.MaxCallsPerConnection <= 0 {
		o.MaxCallsPerConnection = DefaultMaxCallsPerConnection
	}
	if o.MaxMemory <= 0 {
		o.MaxMemory = DefaultMaxMemory
	}
	o.MaxMemory = max(o.MaxMemory, int64(o.Limits.MaxFrameBytes))
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.DeflateLevel == 0 {
		o.DeflateLevel = flateHuffmanOnly
	}
	if o.ClientHashes == nil {
		o.ClientHashes = []Hash{Flume19Hash}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		h: h, o: o, log: o.Log,
		budget:    &budget{limit: o.MaxMemory},
		listeners: map[net.Listener]struct{}{},
		conns:     netconn.New(netconn.Options{MaxConnections: o.MaxConnections, IdleTimeout: o.IdleTimeout, Log: o.Log}),
		known:     map[Hash]bool{ProtocolHash: true},
	}
	for _, h := range o.ClientHashes {
		s.known[h] = true
	}
	return s
}

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{Open: s.open.Load(), Accepted: s.accepted.Load(), Refused: s.refused.Load(),
		Evicted: s.conns.Stats().Evicted, BadInput: s.badInput.Load()}
}

// Serve accepts connections on l until Close. It returns nil after Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return l.Close()
	}
	s.listeners[l] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	var pause time.Duration
	for {
		raw, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of file descriptors and the like: wait and retry rather
				// than spin or give up.
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "in", pause)
				time.Sleep(pause)
				continue
			}
			return err
		}
		pause = 0
		s.accepted.Add(1)
		// A denied peer is turned away before it is admitted, so it can
		// never take an idle client's place.
		if s.o.Filter != nil && !s.o.Filter(raw.RemoteAddr()) {
			s.refused.Add(1)
			s.warnLimited("refusing connection: denied by ipFilterRules", "remote", raw.RemoteAddr().String())
			raw.Close()
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			raw.Close()
			return nil
		}
		s.wg.Add(1)
		s.mu.Unlock()
		mc, err := s.conns.Admit(raw)
		if err != nil {
			// ErrFull (logged by the manager) or ErrClosed.
			s.wg.Done()
			if errors.Is(err, netconn.ErrFull) {
				s.refused.Add(1)
			}
			raw.Close()
			continue
		}
		s.open.Add(1)
		go s.serveConn(mc)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops accepting, closes every connection and waits until every
// connection's goroutine (and so every handler call) has returned.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	s.mu.Unlock()
	s.conns.Close()
	s.wg.Wait()
	return nil
}

// connFailed counts and logs (rate-limited) a connection closed for bad input.
func (s *Server) connFailed(remote, what string, err error) {
	s.badInput.Add(1)
	s.warnLimited("closing connection: "+what, "remote", remote, "err", err)
}

func (s *Server) warnLimited(msg string, args ...any) {
	if ok, suppressed := s.badLog.allow(time.Now()); ok {
		if suppressed > 0 {
			args = append(args, "suppressed", suppressed)
		}
		s.log.Warn(msg, args...)
	}
}

// logLimiter lets one warning through per second and counts the rest, so a
// flood of bad connections cannot flood the log.
type logLimiter struct {
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

func (l *logLimiter) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.suppressed = 0
	l.next = now.Add(time.Second)
	return true, n
}
