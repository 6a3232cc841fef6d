package avrorpc

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Defaults for ClientOptions' zero values (Flume's AvroSink defaults).
const (
	DefaultConnectTimeout = 20 * time.Second
	DefaultRequestTimeout = 20 * time.Second
)

// ErrIdleClosed means the server closed the connection while no call was
// outstanding: nothing of the next call was sent, so it is safe to reconnect
// and send it again.
var ErrIdleClosed = errors.New("connection closed by the server while idle")

// errClientClosed fails the calls outstanding when Close is called.
var errClientClosed = errors.New("client closed")

// replyLimits bound what a server may make a client hold: replies are a few
// dozen bytes, or the protocol text after a NONE handshake.
var replyLimits = Limits{MaxFrameBytes: 1 << 20, MaxBuffers: 64}.withDefaults()

// ClientOptions configure a Client.
type ClientOptions struct {
	Deflate      bool
	DeflateLevel int         // 0–9, used as given (Flume's default is 6)
	TLS          *tls.Config // nil: plain TCP
	// ConnectTimeout bounds the TCP connect, the TLS handshake and handing a
	// request to the socket (Flume's connect-timeout). Zero means 20 s.
	ConnectTimeout time.Duration
	// RequestTimeout bounds the wait for each call's reply, counted from
	// when the call was sent (Flume's request-timeout). Zero means 20 s.
	RequestTimeout time.Duration
	// StaleAfter is no longer used: the client reads replies as they come,
	// so it notices a server's close at once. Kept so callers still compile.
	StaleAfter time.Duration
}

func (o ClientOptions) withDefaults() ClientOptions {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	return o
}

// Client is one connection to an AvroSourceProtocol server, speaking as
// Flume's NettyAvroRpcClient does: the same handshake bytes (so a Java server
// answers BOTH at once), then calls that may be pipelined. The first call of
// a connection carries the handshake and is made alone; after it, Send puts
// a call on the wire without waiting for earlier replies, and a goroutine
// reads replies as they come and hands each to its call by serial, in
// whatever order the server answers (as Avro's NettyTransceiver does).
//
// Send, Wait and the synchronous Append and AppendBatch are safe for
// concurrent use. After any error but a *StatusError the client is broken:
// every outstanding call fails with that error, later calls fail at once,
// and the caller closes it and dials again.
type Client struct {
	raw  net.Conn // deadlines go here
	conn net.Conn // frames go here (raw, or zlib and/or TLS over raw)
	fr   frameReader
	o    ClientOptions

	// wmu serialises requests: the handshake round trip, numbering a call
	// and writing its frame. Close takes it too.
	wmu        sync.Mutex
	handshaken bool   // under wmu
	serverHash Hash   // our guess of the server's hash, then what it told us; under wmu
	params     []byte // scratch under wmu: encoded parameters
	frame      []byte // scratch under wmu: the request frame

	mu      sync.Mutex
	serial  int32
	pending map[int32]*Pending // calls sent and not answered
	broken  error
	closed  bool
	reader  chan struct{} // closed when the reply reader exits; nil until it starts
}

// Pending is a call that was sent and whose reply may not have come yet.
type Pending struct {
	message  string
	deadline time.Time     // when its reply is due
	done     chan struct{} // closed once err is set
	err      error
	c        *Client
}

// Done is closed once the call's outcome is known; Wait then returns at once.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Wait returns the call's outcome: nil when the server answered OK, a
// *StatusError for FAILED or UNKNOWN (the connection stays usable), anything
// else when the call or the connection failed (the client is then broken).
// The client's RequestTimeout bounds the wait; ctx may end it sooner, which
// breaks the client, since the call's outcome is then unknown.
func (p *Pending) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		p.c.fail(fmt.Errorf("await %s reply: %w", p.message, ctx.Err()))
		<-p.done // fail completed it, unless the reply won the race
		return p.err
	}
}

// complete records the outcome. The caller holds c.mu and has removed p from
// c.pending (or never added it), so it runs once.
func (p *Pending) complete(err error) {
	p.err = err
	close(p.done)
}

// Dial connects to addr (host:port), resolving the host name anew, and
// completes the TLS handshake when configured. The Avro handshake happens
// with the first call.
func Dial(ctx context.Context, addr string, o ClientOptions) (*Client, error) {
	o = o.withDefaults()
	d := net.Dialer{Timeout: o.ConnectTimeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if o.TLS != nil && o.TLS.ServerName == "" {
		host, _, _ := net.SplitHostPort(addr)
		o.TLS = o.TLS.Clone()
		o.TLS.ServerName = host
	}
	c := NewClient(raw, o)
	if tc, ok := c.conn.(*tls.Conn); ok {
		hctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
		}
	}
	return c, nil
}

// NewClient speaks the protocol over an established connection.
func NewClient(raw net.Conn, o ClientOptions) *Client {
	o = o.withDefaults()
	conn := layer(raw, o.Deflate, o.DeflateLevel, o.TLS, false)
	return &Client{
		raw:        raw,
		conn:       conn,
		fr:         frameReader{r: bufio.NewReaderSize(conn, 4096), lim: replyLimits},
		o:          o,
		serverHash: ProtocolHash,
		pending:    map[int32]*Pending{},
	}
}

