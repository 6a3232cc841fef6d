package avrorpc

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flumed/flumed/internal/netconn"
)

// serverConn serves one connection. Its goroutine (serve) owns the read
// side: it reads frames and answers the handshake itself; once the
// connection has handshaken, each call goes to a goroutine of its own, at
// most MaxCallsPerConnection at once, so a client's pipelined calls are
// handled together (and a file channel commits them in one fsync). Replies
// are written as calls finish, one at a time, each with its request's serial.
//
// Memory: a call's frame stays charged to the server's budget until its
// reply is built. The reader starts another frame only while the frames
// being handled hold less than MaxFrameBytes together (or none is being
// handled), so one connection holds less than two frames' worth however it
// pipelines, and all connections together at most MaxMemory.
type serverConn struct {
	s      *Server
	mc     *netconn.Conn // the manager's view: idle between frames, busy in one or a call
	raw    net.Conn
	c      net.Conn // frames: raw, or zlib and/or TLS over raw
	remote string

	st connState // owned by serve

	mu     sync.Mutex
	freed  sync.Cond // signalled when a call finishes
	active int       // calls being handled; under mu
	held   int       // budget bytes their frames hold; under mu

	calls sync.WaitGroup
	wmu   sync.Mutex  // one reply written at a time
	ended atomic.Bool // a call's goroutine closed the connection and said why
}

func (s *Server) serveConn(mc *netconn.Conn) {
	raw := mc.Conn
	c := &serverConn{s: s, mc: mc, raw: raw, remote: raw.RemoteAddr().String()}
	c.freed.L = &c.mu
	defer func() {
		// Calls in progress finish and write their replies first: a client
		// that stopped sending but waits for answers still gets them.
		c.calls.Wait()
		mc.Close()
		s.open.Add(-1)
		s.wg.Done()
	}()
	c.c = layer(raw, s.o.Deflate, s.o.DeflateLevel, s.o.TLS, true)
	if tc, ok := c.c.(*tls.Conn); ok {
		_ = raw.SetDeadline(time.Now().Add(s.o.ReadTimeout))
		if err := tc.Handshake(); err != nil {
			s.connFailed(c.remote, "tls handshake", err)
			return
		}
		_ = raw.SetDeadline(time.Time{})
	}
	c.serve()
}

func (c *serverConn) serve() {
	s := c.s
	br := bufio.NewReaderSize(c.c, 4096)
	fr := frameReader{r: br, lim: s.o.Limits, budget: s.budget}
	for {
		// Between frames only the idle timeout applies (the manager sets it,
		// and may evict the connection to make room); once a frame starts it
		// must be complete within ReadTimeout, so a peer trickling a byte a
		// second cannot hold a connection (or its buffer) for long.
		c.mc.Waiting()
		if _, err := br.Peek(1); err != nil {
			c.readEnded(err, true)
			return
		}
		c.mc.Started()
		handshaken := c.st.handshaken
		if handshaken {
			c.admit()
		}
		_ = c.raw.SetReadDeadline(time.Now().Add(s.o.ReadTimeout))
		serial, payload, err := fr.read()
		if err != nil {
			fr.release()
			if handshaken {
				c.finished(0)
			}
			c.readEnded(err, false)
			return
		}
		if !handshaken {
			// The handshake decides how the next frame is decoded: answer it
			// before reading on.
			out, err := s.respond(&c.st, serial, payload, nil)
			fr.release()
			if err != nil {
				s.connFailed(c.remote, "bad request", err)
				return
			}
			if !c.reply(out) {
				return
			}
			continue
		}
		held := fr.detach()
		c.mu.Lock()
		c.held += held
		c.mu.Unlock()
		c.calls.Add(1)
		c.mc.Hold() // busy until the call's reply is written
		go c.call(serial, payload, held)
	}
}

// admit waits until another call may be read: fewer than
// MaxCallsPerConnection are being handled, and their frames hold less than
// MaxFrameBytes (or none is being handled). Calls finish on their own (the
// handler returns, the reply write has a deadline), so the wait ends.
func (c *serverConn) admit() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.active >= c.s.o.MaxCallsPerConnection || c.active > 0 && c.held >= c.s.o.Limits.MaxFrameBytes {
		c.s.readerWaits.Add(1)
		c.freed.Wait()
	}
	c.active++
}

// finished ends an admitted call whose frame held held budget bytes.
func (c *serverConn) finished(held int) {
	c.mu.Lock()
	c.active--
	c.held -= held
	c.mu.Unlock()
	c.freed.Signal()
}

