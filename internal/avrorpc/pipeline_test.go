package avrorpc

// Contract of pipelining, both ends.
//
// Client: after the connection's first call (which carries the handshake and
// is answered before Send returns), Send puts calls on the wire without
// waiting; each Pending gets the reply with its serial, in whatever order
// the server answers. Each call has its own request timeout, counted from
// its send; a timeout or a dropped connection fails every call outstanding,
// and the client refuses further calls. Send and Wait are safe for
// concurrent use.
//
// Server: once a connection has handshaken, its pipelined calls are handled
// concurrently, at most MaxCallsPerConnection at once, and each reply carries
// its request's serial. A frame stays charged to the memory budget until its
// call is answered, and a connection reads no further frame while the ones
// being handled hold MaxFrameBytes or more: pipelining does not let one peer
// hold more than about two frames' worth.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
)

// script serves one connection with a test-written conversation: the test
// reads requests and writes replies in any order it likes.
type script struct {
	t    *testing.T
	conn net.Conn
	fr   frameReader
}

// scripted accepts one connection and runs talk on it; it returns the address
// and waits for talk at the end of the test.
func scripted(t *testing.T, talk func(s *script)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer l.Close()
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(await.Limit))
		talk(&script{t: t, conn: c, fr: frameReader{r: c, lim: DefaultLimits()}})
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String()
}

// request reads one request and returns its serial and the first event's body.
func (s *script) request() (int32, string) {
	serial, payload, err := s.fr.read()
	if err != nil {
		s.t.Errorf("script: read request: %v", err)
		return 0, ""
	}
	d := newDecoder(payload)
	if serial == 1 {
		if _, err := decodeHandshakeRequest(d); err != nil {
			s.t.Errorf("script: handshake: %v", err)
		}
	}
	c, err := decodeCall(d, DefaultLimits())
	if err != nil || len(c.events) == 0 {
		s.t.Errorf("script: call: %v", err)
		return serial, ""
	}
	return serial, string(c.events[0].Body)
}

// answer writes a reply with status for serial; the first serial gets BOTH.
func (s *script) answer(serial int32, st Status) {
	var hs []byte
	if serial == 1 {
		hs = appendHandshakeResponse(nil, &handshakeResponse{match: matchBoth})
	}
	if _, err := s.conn.Write(appendStatusResponse(nil, serial, hs, st)); err != nil {
		s.t.Errorf("script: write reply: %v", err)
	}
}

