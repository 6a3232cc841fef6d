package avrorpc

// Contract: the client reports OK as nil, FAILED/UNKNOWN as a *StatusError
// that leaves the connection usable, and everything else (timeouts, a
// cancelled context, a dead or misbehaving server) as an error that breaks
// the client. A request timeout fires when the server never answers. A
// connection the server closed while idle is noticed before sending, as
// ErrIdleClosed, so the caller can redial without having sent anything.

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
)

// silentServer accepts connections, reads whatever comes and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			go io.Copy(io.Discard, c)
		}
	}()
	return l.Addr().String()
}

func TestTheRequestTimeoutFiresWhenTheServerNeverAnswers(t *testing.T) {
	addr := silentServer(t)
	c, err := Dial(context.Background(), addr, ClientOptions{RequestTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	err = c.AppendBatch(context.Background(), events(0, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("timed out after %v", took)
	}
	if err := c.AppendBatch(context.Background(), events(0, 1)); err == nil || !strings.Contains(err.Error(), "unusable") {
		t.Fatalf("a broken client was reused: %v", err)
	}
}

func TestACancelledContextEndsTheCall(t *testing.T) {
	addr := silentServer(t)
	c, err := Dial(context.Background(), addr, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := c.AppendBatch(ctx, events(0, 1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's error", err)
	}
}

func TestAFailedStatusLeavesTheConnectionUsable(t *testing.T) {
	rec := &recorder{status: StatusFailed}
	_, addr := startServer(t, rec, ServerOptions{})
	c, err := Dial(context.Background(), addr, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 2 {
		var se *StatusError
		if err := c.AppendBatch(context.Background(), events(0, 1)); !errors.As(err, &se) || se.Status != StatusFailed {
			t.Fatalf("err = %v, want FAILED", err)
		}
	}
	if len(rec.got()) != 2 {
		t.Fatalf("server saw %d calls", len(rec.got()))
	}
}

func TestAConnectionClosedWhileIdleIsNoticedBeforeSending(t *testing.T) {
	rec := &recorder{}
	s, addr := startServer(t, rec, ServerOptions{IdleTimeout: 50 * time.Millisecond})
	c, err := Dial(context.Background(), addr, ClientOptions{StaleAfter: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.AppendBatch(context.Background(), events(0, 1)); err != nil {
		t.Fatal(err)
	}
	// The server closes the idle connection, and the client's reader sees
	// it: the next call depends on both.
	await.True(t, "the server to close the idle connection", func() bool { return s.Stats().Open == 0 })
	await.True(t, "the client to see the close", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.broken != nil
	})
	if err := c.AppendBatch(context.Background(), events(1, 2)); !errors.Is(err, ErrIdleClosed) {
		t.Fatalf("err = %v, want ErrIdleClosed", err)
	}
	if len(rec.got()) != 1 {
		t.Fatalf("server saw %d calls, want 1", len(rec.got()))
	}
}

func TestAServerThatNeverAcceptsOurProtocolIsAnError(t *testing.T) {
	// A server that answers NONE every time.
	none := handshakeResponse{match: matchNone, serverProtocol: &ProtocolText, serverHash: &Flume19Hash}
	hs := appendHandshakeResponse(nil, &none)
	replies := []rawFrame{{serial: 1, buffers: [][]byte{hs}}, {serial: 2, buffers: [][]byte{hs}}}
	addr, _ := scriptedServer(t, replies, false)
	c, err := Dial(context.Background(), addr, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.AppendBatch(context.Background(), events(0, 1)); !errors.Is(err, ErrProtocol) {
		t.Fatalf("err = %v, want a protocol error", err)
	}
}

func TestAReplyWithTheWrongSerialIsAnError(t *testing.T) {
	both := handshakeResponse{match: matchBoth}
	replies := []rawFrame{{serial: 9, buffers: [][]byte{appendHandshakeResponse(nil, &both), {0}, {0, 0}}}}
	addr, _ := scriptedServer(t, replies, false)
	c, err := Dial(context.Background(), addr, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.AppendBatch(context.Background(), events(0, 1)); !errors.Is(err, ErrProtocol) {
		t.Fatalf("err = %v, want a protocol error", err)
	}
}

func TestDialingAClosedPortFails(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	if _, err := Dial(context.Background(), addr, ClientOptions{ConnectTimeout: time.Second}); err == nil {
		t.Fatal("dialed a closed port")
	}
}

func TestAClientMatchIsAcceptedAndTheConnectionStaysHandshaken(t *testing.T) {
	// A server that knows our hash but has another protocol text (a Flume 1.9
	// server that learned our protocol earlier) answers CLIENT with its own.
	text := string(readFixture(t, "flume-1.9-protocol.avpr"))
	client := handshakeResponse{match: matchClient, serverProtocol: &text, serverHash: &Flume19Hash}
	replies := []rawFrame{
		{serial: 1, buffers: [][]byte{appendHandshakeResponse(nil, &client), {0}, {0, 0}}},
		{serial: 2, buffers: [][]byte{{}, {0}, {0, 0}}},
	}
	addr, sent := scriptedServer(t, replies, false)
	c, err := Dial(context.Background(), addr, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := c.AppendBatch(context.Background(), events(i, i+1)); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	c.Close()
	frames := splitFrames(t, sent())
	if len(frames) != 2 || len(frames[1].buffers[0]) != 13 { // meta 00, 16 "appendBatch": no handshake
		t.Fatalf("second request's first buffer is %d bytes, want 13 (no handshake)", len(frames[1].buffers[0]))
	}
}