// call handles one call after the handshake on its own goroutine, writes
// its reply, and only then gives back its frame's budget and its place, so
// with one call per connection the replies keep the requests' order.
func (c *serverConn) call(serial int32, payload []byte, held int) {
	defer func() {
		c.s.budget.give(held)
		c.finished(held)
		c.mc.Release()
		c.calls.Done()
	}()
	out, err := c.s.answer(newDecoder(payload), serial, nil, nil)
	if err != nil {
		if c.ended.CompareAndSwap(false, true) {
			c.s.connFailed(c.remote, "bad request", err)
		}
		c.raw.Close() // stops the reader
		return
	}
	c.reply(out)
}

// reply writes one reply frame; false means the connection failed, and is
// closed so the reader stops too.
func (c *serverConn) reply(out []byte) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.raw.SetWriteDeadline(time.Now().Add(c.s.o.ReadTimeout))
	if _, err := c.c.Write(out); err != nil {
		if c.ended.CompareAndSwap(false, true) {
			c.s.connEnded(c.remote, err, false)
		}
		c.raw.Close()
		return false
	}
	return true
}

// readEnded logs why the reader stopped, unless a call's goroutine already
// closed the connection and said why.
func (c *serverConn) readEnded(err error, betweenFrames bool) {
	if c.mc.Evicted() {
		// Closed by the manager to make room; it has logged why.
		c.ended.Store(true)
		return
	}
	if c.ended.CompareAndSwap(false, true) {
		c.s.connEnded(c.remote, err, betweenFrames)
	}
}

// connState is what a connection remembers between frames.
type connState struct {
	handshaken bool
	hs         []byte // scratch for the handshake response
}

// respond decodes one request frame, calls the handler and appends the reply
// frame to out. Before the connection has handshaken the frame starts with
// the handshake request, and the reply with the response. An error means
// the connection must be closed.
func (s *Server) respond(st *connState, serial int32, payload, out []byte) ([]byte, error) {
	d := newDecoder(payload)
	if st.handshaken {
		return s.answer(d, serial, nil, out)
	}
	req, err := decodeHandshakeRequest(d)
	if err != nil {
		return out, err
	}
	resp, err := s.handshake(&req)
	if err != nil {
		return out, err
	}
	st.hs = appendHandshakeResponse(st.hs[:0], &resp)
	if resp.match == matchNone {
		return appendHandshakeOnly(out, serial, st.hs), nil
	}
	st.handshaken = true
	return s.answer(d, serial, st.hs, out)
}

// answer decodes a call, hands it to the handler and appends the reply
// frame to out; hs is the handshake response to send with it (nil once
// handshaken: an empty buffer). An error means the connection must be closed.
func (s *Server) answer(d *decoder, serial int32, hs, out []byte) ([]byte, error) {
	c, err := decodeCall(d, s.o.Limits)
	if err != nil {
		var unknown *unknownMessageError
		if errors.As(err, &unknown) {
			s.warnLimited("answering an unknown message with an error", "message", unknown.name)
			return appendErrorResponse(out, serial, hs, unknown.Error()), nil
		}
		return out, err
	}
	var status Status
	switch c.message {
	case "":
		return appendHandshakeOnly(out, serial, hs), nil
	case msgAppend:
		status = s.h.Append(c.events[0])
	default:
		if oh, ok := s.h.(OriginHandler); ok && c.id != nil {
			status = oh.AppendBatchFrom(c.id, c.events)
		} else {
			status = s.h.AppendBatch(c.events)
		}
	}
	return appendStatusResponse(out, serial, hs, status), nil
}

// connEnded logs why a connection's read or write loop stopped. betweenFrames
// says no frame had started.
func (s *Server) connEnded(remote string, err error, betweenFrames bool) {
	var ne net.Error
	switch {
	case s.isClosed():
	case errors.Is(err, io.EOF) && betweenFrames:
		s.log.Debug("connection closed by peer", "remote", remote)
	case errors.As(err, &ne) && ne.Timeout() && betweenFrames:
		s.log.Info("closing idle connection", "remote", remote, "idle-timeout", s.o.IdleTimeout)
	case errors.As(err, &ne) && ne.Timeout():
		s.connFailed(remote, "frame not complete within read-timeout", err)
	case errors.Is(err, ErrProtocol), errors.Is(err, errBudget), errors.Is(err, io.ErrUnexpectedEOF):
		s.connFailed(remote, "bad frame", err)
	default:
		s.log.Info("connection failed", "remote", remote, "err", err)
	}
}

// detach hands the last frame's budget charge to the caller, who gives it
// back (budget.give) once done with the frame: frames handled concurrently
// are released one by one rather than by the next read.
func (fr *frameReader) detach() int {
	n := fr.held
	fr.held = 0
	return n
}
