package source

// The netcat source (FLUME.md §2.5) over real TCP on 127.0.0.1: every
// "\n"-terminated line is one event in its own transaction, a trailing "\r"
// kept; "OK\n" per event (unless ack-every-event=false); "FAILED: <reason>\n"
// when the channel refuses; Flume's exact message for a line of
// max-line-length characters or more, then the connection closes. flumed's
// own bounds: max-connections and idle-timeout.

import (
	"bufio"
	"context"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/source/internal/sourcetest"
)

func startNetcat(t *testing.T, snippet string) (*Netcat, *fakeChannel) {
	t.Helper()
	kv := sourcetest.Props(t, "bind = 127.0.0.1\nport = 0\n"+snippet)
	c := config.FromMap("a1.sources.r1.", kv)
	c.Check(netcatType)
	src, err := newNetcatSource("r1", c, sourcetest.DiscardLog())
	if ps := sourcetest.Problems(c); err != nil || len(ps) > 0 {
		t.Fatalf("newNetcatSource: %v %q", err, ps)
	}
	s := src.(*Netcat)
	ch := newFakeChannel("c1")
	p, err := NewChannelProcessor(config.FromMap("a1.sources.r1.", nil), []channel.Channel{ch}, sourcetest.DiscardLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s, ch
}

type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dial(t *testing.T, s *Netcat) *client {
	t.Helper()
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) reply() string {
	c.t.Helper()
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading reply: %v (got %q)", err, line)
	}
	return line
}

// closed reports whether the server closed the connection (after any
// pending replies).
func (c *client) closed() bool {
	_, err := c.r.ReadByte()
	return err == io.EOF
}

func TestNetcatAcknowledgesEachLine(t *testing.T) {
	s, ch := startNetcat(t, ``)
	c := dial(t, s)
	c.send("hello\r\nworld\n\n")
	for i := range 3 {
		if r := c.reply(); r != "OK\n" {
			t.Fatalf("reply %d: %q", i, r)
		}
	}
	if got := ch.bodies(); !slices.Equal(got, []string{"hello\r", "world", ""}) {
		t.Errorf("bodies %q", got)
	}
	if ch.puts != 3 {
		t.Errorf("%d puts, want one transaction per event", ch.puts)
	}
}

func TestNetcatReportsARefusingChannel(t *testing.T) {
	s, ch := startNetcat(t, ``)
	ch.setRefuse(1)
	c := dial(t, s)
	c.send("first\nsecond\n")
	if r := c.reply(); !strings.HasPrefix(r, "FAILED: ") || !strings.Contains(r, "channel full") {
		t.Errorf("reply %q", r)
	}
	if r := c.reply(); r != "OK\n" {
		t.Errorf("reply %q", r)
	}
	if got := ch.bodies(); !slices.Equal(got, []string{"second"}) {
		t.Errorf("bodies %q", got)
	}
}

func TestNetcatRejectsOverlongLinesAndCloses(t *testing.T) {
	s, ch := startNetcat(t, `max-line-length = 10`)
	c := dial(t, s)
	c.send("123456789\n") // 9 chars + newline: exactly the limit
	if r := c.reply(); r != "OK\n" {
		t.Fatalf("reply %q", r)
	}
	c.send("1234567890\n")
	if r := c.reply(); r != "FAILED: Event exceeds the maximum length (10 chars, including newline)\n" {
		t.Errorf("reply %q", r)
	}
	if !c.closed() {
		t.Error("connection still open")
	}
	if got := ch.bodies(); !slices.Equal(got, []string{"123456789"}) {
		t.Errorf("bodies %q", got)
	}
}

func TestNetcatCountsCharactersNotBytes(t *testing.T) {
	s, ch := startNetcat(t, `max-line-length = 4`)
	c := dial(t, s)
	c.send("ééé\n") // 3 chars (6 bytes) + newline
	if r := c.reply(); r != "OK\n" {
		t.Fatalf("reply %q", r)
	}
	c.send("😀😀\n") // each is a surrogate pair in Java: 4 chars
	if r := c.reply(); !strings.Contains(r, "exceeds the maximum length (4 chars") {
		t.Errorf("reply %q", r)
	}
	if got := ch.bodies(); !slices.Equal(got, []string{"ééé"}) {
		t.Errorf("bodies %q", got)
	}
}

