package avrorpc

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// Defaults for ClientOptions' zero values (Flume's AvroSink defaults).
const (
	DefaultConnectTimeout = 20 * time.Second
	DefaultRequestTimeout = 20 * time.Second
	defaultStaleAfter     = time.Second
)

// ErrIdleClosed means the server closed the connection while it was idle:
// nothing of the call was sent, so it is safe to reconnect and send it again.
var ErrIdleClosed = errors.New("connection closed by the server while idle")

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
	// RequestTimeout bounds the wait for a reply (Flume's request-timeout).
	// Zero means 20 s.
	RequestTimeout time.Duration
	// StaleAfter is how long a connection may sit idle before a call first
	// checks that the server has not closed it. Zero means 1 s.
	StaleAfter time.Duration
}

func (o ClientOptions) withDefaults() ClientOptions {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = defaultStaleAfter
	}
	return o
}

// Client is one connection to an AvroSourceProtocol server, speaking as
// Flume's NettyAvroRpcClient does: the same handshake bytes (so a Java server
// answers BOTH at once), then one call at a time. It is not safe for
// concurrent use. After any error but a *StatusError the client is broken and
// every call fails: close it and dial again.
type Client struct {
	raw        net.Conn // deadlines and the idle probe go here
	conn       net.Conn // frames go here (raw, or zlib and/or TLS over raw)
	fr         frameReader
	o          ClientOptions
	serial     int32
	handshaken bool
	serverHash Hash // our guess of the server's hash, then what it told us
	broken     error
	lastUsed   time.Time
	params     []byte // scratch: encoded parameters
	frame      []byte // scratch: the request frame
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
		lastUsed:   time.Now(),
	}
}

// Append sends one event (an SDK call; Flume's sink uses appendBatch).
func (c *Client) Append(ctx context.Context, e Event) error {
	c.params = appendEvent(c.params[:0], &e)
	return c.call(ctx, msgAppend, c.params)
}

// AppendBatch sends events as one appendBatch call and waits for the reply.
// nil means the server answered OK; a *StatusError means it answered FAILED
// or UNKNOWN (the connection stays usable); anything else breaks the client.
func (c *Client) AppendBatch(ctx context.Context, events []Event) error {
	c.params = appendEventArray(c.params[:0], events)
	return c.call(ctx, msgAppendBatch, c.params)
}

// Close closes the connection (finishing the zlib stream, as Java does).
func (c *Client) Close() error {
	_ = c.raw.SetDeadline(time.Now().Add(time.Second))
	return c.conn.Close()
}

func (c *Client) call(ctx context.Context, message string, params []byte) error {
	if c.broken != nil {
		return fmt.Errorf("connection unusable after an earlier error: %w", c.broken)
	}
	if c.handshaken && time.Since(c.lastUsed) > c.o.StaleAfter && !c.alive() {
		c.broken = ErrIdleClosed
		return ErrIdleClosed
	}
	err := c.roundTrip(ctx, message, params)
	c.lastUsed = time.Now()
	var se *StatusError
	if err != nil && !errors.As(err, &se) {
		c.broken = err
	}
	return err
}

// alive checks, without sending, whether the server has closed an idle
// connection: the server never sends unsolicited bytes, so anything readable
// (data, EOF, reset) means the connection is gone.
func (c *Client) alive() bool {
	_ = c.raw.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [1]byte
	n, err := c.raw.Read(b[:])
	_ = c.raw.SetReadDeadline(time.Time{})
	var ne net.Error
	return n == 0 && errors.As(err, &ne) && ne.Timeout()
}

// roundTrip sends one call and reads its reply, redoing the call once with
// our protocol text if the server did not know our hash (NONE).
func (c *Client) roundTrip(ctx context.Context, message string, params []byte) error {
	stop := context.AfterFunc(ctx, func() { _ = c.raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	for attempt := 0; ; attempt++ {
		var hs *handshakeRequest
		if !c.handshaken {
			hs = &handshakeRequest{clientHash: ProtocolHash, serverHash: c.serverHash}
			if attempt > 0 {
				hs.clientProtocol = &ProtocolText
			}
		}
		c.serial++
		c.frame = appendCallRequest(c.frame[:0], c.serial, hs, message, params)
		_ = c.raw.SetWriteDeadline(time.Now().Add(c.o.ConnectTimeout))
		if _, err := c.conn.Write(c.frame); err != nil {
			return ctxErr(ctx, fmt.Errorf("send %s: %w", message, err))
		}
		_ = c.raw.SetReadDeadline(time.Now().Add(c.o.RequestTimeout))
		serial, payload, err := c.fr.read()
		if err != nil {
			return ctxErr(ctx, fmt.Errorf("await %s reply: %w", message, err))
		}
		if serial != c.serial {
			return protoErrorf("reply serial %d, expected %d", serial, c.serial)
		}
		d := newDecoder(payload)
		if !c.handshaken {
			resp, err := decodeHandshakeResponse(d)
			if err != nil {
				return fmt.Errorf("%w: handshake response: %v", ErrProtocol, err)
			}
			if resp.serverHash != nil {
				c.serverHash = *resp.serverHash
			}
			if resp.match != matchBoth {
				if resp.serverProtocol == nil {
					return protoErrorf("handshake %s without the server's protocol", matchNames[resp.match])
				}
				if err := checkProtocol(*resp.serverProtocol); err != nil {
					return fmt.Errorf("server protocol: %w", err)
				}
			}
			if resp.match == matchNone {
				if attempt > 0 {
					return protoErrorf("server did not accept our protocol (NONE twice)")
				}
				continue
			}
			c.handshaken = true
		}
		st, err := decodeCallResponse(d)
		if err != nil {
			var re *RemoteError
			if errors.As(err, &re) {
				return err
			}
			return fmt.Errorf("%w: %s reply: %v", ErrProtocol, message, err)
		}
		if st != StatusOK {
			return &StatusError{Status: st}
		}
		return nil
	}
}

// ctxErr prefers the context's error when the context ended the call.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}
