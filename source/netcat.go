package source

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/netconn"
	"github.com/flumed/flumed/source/internal/charset"
)

// Netcat is the netcat source (FLUME.md §2.5): it listens on TCP and turns
// every "\n"-terminated line into one event without headers, in its own
// transaction. The body is the line without the "\n" (a "\r" before it is
// kept), in UTF-8. Each event is answered "OK\n" (when ack-every-event is
// true) or "FAILED: <reason>\n" when the channel refused it, so a client
// knows what to resend. A line of max-line-length characters (counting the
// newline) or more gets Flume's exact "FAILED: Event exceeds the maximum
// length (N chars, including newline)" and the connection is closed; so is a
// final line without "\n", which is never acknowledged.
//
// flumed bounds what Flume does not: at most max-connections connections
// (through internal/netconn: one more closes the connection idle the longest
// between lines, or, when every connection is in the middle of a line, is
// answered "FAILED: too many connections" and closed), and a connection
// silent for idle-timeout is closed (defaults: netcatType). Flume
// has no counters for this source and neither has flumed.
type Netcat struct {
	name string
	log  *slog.Logger
	opts netcatOptions

	mu       sync.Mutex
	ln       net.Listener
	conns    *netconn.Manager
	stopping bool
	wg       sync.WaitGroup
}

type netcatOptions struct {
	addr          string
	maxLineLength int // characters, including the newline
	ack           bool
	latin1        bool // the encoding is ISO-8859-1: bytes become runes
	maxConns      int
	idleTimeout   time.Duration
}

var _ Source = (*Netcat)(nil)

var (
	netcatBind     = config.String("bind", "", "the address to listen on").Required()
	netcatPort     = config.ListenPort("port", "the port to listen on (0 picks a free one)").Required()
	netcatMaxLine  = config.Int("max-line-length", 512, "the longest line in characters, newline included; longer is cut")
	netcatAck      = config.Bool("ack-every-event", true, "answer OK for every line put")
	netcatEncoding = config.String("encoding", "utf-8", "UTF-8, US-ASCII or ISO-8859-1")
	netcatConns    = config.Int("max-connections", 100, "connections served at once; one more is refused").Flumed()
	netcatIdle     = config.Millis("idle-timeout", 5*time.Minute, "a silent connection is closed after this; 0 never").Flumed()
)

var netcatType = &config.Spec{Type: "netcat", Classes: []string{"org.apache.flume.source.NetcatSource"},
	Doc:  "bounds connections (`max-connections`: the longest-idle connection makes room; only when every connection is mid-line is the new one refused) and idle time (`idle-timeout`)",
	Keys: []config.Decl{netcatBind, netcatPort, netcatMaxLine, netcatAck, netcatEncoding, netcatConns, netcatIdle, ProcessorKeys}}

func newNetcatSource(name string, c *config.Context, log *slog.Logger) (Source, error) {
	o := netcatOptions{
		maxLineLength: netcatMaxLine.Get(c),
		ack:           netcatAck.Get(c),
		maxConns:      netcatConns.Get(c),
		idleTimeout:   netcatIdle.Get(c),
	}
	ok := true
	bind := netcatBind.Get(c)
	port, portOK := netcatPort.Lookup(c)
	if bind == "" || !portOK {
		ok = false
	}
	o.addr = net.JoinHostPort(bind, strconv.Itoa(port))
	if o.maxLineLength < 1 {
		c.Errorf("max-line-length", "must be positive, not %d", o.maxLineLength)
		ok = false
	}
	if o.maxConns < 1 {
		c.Errorf("max-connections", "must be positive, not %d", o.maxConns)
		ok = false
	}
	if o.idleTimeout < 0 {
		c.Errorf("idle-timeout", "must not be negative")
		ok = false
	}
	enc := netcatEncoding.Get(c)
	if !charset.Supported(enc) {
		c.Errorf("encoding", "unsupported encoding %q (flumed supports UTF-8, US-ASCII and ISO-8859-1)", enc)
		ok = false
	}
	o.latin1 = charset.IsLatin1(enc)
	if !ok {
		return nil, errConfig
	}
	return &Netcat{name: name, log: log, opts: o}, nil
}

// Name returns the source's name.
func (s *Netcat) Name() string { return s.name }

// Addr returns the address the source listens on, nil when not started. With
// port 0 it tells which port the system chose.
func (s *Netcat) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Start listens and returns; connections are served until Stop.
func (s *Netcat) Start(ctx context.Context, p BatchPutter) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.addr)
	if err != nil {
		return fmt.Errorf("netcat source %s: %w", s.name, err)
	}
	s.mu.Lock()
	s.ln, s.stopping = ln, false
	s.conns = netconn.New(netconn.Options{MaxConnections: s.opts.maxConns, IdleTimeout: s.opts.idleTimeout, Log: s.log})
	s.mu.Unlock()
	s.log.Info("netcat source listening", slog.String("addr", ln.Addr().String()))
	s.wg.Add(1)
	go s.accept(ln, p)
	return nil
}