// Append sends one event and waits for the reply (an SDK call; Flume's sink
// uses appendBatch).
func (c *Client) Append(ctx context.Context, e Event) error {
	p, err := c.send(ctx, msgAppend, nil, func(b []byte) []byte { return appendEvent(b, &e) })
	if err != nil {
		return err
	}
	return p.Wait(ctx)
}

// AppendBatch sends events as one appendBatch call and waits for the reply.
// nil means the server answered OK; a *StatusError means it answered FAILED
// or UNKNOWN (the connection stays usable); anything else breaks the client.
func (c *Client) AppendBatch(ctx context.Context, events []Event) error {
	p, err := c.Send(ctx, events)
	if err != nil {
		return err
	}
	return p.Wait(ctx)
}

// Send puts events on the wire as one appendBatch call and returns without
// waiting for the reply; Wait on the result gets it. The events are encoded
// before Send returns, so the caller may reuse them. An error means the call
// could not be sent (the client is broken, or ErrIdleClosed: nothing was
// sent and the caller may redial and send again). The connection's first
// call also waits for its reply, because that reply completes the handshake.
func (c *Client) Send(ctx context.Context, events []Event) (*Pending, error) {
	return c.send(ctx, msgAppendBatch, nil, func(b []byte) []byte { return appendEventArray(b, events) })
}

// SendFrom is Send with the events' identity in the call metadata
// (identity.go): a flumed receiver then answers OK for the events it
// committed before without putting them again; Apache Flume ignores it.
// id.Seqs must hold one number per event.
func (c *Client) SendFrom(ctx context.Context, id *Identity, events []Event) (*Pending, error) {
	if id != nil && len(id.Seqs) != len(events) {
		return nil, fmt.Errorf("send %d events with %d sequence numbers", len(events), len(id.Seqs))
	}
	return c.send(ctx, msgAppendBatch, id, func(b []byte) []byte { return appendEventArray(b, events) })
}

// Close closes the connection (finishing the zlib stream, as Java does),
// fails every outstanding call and waits for the reply reader to exit. It
// waits for a Send in progress to finish writing.
func (c *Client) Close() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	c.closed = true
	c.failLocked(errClientClosed)
	reader := c.reader
	c.mu.Unlock()
	_ = c.raw.SetDeadline(time.Now().Add(time.Second))
	err := c.conn.Close()
	if reader != nil {
		<-reader
	}
	return err
}

func (c *Client) send(ctx context.Context, message string, id *Identity, encode func([]byte) []byte) (*Pending, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	err := c.brokenErrLocked()
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	c.params = encode(c.params[:0])
	if !c.handshaken {
		return c.handshakeCall(ctx, message, id, c.params)
	}

	p := &Pending{message: message, deadline: time.Now().Add(c.o.RequestTimeout), done: make(chan struct{}), c: c}
	c.mu.Lock()
	c.serial++
	serial := c.serial
	c.pending[serial] = p
	c.armReadDeadlineLocked()
	c.mu.Unlock()

	c.frame = appendCallRequest(c.frame[:0], serial, nil, id, message, c.params)
	if err := c.write(ctx, message, c.frame); err != nil {
		c.fail(err)
		return nil, err
	}
	return p, nil
}

// brokenErrLocked is why no call may be sent, or nil. The caller holds c.mu.
func (c *Client) brokenErrLocked() error {
	switch {
	case c.broken == nil:
		return nil
	case errors.Is(c.broken, ErrIdleClosed):
		return ErrIdleClosed
	}
	return fmt.Errorf("connection unusable after an earlier error: %w", c.broken)
}

