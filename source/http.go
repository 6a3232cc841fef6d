package source

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/counter"
	"github.com/flumed/flumed/internal/netconn"
	"github.com/flumed/flumed/source/internal/logthrottle"
)

// HTTP is the http source (Flume's HTTPSource): every POST (or GET, as in
// Flume) is turned into events by its handler and put in one transaction.
// It answers as Flume does: 200 once the batch is committed; 400 for a body
// the handler cannot read (nothing is put); 503 when the channel refused the
// batch (nothing is put; the client resends). flumed adds 413 for a body
// over MaxBodyBytes (after gzip decoding, so a small bomb cannot expand
// without bound), reads gzip request bodies (Content-Encoding: gzip), and
// keeps its connections in internal/netconn: at max-connections the one idle
// the longest is closed to make room, and a client slower than read-timeout
// for its request (headers and body together, however it trickles them:
// the deadline is set once per request, not moved by each byte) is cut off,
// counted in EventReadFail and logged; nothing of its request is put. Each
// connection has its own goroutine, so a slow one never holds up another.
//
// Handlers: JSONHandler (Flume's default): a JSON array of {"headers":
// {...}, "body": "..."}; header values that are JSON numbers or booleans are
// kept as their text (Gson does the same), bodies are the UTF-8 bytes of the
// string. Go's JSON reader is strict where Gson is lenient (single quotes,
// unquoted names are 400 here). Charsets other than UTF-8 are answered 415
// (Flume accepts UTF-16 and UTF-32, and answers 500 for the rest).
// BlobHandler: the whole body is one event, the query and form parameters
// (the first value of each) its headers; mandatoryParameters lists those
// that must be there (400 otherwise).
type HTTP struct {
	name    string
	log     *slog.Logger
	o       HTTPOptions
	counter counter.Source
	fails   *logthrottle.Log

	mu    sync.Mutex
	srv   *http.Server
	ln    net.Listener
	conns *netconn.Manager
	done  chan struct{}
}

// HTTPOptions configure an HTTP source.
type HTTPOptions struct {
	Addr         string
	Handler      HTTPHandler
	TLS          *tls.Config // nil: plain HTTP
	MaxBodyBytes int64       // 413 past it (64 MiB)
	// MaxConnections and IdleTimeout go to the connection manager.
	MaxConnections int
	IdleTimeout    time.Duration
	ReadTimeout    time.Duration // for a whole request, headers and body (30 s)
}

// HTTPHandler turns a request body into events. An error wrapping
// errBadRequest is answered 400, errUnsupported 415.
type HTTPHandler interface {
	Events(r *http.Request, body []byte) ([]channel.Event, error)
}

var (
	errBadRequest  = errors.New("bad request")
	errUnsupported = errors.New("unsupported media type")
)

var (
	_ Source            = (*HTTP)(nil)
	_ counter.Monitored = (*HTTP)(nil)
)

// NewHTTP returns an http source.
func NewHTTP(name string, o HTTPOptions, log *slog.Logger) *HTTP {
	if o.Handler == nil {
		o.Handler = JSONHandler{}
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 64 << 20
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 30 * time.Second
	}
	return &HTTP{name: name, log: log, o: o, fails: logthrottle.New(log, logthrottle.DefaultEvery)}
}

// Name returns the source's name.
func (s *HTTP) Name() string { return s.name }

// Addr returns the address listened on, nil when not started.
func (s *HTTP) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// FlumeMetrics implements counter.Monitored with Flume's SourceCounter.
func (s *HTTP) FlumeMetrics() map[string]string {
	s.mu.Lock()
	if s.conns != nil {
		s.counter.OpenConnections.Store(s.conns.Stats().Open)
	}
	s.mu.Unlock()
	return s.counter.FlumeMetrics()
}