func TestNetcatWithoutAcks(t *testing.T) {
	s, ch := startNetcat(t, `ack-every-event = false`)
	c := dial(t, s)
	c.send("a\nb\n")
	await.True(t, "two events", func() bool { return len(ch.bodies()) == 2 })
	c.conn.(*net.TCPConn).CloseWrite()
	if rest, _ := io.ReadAll(c.r); len(rest) != 0 {
		t.Errorf("replies %q with ack-every-event=false", rest)
	}
}

func TestNetcatLatin1IsStoredAsUTF8(t *testing.T) {
	s, ch := startNetcat(t, `encoding = ISO-8859-1`)
	c := dial(t, s)
	c.send("caf\xe9\n")
	c.reply()
	if got := ch.bodies(); !slices.Equal(got, []string{"café"}) {
		t.Errorf("bodies %q", got)
	}
}

func TestNetcatMakesRoomByClosingTheLongestIdleConnection(t *testing.T) {
	s, ch := startNetcat(t, `max-connections = 1`)
	first := dial(t, s)
	first.send("x\n")
	first.reply()
	// The reply is written before the connection goes back to reading: only
	// then is it idle between lines, and only an idle one makes room.
	await.True(t, "the first connection is idle", func() bool { st := s.conns.Stats(); return st.Open == 1 && st.Idle == 1 })
	second := dial(t, s)
	second.send("y\n")
	if r := second.reply(); r != "OK\n" {
		t.Errorf("the new connection got %q, want OK: the idle one makes room", r)
	}
	if !first.closed() {
		t.Error("the idle connection stays open at the cap")
	}
	if got := ch.bodies(); !slices.Equal(got, []string{"x", "y"}) {
		t.Errorf("bodies %q", got)
	}
}

func TestNetcatRefusesAConnectionWhenEveryOneIsInTheMiddleOfALine(t *testing.T) {
	s, ch := startNetcat(t, `max-connections = 1`)
	first := dial(t, s)
	first.send("x\n")
	first.reply()
	first.send("half a li") // busy: in the middle of a line
	await.True(t, "the partial line is read", func() bool { st := s.conns.Stats(); return st.Open == 1 && st.Idle == 0 })
	second := dial(t, s)
	if r := second.reply(); r != "FAILED: too many connections\n" {
		t.Errorf("reply %q", r)
	}
	if !second.closed() {
		t.Error("the extra connection stays open")
	}
	first.send("ne\n")
	if r := first.reply(); r != "OK\n" {
		t.Errorf("first connection: %q", r)
	}
	if got := ch.bodies(); !slices.Equal(got, []string{"x", "half a line"}) {
		t.Errorf("bodies %q", got)
	}
}

func TestNetcatClosesIdleConnections(t *testing.T) {
	s, _ := startNetcat(t, `idle-timeout = 50`)
	c := dial(t, s)
	if !c.closed() {
		t.Error("idle connection was not closed")
	}
}

func TestNetcatDropsAnUnterminatedLastLine(t *testing.T) {
	s, ch := startNetcat(t, ``)
	c := dial(t, s)
	c.send("done\npartial")
	c.reply()
	c.conn.(*net.TCPConn).CloseWrite()
	if !c.closed() {
		t.Fatal("connection not closed at the client's end of stream")
	}
	if got := ch.bodies(); !slices.Equal(got, []string{"done"}) {
		t.Errorf("bodies %q: a line without newline is never acknowledged, so it is not kept", got)
	}
}

func TestNetcatStopClosesOpenConnections(t *testing.T) {
	s, _ := startNetcat(t, ``)
	c := dial(t, s)
	c.send("x\n")
	c.reply()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if !c.closed() {
		t.Error("connection survived Stop")
	}
	if s.Addr() != nil {
		t.Error("still listening after Stop")
	}
}

func TestNetcatConfiguration(t *testing.T) {
	for snippet, want := range map[string]string{
		`port = 1`:               "bind: required key is missing",
		`bind = 0.0.0.0`:         "port: required key is missing",
		"bind = x\nport = 70000": "port: not a port number",
		"bind = x\nport = 1\nmax-line-length = 0":  "max-line-length: must be positive",
		"bind = x\nport = 1\nencoding = UTF-16":    "unsupported encoding",
		"bind = x\nport = 1\nack-every-events = 1": "ack-every-events: unknown key (did you mean ack-every-event?)",
	} {
		c := config.FromMap("a1.sources.r1.", sourcetest.Props(t, snippet))
		c.Check(netcatType)
		_, _ = newNetcatSource("r1", c, sourcetest.DiscardLog())
		if p := strings.Join(sourcetest.Problems(c), "\n"); !strings.Contains(p, want) {
			t.Errorf("%q: problems %q do not mention %q", snippet, p, want)
		}
	}
}