// write hands one request frame to the socket within ConnectTimeout (Flume:
// "how long to wait for the call to be handed to the transport").
func (c *Client) write(ctx context.Context, message string, frame []byte) error {
	stop := context.AfterFunc(ctx, func() { _ = c.raw.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	_ = c.raw.SetWriteDeadline(time.Now().Add(c.o.ConnectTimeout))
	if _, err := c.conn.Write(frame); err != nil {
		return ctxErr(ctx, fmt.Errorf("send %s: %w", message, err))
	}
	return nil
}

// armReadDeadlineLocked makes the reply reader's read fail when the earliest
// outstanding call is overdue, and never while nothing is outstanding. The
// caller holds c.mu, so the reader never undoes a newer setting.
func (c *Client) armReadDeadlineLocked() {
	var due time.Time
	for _, p := range c.pending {
		if due.IsZero() || p.deadline.Before(due) {
			due = p.deadline
		}
	}
	_ = c.raw.SetReadDeadline(due)
}

// fail breaks the client: every outstanding call fails with err, later calls
// fail at once, and the reply reader stops.
func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failLocked(err)
}

func (c *Client) failLocked(err error) {
	if c.broken == nil {
		c.broken = err
	}
	for serial, p := range c.pending {
		delete(c.pending, serial)
		p.complete(err)
	}
	// Wake the reader (and any write) now rather than at some deadline.
	_ = c.raw.SetDeadline(time.Unix(1, 0))
}

// readReplies runs from the end of the handshake until the connection
// fails: it reads each reply and completes the call with its serial.
func (c *Client) readReplies(done chan struct{}) {
	defer close(done)
	for {
		serial, payload, err := c.fr.read()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.mu.Lock()
		p := c.pending[serial]
		if p == nil {
			c.failLocked(protoErrorf("reply serial %d matches no call in flight", serial))
			c.mu.Unlock()
			return
		}
		delete(c.pending, serial)
		c.armReadDeadlineLocked()
		// Past the handshake a reply's first buffer is empty: the payload
		// starts with the call metadata.
		st, err := decodeCallResponse(newDecoder(payload))
		var re *RemoteError
		switch {
		case errors.As(err, &re):
			p.complete(err)
			c.failLocked(err)
		case err != nil:
			err = fmt.Errorf("%w: %s reply: %v", ErrProtocol, p.message, err)
			p.complete(err)
			c.failLocked(err)
		case st != StatusOK:
			p.complete(&StatusError{Status: st})
		default:
			p.complete(nil)
		}
		broken := c.broken != nil
		c.mu.Unlock()
		if broken {
			return
		}
	}
}

// readFailed ends the reader on a read error. With nothing outstanding, the
// server closed (or broke) an idle connection: the next call is refused with
// ErrIdleClosed before anything of it is sent.
func (c *Client) readFailed(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return // already failed: this read error is the consequence
	}
	if len(c.pending) == 0 {
		c.broken = ErrIdleClosed
		return
	}
	for serial, p := range c.pending {
		delete(c.pending, serial)
		p.complete(fmt.Errorf("await %s reply: %w", p.message, err))
	}
	c.broken = fmt.Errorf("await reply: %w", err)
}

// handshakeCall makes the connection's first call and waits for its reply,
// redoing the call once with our protocol text if the server did not know
// our hash (NONE). Once handshaken it starts the reply reader. The caller
// holds wmu. It returns the call as a completed Pending, or the error that
// kept it from being sent.
func (c *Client) handshakeCall(ctx context.Context, message string, id *Identity, params []byte) (*Pending, error) {
	p := &Pending{message: message, done: make(chan struct{}), c: c}
	stop := context.AfterFunc(ctx, func() { _ = c.raw.SetDeadline(time.Unix(1, 0)) })
	sent, err := c.roundTrip(ctx, message, id, params)
	stop()
	var se *StatusError
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil && !errors.As(err, &se) {
		c.failLocked(err)
		if !sent {
			return nil, err
		}
	} else if !c.closed {
		c.handshaken = true
		_ = c.raw.SetDeadline(time.Time{})
		c.reader = make(chan struct{})
		go c.readReplies(c.reader)
	}
	p.complete(err)
	return p, nil
}

// roundTrip sends the handshake call and reads its reply, on the caller's
// goroutine (the reply reader is not running yet). sent says whether the
// request reached the socket.
func (c *Client) roundTrip(ctx context.Context, message string, id *Identity, params []byte) (sent bool, err error) {
	for attempt := 0; ; attempt++ {
		hs := &handshakeRequest{clientHash: ProtocolHash, serverHash: c.serverHash}
		if attempt > 0 {
			hs.clientProtocol = &ProtocolText
		}
		c.mu.Lock()
		c.serial++
		serial := c.serial
		c.mu.Unlock()
		c.frame = appendCallRequest(c.frame[:0], serial, hs, id, message, params)
		if err := c.write(ctx, message, c.frame); err != nil {
			return sent, err
		}
		sent = true
		_ = c.raw.SetReadDeadline(time.Now().Add(c.o.RequestTimeout))
		got, payload, err := c.fr.read()
		if err != nil {
			return sent, ctxErr(ctx, fmt.Errorf("await %s reply: %w", message, err))
		}
		if got != serial {
			return sent, protoErrorf("reply serial %d, expected %d", got, serial)
		}
		d := newDecoder(payload)
		resp, err := decodeHandshakeResponse(d)
		if err != nil {
			return sent, fmt.Errorf("%w: handshake response: %v", ErrProtocol, err)
		}
		if resp.serverHash != nil {
			c.serverHash = *resp.serverHash
		}
		if resp.match != matchBoth {
			if resp.serverProtocol == nil {
				return sent, protoErrorf("handshake %s without the server's protocol", matchNames[resp.match])
			}
			if err := checkProtocol(*resp.serverProtocol); err != nil {
				return sent, fmt.Errorf("server protocol: %w", err)
			}
		}
		if resp.match == matchNone {
			if attempt > 0 {
				return sent, protoErrorf("server did not accept our protocol (NONE twice)")
			}
			continue
		}
		st, err := decodeCallResponse(d)
		if err != nil {
			var re *RemoteError
			if errors.As(err, &re) {
				return sent, err
			}
			return sent, fmt.Errorf("%w: %s reply: %v", ErrProtocol, message, err)
		}
		if st != StatusOK {
			return sent, &StatusError{Status: st}
		}
		return sent, nil
	}
}

// ctxErr prefers the context's error when the context ended the call.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}