// Start listens and returns; requests are served until Stop.
func (s *HTTP) Start(ctx context.Context, p BatchPutter) error {
	var lc net.ListenConfig
	raw, err := lc.Listen(ctx, "tcp", s.o.Addr)
	if err != nil {
		return fmt.Errorf("http source %s: %w", s.name, err)
	}
	conns := netconn.New(netconn.Options{MaxConnections: s.o.MaxConnections, IdleTimeout: s.o.IdleTimeout, Log: s.log})
	ln := net.Listener(&managedListener{Listener: raw, m: conns, s: s})
	if s.o.TLS != nil {
		ln = tls.NewListener(ln, s.o.TLS)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, p) }),
		ReadHeaderTimeout: s.o.ReadTimeout,
		ReadTimeout:       s.o.ReadTimeout,
		WriteTimeout:      s.o.ReadTimeout,
		IdleTimeout:       s.o.IdleTimeout,
		ConnState:         connState,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.srv, s.ln, s.conns, s.done = srv, raw, conns, done
	s.mu.Unlock()
	s.counter.Started()
	s.log.Info("http source listening", slog.String("source", s.name), slog.String("addr", raw.Addr().String()), slog.Bool("ssl", s.o.TLS != nil))
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http source stopped accepting", slog.String("source", s.name), slog.Any("err", err))
		}
	}()
	return nil
}

// Stop stops accepting, lets requests in progress finish (up to 5 s), then
// closes every connection. Idempotent.
func (s *HTTP) Stop() error {
	s.mu.Lock()
	srv, conns, done := s.srv, s.conns, s.done
	s.srv, s.ln, s.done = nil, nil, nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
	}
	conns.Close()
	<-done
	s.counter.Stopped()
	return nil
}

func (s *HTTP) serve(w http.ResponseWriter, r *http.Request, p BatchPutter) {
	body, status, err := s.readBody(r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// A slow client: its connection counted and logged it. Abort so that
		// net/http closes the connection rather than answer 200 for nothing
		// (its write deadline runs later than the read deadline).
		panic(http.ErrAbortHandler)
	}
	if err != nil {
		s.counter.EventReadFail.Add(1)
		s.fails.Warn("read", "http source: bad request", slog.String("source", s.name), slog.String("remote", r.RemoteAddr), slog.Int("status", status), slog.Any("err", err))
		http.Error(w, "Bad request from client. "+err.Error(), status)
		return
	}
	events, err := s.o.Handler.Events(r, body)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errUnsupported) {
			status = http.StatusUnsupportedMediaType
		}
		s.counter.EventReadFail.Add(1)
		s.fails.Warn("handler", "http source: the handler refused a request; nothing put", slog.String("source", s.name), slog.String("remote", r.RemoteAddr), slog.Any("err", err))
		http.Error(w, "Bad request from client. "+err.Error(), status)
		return
	}
	s.counter.AppendBatchReceived.Add(1)
	s.counter.EventReceived.Add(int64(len(events)))
	if len(events) > 0 {
		if err := p.PutBatch(events); err != nil {
			s.counter.ChannelWriteFail.Add(1)
			s.fails.Warn("put", "http source: channel refused a batch; answered 503", slog.String("source", s.name), slog.Int("events", len(events)), slog.Any("err", err))
			http.Error(w, "Error appending event to channel. Channel might be full. "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	s.counter.AppendBatchAccepted.Add(1)
	s.counter.EventAccepted.Add(int64(len(events)))
	w.WriteHeader(http.StatusOK)
}

// readBody reads the request body, gunzipping it when it says so, and
// never more than MaxBodyBytes of it (413).
func (s *HTTP) readBody(r *http.Request) ([]byte, int, error) {
	if r.ContentLength > s.o.MaxBodyBytes {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body of %d bytes is over the limit of %d", r.ContentLength, s.o.MaxBodyBytes)
	}
	var in io.Reader = http.MaxBytesReader(nil, r.Body, s.o.MaxBodyBytes)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("gzip body: %w", err)
		}
		in = zr
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("content encoding %q (flumed reads gzip)", enc)
	}
	body, err := io.ReadAll(io.LimitReader(in, s.o.MaxBodyBytes+1))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig) || int64(len(body)) > s.o.MaxBodyBytes:
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body over the limit of %d bytes", s.o.MaxBodyBytes)
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("read body: %w", err)
	}
	return body, 0, nil
}

// JSONHandler is Flume's default handler: a JSON array of events.
type JSONHandler struct{}

type jsonEvent struct {
	Headers map[string]any `json:"headers"`
	Body    *string        `json:"body"`
}

