package avrorpc

// Contract: the server answers the handshake as Avro's Java Responder does
// (BOTH, CLIENT, NONE), validates a client's protocol text before serving it,
// answers an unknown message with an Avro error without dropping the
// connection, answers pipelined calls in order when it handles one call per
// connection at a time, tells the client exactly the handler's Status, and
// on Close waits for handler calls in flight. (pipeline_test.go: pipelined
// calls handled concurrently.)

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
)

// peer is a hand-driven client connection for speaking raw frames.
type peer struct {
	t    testing.TB
	conn net.Conn
	fr   frameReader
}

func dialPeer(t testing.TB, addr string) *peer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(await.Limit))
	return &peer{t: t, conn: c, fr: frameReader{r: c, lim: DefaultLimits()}}
}

func (p *peer) send(b []byte) {
	p.t.Helper()
	if _, err := p.conn.Write(b); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

// call sends one request frame.
func (p *peer) call(serial int32, hs *handshakeRequest, message string, params []byte) {
	p.t.Helper()
	p.send(appendCallRequest(nil, serial, hs, nil, message, params))
}

func (p *peer) reply() (int32, *decoder) {
	p.t.Helper()
	serial, payload, err := p.fr.read()
	if err != nil {
		p.t.Fatalf("read reply: %v", err)
	}
	return serial, newDecoder(payload)
}

// closed reports whether the server closed the connection (reads EOF or reset
// within await.Limit: generous, since only a broken run waits it out).
func (p *peer) closed() bool {
	p.conn.SetReadDeadline(time.Now().Add(await.Limit))
	var b [4096]byte
	for {
		_, err := p.conn.Read(b[:])
		if err != nil {
			ne, ok := err.(net.Error)
			return !ok || !ne.Timeout()
		}
	}
}

func flumeHandshake() *handshakeRequest {
	return &handshakeRequest{clientHash: ProtocolHash, serverHash: ProtocolHash}
}

func eventParams(ev ...Event) []byte { return appendEventArray(nil, ev) }

func expectStatus(t testing.TB, d *decoder, want Status) {
	t.Helper()
	st, err := decodeCallResponse(d)
	if err != nil || st != want {
		t.Fatalf("status %v, %v; want %v", st, err, want)
	}
}

func TestAFlume19ClientIsAnsweredClientWithOurProtocolAndServed(t *testing.T) {
	rec := &recorder{}
	_, addr := startServer(t, rec, ServerOptions{})
	p := dialPeer(t, addr)
	p.call(1, &handshakeRequest{clientHash: Flume19Hash, serverHash: Flume19Hash}, "append", appendEvent(nil, ptr(fixtureEvent(0))))
	_, d := p.reply()
	hs, err := decodeHandshakeResponse(d)
	if err != nil || hs.match != matchClient || hs.serverProtocol == nil || *hs.serverProtocol != ProtocolText || *hs.serverHash != ProtocolHash {
		t.Fatalf("handshake %+v, %v; want CLIENT with our protocol", hs, err)
	}
	expectStatus(t, d, StatusOK)
	p.call(2, nil, "append", appendEvent(nil, ptr(fixtureEvent(1))))
	_, d = p.reply()
	expectStatus(t, d, StatusOK)
	if !sameCalls(rec.got(), []recordedCall{{"append", events(0, 1)}, {"append", events(1, 2)}}) {
		t.Fatalf("handler saw %+v", rec.got())
	}
}

func ptr[T any](v T) *T { return &v }

func TestAClientProtocolWeCannotServeClosesTheConnection(t *testing.T) {
	other := `{"protocol":"Other","namespace":"x","types":[],"messages":{"ping":{"request":[],"response":"null"}}}`
	changed := strings.Replace(ProtocolText, `{"name":"body","type":"bytes"}`, `{"name":"body","type":"string"}`, 1)
	for name, text := range map[string]string{"no append messages": other, "append with another schema": changed, "not JSON": "{{{"} {
		t.Run(name, func(t *testing.T) {
			rec := &recorder{}
			s, addr := startServer(t, rec, ServerOptions{})
			p := dialPeer(t, addr)
			p.call(1, &handshakeRequest{clientHash: hashOf([]byte(text)), clientProtocol: &text}, "append", appendEvent(nil, ptr(fixtureEvent(0))))
			if !p.closed() {
				t.Fatal("connection left open")
			}
			if len(rec.got()) != 0 || s.Stats().BadInput != 1 {
				t.Fatalf("calls %v, stats %+v", rec.got(), s.Stats())
			}
		})
	}
}

func TestAnUnknownMessageGetsAnAvroErrorAndTheConnectionStaysUsable(t *testing.T) {
	rec := &recorder{}
	_, addr := startServer(t, rec, ServerOptions{})
	p := dialPeer(t, addr)
	p.call(1, flumeHandshake(), "ping", nil)
	_, d := p.reply()
	if hs, err := decodeHandshakeResponse(d); err != nil || hs.match != matchBoth {
		t.Fatalf("handshake %+v %v", hs, err)
	}
	_, err := decodeCallResponse(d)
	re, ok := err.(*RemoteError)
	if !ok || !strings.Contains(re.Message, "No such remote message: ping") {
		t.Fatalf("err = %v, want a remote error naming the message", err)
	}
	p.call(2, nil, "appendBatch", eventParams(events(0, 2)...))
	_, d = p.reply()
	expectStatus(t, d, StatusOK)
}

func TestAHandshakePingIsAnsweredWithTheHandshakeAlone(t *testing.T) {
	_, addr := startServer(t, &recorder{}, ServerOptions{})
	p := dialPeer(t, addr)
	p.call(1, flumeHandshake(), "", nil)
	serial, payload, err := p.fr.read()
	if err != nil || serial != 1 || !bytes.Equal(payload, []byte{0, 0, 0, 0}) {
		t.Fatalf("got %d %x %v, want BOTH alone", serial, payload, err)
	}
}

func TestWithOneCallPerConnectionPipelinedCallsAreAnsweredInOrder(t *testing.T) {
	rec := &recorder{}
	_, addr := startServer(t, rec, ServerOptions{MaxCallsPerConnection: 1})
	p := dialPeer(t, addr)
	var all []byte
	var want []recordedCall
	for i := 0; i < 50; i++ {
		var hs *handshakeRequest
		if i == 0 {
			hs = flumeHandshake()
		}
		all = appendCallRequest(all, int32(i+1), hs, nil, "appendBatch", eventParams(events(2*i, 2*i+2)...))
		want = append(want, recordedCall{"appendBatch", events(2*i, 2*i+2)})
	}
	p.send(all)
	for i := 0; i < 50; i++ {
		serial, d := p.reply()
		if serial != int32(i+1) {
			t.Fatalf("reply %d has serial %d", i, serial)
		}
		if i == 0 {
			decodeHandshakeResponse(d)
		}
		expectStatus(t, d, StatusOK)
	}
	if !sameCalls(rec.got(), want) {
		t.Fatal("handler saw the calls out of order")
	}
}

// blocking is a handler that waits for release before answering.
type blocking struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blocking) Append(Event) Status { return b.AppendBatch(nil) }
func (b *blocking) AppendBatch([]Event) Status {
	b.entered <- struct{}{}
	<-b.release
	return StatusOK
}