func dialT(t *testing.T, addr string, o ClientOptions) *Client {
	t.Helper()
	c, err := Dial(context.Background(), addr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sendT(t *testing.T, c *Client, evs []Event) *Pending {
	t.Helper()
	p, err := c.Send(context.Background(), evs)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return p
}

func TestTheFirstCallIsAnsweredBeforeSendReturns(t *testing.T) {
	addr := scripted(t, func(s *script) {
		serial, _ := s.request()
		s.answer(serial, StatusOK)
		s.fr.read() // until the client closes
	})
	c := dialT(t, addr, ClientOptions{})
	p := sendT(t, c, events(0, 1))
	select {
	case <-p.Done():
	default:
		t.Fatal("the handshake call is still pending after Send")
	}
	if err := p.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestRepliesInAnyOrderReachTheirOwnCalls(t *testing.T) {
	// The server reads three pipelined calls before answering any, then
	// answers them last to first, failing the middle one.
	addr := scripted(t, func(s *script) {
		serial, _ := s.request()
		s.answer(serial, StatusOK)
		got := map[string]int32{}
		for range 3 {
			serial, body := s.request()
			got[body] = serial
		}
		s.answer(got["event-3"], StatusOK)
		s.answer(got["event-2"], StatusFailed)
		s.answer(got["event-1"], StatusOK)
		s.fr.read() // until the client closes
	})
	c := dialT(t, addr, ClientOptions{})
	if err := c.AppendBatch(context.Background(), events(0, 1)); err != nil {
		t.Fatal(err)
	}
	ps := []*Pending{sendT(t, c, events(1, 2)), sendT(t, c, events(2, 3)), sendT(t, c, events(3, 4))}
	var se *StatusError
	if err := ps[0].Wait(context.Background()); err != nil {
		t.Fatalf("call 1: %v", err)
	}
	if err := ps[1].Wait(context.Background()); !errors.As(err, &se) || se.Status != StatusFailed {
		t.Fatalf("call 2: %v, want FAILED", err)
	}
	if err := ps[2].Wait(context.Background()); err != nil {
		t.Fatalf("call 3: %v", err)
	}
	if _, err := c.Send(context.Background(), events(4, 5)); err != nil {
		t.Fatalf("a FAILED reply broke the client: %v", err)
	}
}

func TestEachOutstandingCallTimesOutOnItsOwnDeadlineAndFailsTheRest(t *testing.T) {
	// Long enough that the first call is answered within it on a busy
	// machine, though the second is sent half a timeout later.
	const timeout = time.Second
	addr := scripted(t, func(s *script) {
		serial, _ := s.request()
		s.answer(serial, StatusOK)
		first, _ := s.request()
		s.request()
		s.answer(first, StatusOK) // the second is never answered
		s.fr.read()
	})
	c := dialT(t, addr, ClientOptions{RequestTimeout: timeout})
	if err := c.AppendBatch(context.Background(), events(0, 1)); err != nil {
		t.Fatal(err)
	}
	p1 := sendT(t, c, events(1, 2))
	time.Sleep(timeout / 2) // not a wait: the second call is sent later, with a later deadline
	sent2 := time.Now()
	p2 := sendT(t, c, events(2, 3))
	if err := p1.Wait(context.Background()); err != nil {
		t.Fatalf("the answered call: %v", err)
	}
	err := p2.Wait(context.Background())
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("the unanswered call: %v, want a timeout", err)
	}
	if took := time.Since(sent2); took < timeout-20*time.Millisecond || took > 5*timeout {
		t.Fatalf("timed out %v after it was sent, want about %v", took, timeout)
	}
	if _, err := c.Send(context.Background(), events(3, 4)); err == nil || !strings.Contains(err.Error(), "unusable") {
		t.Fatalf("a timed-out client took another call: %v", err)
	}
}

func TestADroppedConnectionFailsEveryOutstandingCall(t *testing.T) {
	addr := scripted(t, func(s *script) {
		serial, _ := s.request()
		s.answer(serial, StatusOK)
		for range 3 {
			s.request()
		}
		// Return: the connection closes with three calls unanswered.
	})
	c := dialT(t, addr, ClientOptions{})
	if err := c.AppendBatch(context.Background(), events(0, 1)); err != nil {
		t.Fatal(err)
	}
	var ps []*Pending
	for i := 1; i <= 3; i++ {
		ps = append(ps, sendT(t, c, events(i, i+1)))
	}
	for i, p := range ps {
		err := p.Wait(context.Background())
		var se *StatusError
		if err == nil || errors.As(err, &se) || errors.Is(err, ErrIdleClosed) {
			t.Fatalf("call %d: %v, want a connection error", i+1, err)
		}
	}
	if _, err := c.Send(context.Background(), events(4, 5)); err == nil || errors.Is(err, ErrIdleClosed) {
		t.Fatalf("after the drop: %v, want the connection reported unusable", err)
	}
}

func TestCancellingAWaitFailsTheCallsOutstanding(t *testing.T) {
	addr := silentAfterHandshake(t)
	c := dialT(t, addr, ClientOptions{})
	if err := c.AppendBatch(context.Background(), events(0, 1)); err != nil {
		t.Fatal(err)
	}
	p1, p2 := sendT(t, c, events(1, 2)), sendT(t, c, events(2, 3))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p1.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's error", err)
	}
	if err := p2.Wait(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the other call: %v, want it failed with the client", err)
	}
}

// silentAfterHandshake answers the first call and then reads without answering.
func silentAfterHandshake(t *testing.T) string {
	return scripted(t, func(s *script) {
		serial, _ := s.request()
		s.answer(serial, StatusOK)
		for {
			if _, _, err := s.fr.read(); err != nil {
				return
			}
		}
	})
}

func TestSendAndWaitAreSafeFromManyGoroutines(t *testing.T) {
	rec := &recorder{}
	_, addr := startServer(t, rec, ServerOptions{})
	c := dialT(t, addr, ClientOptions{})
	var wg sync.WaitGroup
	errs := make(chan error, 8*20)
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				n := g*20 + i
				if err := c.AppendBatch(context.Background(), events(n, n+1)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := len(rec.got()); got != 160 {
		t.Fatalf("server saw %d calls, want 160", got)
	}
}

// gate is a handler that holds every call until released, counting how many
// it holds at once, and answers FAILED for bodies in fail.
type gate struct {
	mu      sync.Mutex
	in, max int
	entered chan string
	release chan struct{}
	fail    map[string]bool
	opened  sync.Once
}

// open lets every call through, now and from then on. A test also opens its
// gate when it ends (t.Cleanup after startServer, so before the server's
// Close), so a failed test does not leave Close waiting on a held call.
func (g *gate) open() { g.opened.Do(func() { close(g.release) }) }

func newGate() *gate {
	return &gate{entered: make(chan string, 64), release: make(chan struct{}), fail: map[string]bool{}}
}

func (g *gate) Append(e Event) Status { return g.AppendBatch([]Event{e}) }

func (g *gate) AppendBatch(evs []Event) Status {
	body := string(evs[0].Body)
	g.mu.Lock()
	g.in++
	g.max = max(g.max, g.in)
	g.mu.Unlock()
	g.entered <- body
	<-g.release
	g.mu.Lock()
	g.in--
	g.mu.Unlock()
	if g.fail[body] {
		return StatusFailed
	}
	return StatusOK
}

func (g *gate) maxInside() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.max
}

// handshakeThroughGate makes the connection's first call, which carries the
// handshake, lets the gated handler answer it, and checks the reply.
func handshakeThroughGate(t *testing.T, p *peer, g *gate) {
	t.Helper()
	p.call(1, flumeHandshake(), "appendBatch", eventParams(events(0, 1)...))
	<-g.entered
	g.release <- struct{}{}
	_, d := p.reply()
	decodeHandshakeResponse(d)
	expectStatus(t, d, StatusOK)
}

// pipeline sends the handshake call (answered at once: the gate is open for
// it) and then n calls of one event each on p, without reading replies.
func pipeline(t *testing.T, p *peer, g *gate, n int) {
	t.Helper()
	handshakeThroughGate(t, p, g)
	var all []byte
	for i := 1; i <= n; i++ {
		all = appendCallRequest(all, int32(i+1), nil, nil, "appendBatch", eventParams(events(i, i+1)...))
	}
	p.send(all)
}

func TestPipelinedCallsOfOneConnectionAreHandledTogetherAndAnsweredBySerial(t *testing.T) {
	g := newGate()
	g.fail["event-2"] = true
	_, addr := startServer(t, g, ServerOptions{})
	t.Cleanup(g.open)
	p := dialPeer(t, addr)
	pipeline(t, p, g, 4)
	for i := range 4 {
		await.Recv(t, fmt.Sprintf("call %d of 4 to be handled (%d at once so far)", i+1, g.maxInside()), g.entered)
	}
	g.open()
	want := map[int32]Status{2: StatusOK, 3: StatusFailed, 4: StatusOK, 5: StatusOK}
	for range 4 {
		serial, d := p.reply()
		st, ok := want[serial]
		if !ok {
			t.Fatalf("reply with serial %d, not one outstanding", serial)
		}
		expectStatus(t, d, st)
		delete(want, serial)
	}
}

func TestNoMoreThanMaxCallsPerConnectionAreHandledAtOnce(t *testing.T) {
	g := newGate()
	s, addr := startServer(t, g, ServerOptions{MaxCallsPerConnection: 2})
	t.Cleanup(g.open)
	p := dialPeer(t, addr)
	pipeline(t, p, g, 5)
	<-g.entered
	<-g.entered
	if s.budget.used.Load() == 0 {
		t.Fatal("frames being handled are not charged to the memory budget")
	}
	// The reader waiting for a call to finish is the proof that it read no
	// third call: nothing can finish before the gate opens.
	await.Never(t, "a third call handled with two in progress",
		func() bool { return len(g.entered) > 0 },
		func() bool { return s.readerWaits.Load() > 0 })
	g.open()
	seen := map[int32]bool{}
	for range 5 {
		serial, d := p.reply()
		expectStatus(t, d, StatusOK)
		seen[serial] = true
	}
	if len(seen) != 5 || g.maxInside() != 2 {
		t.Fatalf("replies for %v, at most %d handled at once; want 5 replies, 2 at once", seen, g.maxInside())
	}
	await.True(t, "the budget to be given back", func() bool { return s.budget.used.Load() == 0 })
}

func TestAConnectionStopsReadingWhileItsCallsHoldAFramesWorth(t *testing.T) {
	const limit = 64 << 10
	g := newGate()
	s, addr := startServer(t, g, ServerOptions{Limits: Limits{MaxFrameBytes: limit}})
	t.Cleanup(g.open)
	p := dialPeer(t, addr)
	handshakeThroughGate(t, p, g)
	// Five calls of 40 KiB each, which MaxCallsPerConnection (8) alone would
	// let in together: no more are read once those in hand hold 64 KiB.
	var all []byte
	for i := 1; i <= 5; i++ {
		big := Event{Headers: map[string]string{}, Body: []byte(fmt.Sprintf("%d%s", i, strings.Repeat("x", 40<<10)))}
		all = appendCallRequest(all, int32(i+1), nil, nil, "appendBatch", eventParams(big))
	}
	go p.conn.Write(all) // the server stops reading: do not block on it
	// The reader waiting for a call to finish is the proof that it stopped
	// reading: nothing can finish before the gate opens.
	await.Never(t, "all five 40 KiB calls read at once under a 64 KiB frame limit",
		func() bool { return len(g.entered) == 5 },
		func() bool { return s.readerWaits.Load() > 0 })
	if used := s.budget.used.Load(); used > 2*limit {
		t.Fatalf("one connection holds %d bytes of frames, more than two frames' worth", used)
	}
	g.open()
	for range 5 {
		_, d := p.reply()
		expectStatus(t, d, StatusOK)
	}
}

func TestABadFrameAfterPipelinedCallsStillAnswersThemAndClosesTheConnection(t *testing.T) {
	g := newGate()
	s, addr := startServer(t, g, ServerOptions{})
	t.Cleanup(g.open)
	p := dialPeer(t, addr)
	pipeline(t, p, g, 2)
	<-g.entered
	<-g.entered
	p.send(make([]byte, 8)) // a zero-count frame
	await.True(t, "the bad frame to be seen", func() bool { return s.Stats().BadInput == 1 })
	g.open()
	for range 2 {
		_, d := p.reply()
		expectStatus(t, d, StatusOK)
	}
	if !p.closed() {
		t.Fatal("connection left open after a bad frame")
	}
}

func TestAPipelinedClientAgainstTheServerGetsEveryCallAnswered(t *testing.T) {
	rec := &recorder{}
	_, addr := startServer(t, rec, ServerOptions{})
	c := dialT(t, addr, ClientOptions{})
	var ps []*Pending
	for i := range 50 {
		ps = append(ps, sendT(t, c, events(i, i+1)))
	}
	for i, p := range ps {
		if err := p.Wait(context.Background()); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	got := map[string]bool{}
	for _, call := range rec.got() {
		got[string(call.Events[0].Body)] = true
	}
	for i := range 50 {
		if !got[fmt.Sprintf("event-%d", i)] {
			t.Fatalf("event-%d never reached the handler", i)
		}
	}
}