// Events implements HTTPHandler.
func (JSONHandler) Events(r *http.Request, body []byte) ([]channel.Event, error) {
	if cs := charsetOf(r); cs != "" && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return nil, fmt.Errorf("%w: charset %s (flumed's JSON handler reads UTF-8)", errUnsupported, cs)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var in []jsonEvent
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("%w: request has invalid JSON syntax: %v", errBadRequest, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: request has invalid JSON syntax: data after the array", errBadRequest)
	}
	out := make([]channel.Event, len(in))
	for i, e := range in {
		h := make(map[string]string, len(e.Headers))
		for k, v := range e.Headers {
			switch v := v.(type) {
			case string:
				h[k] = v
			case json.Number:
				h[k] = v.String()
			case bool:
				h[k] = fmt.Sprint(v)
			case nil:
			default:
				return nil, fmt.Errorf("%w: event %d: header %q is not a string", errBadRequest, i, k)
			}
		}
		var b []byte
		if e.Body != nil {
			b = []byte(*e.Body)
		}
		out[i] = channel.Event{Headers: h, Body: b}
	}
	return out, nil
}

func charsetOf(r *http.Request) string {
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return params["charset"]
}

// BlobHandler is Flume's BLOBHandler: the body is one event, the request's
// parameters its headers.
type BlobHandler struct {
	Mandatory []string // parameters every request must carry
}

// Events implements HTTPHandler.
func (b BlobHandler) Events(r *http.Request, body []byte) ([]channel.Event, error) {
	h := map[string]string{}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			h[k] = v[0]
		}
	}
	for _, m := range b.Mandatory {
		if _, ok := h[m]; !ok {
			return nil, fmt.Errorf("%w: please specify %s parameter in the request", errBadRequest, m)
		}
	}
	return []channel.Event{{Headers: h, Body: body}}, nil
}

// managedListener admits every accepted connection through the manager.
type managedListener struct {
	net.Listener
	m *netconn.Manager
	s *HTTP
}

func (l *managedListener) Accept() (net.Conn, error) {
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c, err := l.m.Admit(raw)
		if errors.Is(err, netconn.ErrClosed) {
			raw.Close()
			return nil, net.ErrClosed
		}
		if err != nil {
			raw.Close()
			continue
		}
		return &httpConn{Conn: c, s: l.s}, nil
	}
}

// httpConn is an admitted connection that tells a slow client from the
// other ways a read can pass its deadline: net/http gives a request
// read-timeout from its start, so a read that times out while a request is
// in progress (or before the first one began) means the client was too
// slow. A timeout while idle between requests (no byte of the next request
// read yet) is the idle timeout, and one after a deadline set in the past is
// net/http aborting its own background read; neither is the client's fault.
type httpConn struct {
	*netconn.Conn
	s       *HTTP
	idle    atomic.Bool // between requests (ConnState idle)
	aborted atomic.Bool // the last read deadline set was already past
	slow    atomic.Bool // counted once
}

func (c *httpConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		// The next request has begun: net/http reports it active only once
		// its headers are read, but its read-timeout runs from here.
		c.idle.Store(false)
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !c.idle.Load() && !c.aborted.Load() && c.slow.CompareAndSwap(false, true) {
		c.s.counter.EventReadFail.Add(1)
		c.s.fails.Warn("slow", "http source: client too slow; cut off after read-timeout, nothing put",
			slog.String("source", c.s.name), slog.String("remote", c.RemoteAddr().String()), slog.Duration("read-timeout", c.s.o.ReadTimeout))
	}
	return n, err
}

func (c *httpConn) SetReadDeadline(t time.Time) error {
	c.aborted.Store(!t.IsZero() && t.Before(time.Now()))
	return c.Conn.SetReadDeadline(t)
}

func (c *httpConn) SetDeadline(t time.Time) error {
	c.aborted.Store(!t.IsZero() && t.Before(time.Now()))
	return c.Conn.SetDeadline(t)
}

// connState tells the manager when a connection is between requests (idle,
// so evictable) and when it is in one. net/http sets its own deadlines
// after these hooks, so theirs are the ones in force.
func connState(c net.Conn, st http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	hc, ok := c.(*httpConn)
	if !ok {
		return
	}
	mc := hc.Conn
	hc.idle.Store(st == http.StateIdle)
	switch st {
	case http.StateNew, http.StateIdle:
		mc.Waiting()
	case http.StateActive:
		mc.Started()
	case http.StateClosed, http.StateHijacked:
		mc.Close()
	}
}