func TestCloseWaitsForHandlerCallsInFlight(t *testing.T) {
	h := &blocking{entered: make(chan struct{}, 1), release: make(chan struct{})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(h, ServerOptions{})
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	p := dialPeer(t, l.Addr().String())
	p.call(1, flumeHandshake(), "appendBatch", eventParams(events(0, 1)...))
	<-h.entered
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	// Serve returns once Close has closed the listeners and, in the same
	// step, the connections: all Close does before it waits for the calls.
	var serveErr error
	serveReturned := false
	await.Never(t, "Close returning while a handler call was running",
		func() bool { return isClosed(closed) },
		func() bool {
			select {
			case serveErr = <-served:
				serveReturned = true
			default:
			}
			return serveReturned
		})
	if serveErr != nil {
		t.Fatal(serveErr)
	}
	close(h.release)
	await.Done(t, "Close to return once the call has", closed)
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestAnIdleConnectionIsClosedAfterTheIdleTimeout(t *testing.T) {
	s, addr := startServer(t, &recorder{}, ServerOptions{IdleTimeout: 100 * time.Millisecond})
	p := dialPeer(t, addr)
	p.call(1, flumeHandshake(), "appendBatch", eventParams(events(0, 1)...))
	p.reply()
	if !p.closed() {
		t.Fatal("idle connection left open")
	}
	if st := s.Stats(); st.BadInput != 0 {
		t.Fatalf("an idle close counted as bad input: %+v", st)
	}
}

func TestStatsCountOpenConnections(t *testing.T) {
	s, addr := startServer(t, &recorder{}, ServerOptions{})
	var peers []*peer
	for range 3 {
		peers = append(peers, dialPeer(t, addr))
	}
	await.True(t, "three open connections", func() bool { return s.Stats().Open == 3 })
	for _, p := range peers {
		p.conn.Close()
	}
	await.True(t, "no open connection", func() bool { return s.Stats().Open == 0 })
	if s.Stats().Accepted != 3 {
		t.Fatalf("stats %+v", s.Stats())
	}
}
