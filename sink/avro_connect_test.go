package sink

// What the avro sink logs about its connections: "avro sink connected" only
// once the connection's first call (which carries the Avro handshake) has
// been answered, since a TCP connect succeeds to any listener, an HTTP
// server included; and a connection whose first call fails says why, once
// per connection, so the cause shows as often as the runner reconnects
// (every ErrorSleep) while the runner's own error line stays rate-limited.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/avrorpc"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/clock"
)

func TestAnHTTPServerIsNeverReportedConnectedAndEveryReconnectSaysWhy(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer web.Close()
	log, logs := newTestLogger()
	o := AvroOptions{BatchSize: 10}
	o.Hostname, o.Port = hostPort(t, web.Listener.Addr().String())
	s := NewAvro("k1", o, log)
	t.Cleanup(func() { s.Stop() })
	ch := newMemoryWith(t, 5)
	if err := s.Start(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake()
	r := NewRunner("k1", NewDefault(s), RunnerOptions{Clock: clk}, log)
	r.Start(context.Background())
	defer r.Stop()
	count := func(line string) int { return strings.Count(logs.String(), line) }

	const reconnects = 4
	for i := 1; i <= reconnects; i++ {
		await.True(t, "the failure of connection "+strconv.Itoa(i)+" logged", func() bool {
			return count(`msg="avro sink connection failed"`) == i
		})
		clk.BlockUntil(1) // the runner sleeps ErrorSleep, on the fake clock
		if i < reconnects {
			clk.Advance(5 * time.Second)
		}
	}
	if n := count(`msg="avro sink connected"`); n != 0 {
		t.Errorf(`"avro sink connected" logged %d times for an HTTP server`, n)
	}
	if got := s.FlumeMetrics()["ConnectionCreatedCount"]; got != "4" {
		t.Errorf("ConnectionCreatedCount %s, want one per failure line (4)", got)
	}
	if !strings.Contains(logs.String(), "err=") || !strings.Contains(logs.String(), "addr="+web.Listener.Addr().String()) {
		t.Errorf("the failure lines name neither the error nor the address:\n%s", logs)
	}
	// 15 s of fake time: the runner's rate-limited line came once.
	if n := count(`msg="unable to deliver event"`); n != 1 {
		t.Errorf(`"unable to deliver event" logged %d times in 15 s, want 1 (one a minute)`, n)
	}
	if ch.Stats().Size != 5 {
		t.Errorf("channel holds %d events, want the 5 undelivered", ch.Stats().Size)
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("log:\n%s", logs)
	}
}

func TestACollectorIsReportedConnectedAfterItsFirstReply(t *testing.T) {
	addr, _, _ := serveOn(t, "127.0.0.1:0", &collector{}, avrorpc.ServerOptions{})
	log, logs := newTestLogger()
	o := AvroOptions{BatchSize: 2}
	o.Hostname, o.Port = hostPort(t, addr)
	s := NewAvro("k1", o, log)
	t.Cleanup(func() { s.Stop() })
	if err := s.Start(context.Background(), newMemoryWith(t, 6)); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if st, err := s.Process(context.Background()); st != Ready || err != nil {
			t.Fatalf("process: %v %v", st, err)
		}
	}
	if n := strings.Count(logs.String(), `msg="avro sink connected"`); n != 1 {
		t.Errorf(`"avro sink connected" logged %d times over one connection, want 1:\n%s`, n, logs)
	}
	if strings.Contains(logs.String(), "connection failed") {
		t.Errorf("a failure logged:\n%s", logs)
	}
}
