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
// (100; one more is answered "FAILED: too many connections" and closed), and
// a connection silent for idle-timeout ms (300000; 0 never) is closed. Flume
// has no counters for this source and neither has flumed.
type Netcat struct {
	name string
	log  *slog.Logger
	opts netcatOptions

	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]struct{}
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

func newNetcatSource(name string, c *config.Context, log *slog.Logger) (Source, error) {
	o := netcatOptions{
		maxLineLength: c.Int("max-line-length", 512),
		ack:           c.Bool("ack-every-event", true),
		maxConns:      c.Int("max-connections", 100),
		idleTimeout:   c.Duration("idle-timeout", 5*time.Minute, time.Millisecond),
	}
	ok := true
	bind := c.Required("bind")
	port := c.Required("port")
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			c.Errorf("port", "not a TCP port (0-65535): %q", port)
			ok = false
		}
	}
	if bind == "" || port == "" {
		ok = false
	}
	o.addr = net.JoinHostPort(bind, port)
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
	enc := c.String("encoding", "utf-8")
	if !charset.Supported(enc) {
		c.Errorf("encoding", "unsupported encoding %q (flumed supports UTF-8, US-ASCII and ISO-8859-1)", enc)
		ok = false
	}
	o.latin1 = charset.IsLatin1(enc)
	if !ok {
		return nil, errConfig
	}
	return &Netcat{name: name, log: log, opts: o, conns: map[net.Conn]struct{}{}}, nil
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
	for c := range s.conns {
		c.Close()
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
		switch {
		case s.stopping:
			conn.Close()
		case len(s.conns) >= s.opts.maxConns:
			s.log.Warn("too many connections; refusing one", slog.Int("max-connections", s.opts.maxConns),
				slog.String("remote", conn.RemoteAddr().String()))
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(conn, "FAILED: too many connections\n")
			conn.Close()
		default:
			s.conns[conn] = struct{}{}
			s.wg.Add(1)
			go s.serve(conn, p)
		}
		s.mu.Unlock()
	}
}

// serve reads lines from one connection until it ends, fails or idles out.
func (s *Netcat) serve(conn net.Conn, p BatchPutter) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		conn.Close()
	}()
	r := bufio.NewReaderSize(conn, 4096)
	w := bufio.NewWriter(conn)
	max := s.opts.maxLineLength
	var line []byte
	chars := 0 // characters in line; a line may hold at most max-1 besides its '\n'
	for {
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
			if errors.As(err, &ne) && ne.Timeout() {
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