// Stop closes the listener and every connection and waits for their
// goroutines. An event being put when Stop comes is committed or not; its
// reply may not reach the client. Idempotent.
func (s *Netcat) Stop() error {
	s.mu.Lock()
	s.stopping = true
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	if s.conns != nil {
		s.conns.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Netcat) accept(ln net.Listener, p BatchPutter) {
	defer s.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("accept", slog.Any("err", err))
			time.Sleep(50 * time.Millisecond) // e.g. out of file descriptors: do not spin
			continue
		}
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			conn.Close()
			continue
		}
		s.wg.Add(1)
		s.mu.Unlock()
		mc, err := s.conns.Admit(conn)
		if err != nil {
			// Every connection is in the middle of a line (the manager has
			// logged it), or the source is stopping.
			s.wg.Done()
			if errors.Is(err, netconn.ErrFull) {
				_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = io.WriteString(conn, "FAILED: too many connections\n")
			}
			conn.Close()
			continue
		}
		go s.serve(mc, p)
	}
}

// serve reads lines from one connection until it ends, fails or idles out.
func (s *Netcat) serve(mc *netconn.Conn, p BatchPutter) {
	defer s.wg.Done()
	defer mc.Close()
	conn := mc.Conn
	r := bufio.NewReaderSize(conn, 4096)
	w := bufio.NewWriter(conn)
	max := s.opts.maxLineLength
	var line []byte
	chars := 0 // characters in line; a line may hold at most max-1 besides its '\n'
	for {
		if len(line) == 0 && chars == 0 && r.Buffered() == 0 {
			// Between lines the connection is idle, and so may be closed to
			// make room; from a line's first byte it is busy. (A failed Peek
			// is seen again by ReadSlice.)
			mc.Waiting()
			if _, err := r.Peek(1); err == nil {
				mc.Started()
			}
		}
		if s.opts.idleTimeout > 0 {
			_ = conn.SetReadDeadline(time.Now().Add(s.opts.idleTimeout))
		}
		chunk, err := r.ReadSlice('\n')
		content := chunk
		if err == nil {
			content = chunk[:len(chunk)-1]
		}
		chars += s.countChars(content)
		if chars >= max {
			// Flume's buffer holds max characters; full without a newline.
			_, _ = fmt.Fprintf(w, "FAILED: Event exceeds the maximum length (%d chars, including newline)\n", max)
			s.reply(conn, w)
			s.log.Warn("client sent a line longer than max-line-length; closing",
				slog.Int("max-line-length", max), slog.String("remote", conn.RemoteAddr().String()))
			return
		}
		line = append(line, content...)
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			if len(line) > 0 && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("connection ended inside a line", slog.Any("err", err))
			}
			var ne net.Error
			if mc.Evicted() {
				s.log.Debug("connection closed to make room for another", slog.String("remote", conn.RemoteAddr().String()))
			} else if errors.As(err, &ne) && ne.Timeout() {
				s.log.Info("closing idle connection", slog.String("remote", conn.RemoteAddr().String()))
			}
			return
		}
		if line == nil {
			line = []byte{}
		}
		if s.opts.latin1 {
			line = latin1ToUTF8(line)
		}
		ev := channel.Event{Body: line}
		if err := p.PutBatch([]channel.Event{ev}); err != nil {
			s.log.Warn("channel refused an event", slog.Any("err", err))
			// One reply per line: a newline inside the reason would read as
			// the reply to the next event.
			_, _ = fmt.Fprintf(w, "FAILED: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			if !s.reply(conn, w) {
				return
			}
		} else if s.opts.ack {
			_, _ = w.WriteString("OK\n")
			if !s.reply(conn, w) {
				return
			}
		}
		line, chars = nil, 0 // the event owns the old array
	}
}

// reply flushes w with a deadline, so a client that does not read its
// replies cannot hold a goroutine forever.
func (s *Netcat) reply(conn net.Conn, w *bufio.Writer) bool {
	d := s.opts.idleTimeout
	if d == 0 {
		d = time.Minute
	}
	_ = conn.SetWriteDeadline(time.Now().Add(d))
	return w.Flush() == nil
}

// countChars counts Java chars, as Flume's CharBuffer does: one per byte for
// ISO-8859-1 and ASCII; for UTF-8 one per sequence start, two for a 4-byte
// sequence (a UTF-16 surrogate pair). Counting starts rather than runes keeps
// the count right when a character is cut between two reads.
func (s *Netcat) countChars(b []byte) int {
	if s.opts.latin1 {
		return len(b)
	}
	n := 0
	for _, c := range b {
		switch {
		case c&0xC0 == 0x80: // continuation byte
		case c >= 0xF0:
			n += 2
		default:
			n++
		}
	}
	return n
}

func latin1ToUTF8(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/4)
	for _, c := range b {
		out = utf8.AppendRune(out, rune(c))
	}
	return out
}
