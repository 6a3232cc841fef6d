package source

// The http source against slow clients (slowloris): a client that trickles
// its headers, or its body, a byte at a time (so a deadline moved by each
// read would never fire) is cut off once read-timeout has passed since its
// request began; it is counted in EventReadFail and logged; nothing of it is
// put and it is answered 400 or not at all (never a 200 for a request not
// read whole).
// Meanwhile a well-behaved curl client is served at once. Socket deadlines
// are wall-clock time, so the timeout is a short configured one: the test
// asserts only that the cut is not early, and waits for it with await.

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
)

// logBuffer is a slog destination tests can read while the source writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// trickle dials addr, writes head at once, then tail one byte every 20 ms
// until the server closes the connection. It returns the bytes written so
// far and a channel that yields what the server sent back once it closed.
func trickle(t *testing.T, addr, head, tail string) (*atomic.Int64, <-chan string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var written atomic.Int64
	go func() {
		if _, err := io.WriteString(c, head); err != nil {
			return
		}
		tick := time.NewTicker(20 * time.Millisecond) // the client's pace, not a wait for the server
		defer tick.Stop()
		for i := 0; i < len(tail); i++ {
			<-tick.C
			if _, err := c.Write([]byte{tail[i]}); err != nil {
				return
			}
			written.Add(1)
		}
	}()
	answer := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(c) // until the server closes (EOF or reset)
		answer <- string(b)
	}()
	return &written, answer
}

func TestHTTPSlowClientsAreCutOffWithoutHoldingUpOthers(t *testing.T) {
	// Long enough that curl, started after the slow client, is answered
	// before the cut on a machine whose cores are busy.
	const readTimeout = 5 * time.Second
	endless := strings.Repeat("X-Slow: a\r\n", 10000) // far longer than read-timeout at 50 bytes/s
	cases := []struct{ name, head, tail string }{
		{"headers trickled", "", "POST / HTTP/1.1\r\nHost: flumed\r\nContent-Type: application/json\r\n" + endless},
		{"body trickled", "POST / HTTP/1.1\r\nHost: flumed\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
			`[{"body":"slow"}` + strings.Repeat(`,{"body":"slow"}`, 6000) + "]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs logBuffer
			s := NewHTTP("r1", HTTPOptions{Addr: "127.0.0.1:0", ReadTimeout: readTimeout}, slog.New(slog.NewTextHandler(&logs, nil)))
			ch := newFakeChannel("c1")
			if err := s.Start(t.Context(), processor(t, ch)); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Stop() })
			addr := s.Addr().String()

			began := time.Now()
			written, answer := trickle(t, addr, tc.head, tc.tail)
			await.True(t, "the slow client is trickling", func() bool { return written.Load() >= 5 })
			if code := curl(t, "-H", "Content-Type: application/json", "--data-binary", `[{"body":"fast"}]`, "http://"+addr+"/"); code != "200" {
				t.Fatalf("the well-behaved client got %s", code)
			}
			if got := s.FlumeMetrics()["EventReadFail"]; got != "0" {
				t.Fatalf("the slow client was cut (EventReadFail %s) before the well-behaved one was answered: nothing shows it was served meanwhile", got)
			}

			got := await.Recv(t, "the slow client cut off", answer)
			if took := time.Since(began); took < readTimeout {
				t.Fatalf("cut off after %v, before read-timeout %v", took, readTimeout)
			}
			// net/http answers a request whose headers never ended with 400;
			// one whose body never ended gets no answer at all.
			if got != "" && !strings.HasPrefix(got, "HTTP/1.1 400 ") {
				t.Fatalf("the slow client was answered %q", got)
			}
			if n := written.Load(); n >= int64(len(tc.tail)) {
				t.Fatalf("the slow client finished (%d bytes) before it was cut", n)
			}
			await.True(t, "the slow client counted", func() bool { return s.FlumeMetrics()["EventReadFail"] == "1" })
			if l := logs.String(); !strings.Contains(l, "client too slow") || !strings.Contains(l, "read-timeout="+readTimeout.String()) {
				t.Fatalf("no log line names the slow client and the timeout:\n%s", l)
			}
			if bodies := ch.bodies(); strings.Join(bodies, ",") != "fast" {
				t.Fatalf("bodies %q, want only the well-behaved client's", bodies)
			}
		})
	}
}

func TestAnIdleKeepAliveConnectionIsNotASlowClient(t *testing.T) {
	s, _, addr := startHTTP(t, HTTPOptions{ReadTimeout: 200 * time.Millisecond, IdleTimeout: 100 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `[{"body":"one"}]`
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: flumed\r\nContent-Length: 16\r\n\r\n"+body); err != nil {
		t.Fatal(err)
	}
	// The answer, then nothing more: the server closes the connection once
	// it has been idle for idle-timeout.
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 200") {
		t.Fatalf("answer %q", b)
	}
	if got := s.FlumeMetrics()["EventReadFail"]; got != "0" {
		t.Fatalf("an idle connection closed by idle-timeout was counted as a failure (%s)", got)
	}
}
