package sink

// Contract of the avro sink: one channel transaction per Process, committed
// only after the collector answered OK; a collector that is down, dies
// mid-batch, answers FAILED or never answers makes Process return an error
// with the batch rolled back to the head of the channel in order, so nothing
// is lost and a failover processor can send it elsewhere; the next Process
// reconnects. An empty channel does not connect. Start succeeds with the
// collector down. Flume's SinkCounter is kept.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/avrorpc"
	"github.com/flumed/flumed/internal/config"
)

// collector is an avrorpc server recording what it accepted.
type collector struct {
	mu     sync.Mutex
	status avrorpc.Status
	bodies []string
	calls  []int // events per call
}

func (c *collector) Append(e avrorpc.Event) avrorpc.Status {
	return c.AppendBatch([]avrorpc.Event{e})
}

func (c *collector) AppendBatch(evs []avrorpc.Event) avrorpc.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, len(evs))
	if c.status != avrorpc.StatusOK {
		return c.status
	}
	for _, e := range evs {
		c.bodies = append(c.bodies, string(e.Body))
	}
	return avrorpc.StatusOK
}

func (c *collector) got() ([]string, []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bodies...), append([]int(nil), c.calls...)
}

// serveOn serves col on addr ("127.0.0.1:0" for any port) until the returned
// stop is called (also at the end of the test).
func serveOn(t *testing.T, addr string, col *collector, o avrorpc.ServerOptions) (string, *avrorpc.Server, func()) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := avrorpc.NewServer(col, o)
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(l) }()
	var once sync.Once
	stop := func() { once.Do(func() { s.Close(); <-done }) }
	t.Cleanup(stop)
	return l.Addr().String(), s, stop
}

func hostPort(t *testing.T, addr string) (string, int) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(p, &n)
	return h, n
}

func newAvroTo(t *testing.T, addr string, o AvroOptions) *Avro {
	t.Helper()
	o.Hostname, o.Port = hostPort(t, addr)
	s := NewAvro("k1", o, nil)
	t.Cleanup(func() { s.Stop() })
	return s
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestBatchesAreDeliveredAndCommittedAfterOK(t *testing.T) {
	col := &collector{}
	addr, _, _ := serveOn(t, "127.0.0.1:0", col, avrorpc.ServerOptions{})
	ch := newMemoryWith(t, 250)
	s := newAvroTo(t, addr, AvroOptions{BatchSize: 100})
	if err := s.Start(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if st, err := s.Process(context.Background()); st != Ready || err != nil {
			t.Fatalf("process %d: %v %v", i, st, err)
		}
	}
	bodies, calls := col.got()
	if fmt.Sprint(calls) != "[100 100 50]" || len(bodies) != 250 || bodies[0] != "e0" || bodies[249] != "e249" {
		t.Fatalf("collector got calls %v, %d events", calls, len(bodies))
	}
	if ch.Stats().Size != 0 {
		t.Fatalf("channel still holds %d", ch.Stats().Size)
	}
	m := s.FlumeMetrics()
	for k, v := range map[string]string{"BatchCompleteCount": "2", "BatchUnderflowCount": "1", "EventDrainSuccessCount": "250",
		"EventDrainAttemptCount": "250", "ConnectionCreatedCount": "1", "ConnectionFailedCount": "0"} {
		if m[k] != v {
			t.Errorf("%s = %s, want %s", k, m[k], v)
		}
	}
}

func TestAnEmptyChannelBacksOffWithoutConnecting(t *testing.T) {
	col := &collector{}
	addr, srv, _ := serveOn(t, "127.0.0.1:0", col, avrorpc.ServerOptions{})
	s := newAvroTo(t, addr, AvroOptions{})
	s.Start(context.Background(), newMemoryWith(t, 0))
	if st, err := s.Process(context.Background()); st != Backoff || err != nil {
		t.Fatalf("got %v %v", st, err)
	}
	if srv.Stats().Accepted != 0 || s.FlumeMetrics()["BatchEmptyCount"] != "1" {
		t.Fatalf("server %+v, metrics %v", srv.Stats(), s.FlumeMetrics())
	}
}

func TestACollectorDownAtStartFailsProcessUntilItComesBack(t *testing.T) {
	addr := freeAddr(t)
	ch := newMemoryWith(t, 5)
	s := newAvroTo(t, addr, AvroOptions{BatchSize: 10, ConnectTimeout: time.Second})
	if err := s.Start(context.Background(), ch); err != nil {
		t.Fatalf("start with the collector down: %v", err)
	}
	if _, err := s.Process(context.Background()); err == nil {
		t.Fatal("delivered to nobody")
	}
	if ch.Stats().Size != 5 || s.FlumeMetrics()["ConnectionFailedCount"] != "1" {
		t.Fatalf("channel %d, metrics %v", ch.Stats().Size, s.FlumeMetrics())
	}
	col := &collector{}
	serveOn(t, addr, col, avrorpc.ServerOptions{})
	if st, err := s.Process(context.Background()); st != Ready || err != nil {
		t.Fatalf("after the collector came back: %v %v", st, err)
	}
	if bodies, _ := col.got(); strings.Join(bodies, ",") != "e0,e1,e2,e3,e4" {
		t.Fatalf("collector got %v", bodies)
	}
}

func TestAFailedReplyRollsBackAndClosesTheConnection(t *testing.T) {
	col := &collector{status: avrorpc.StatusFailed}
	addr, _, _ := serveOn(t, "127.0.0.1:0", col, avrorpc.ServerOptions{})
	ch := newMemoryWith(t, 3)
	s := newAvroTo(t, addr, AvroOptions{})
	s.Start(context.Background(), ch)
	_, err := s.Process(context.Background())
	var se *avrorpc.StatusError
	if !errors.As(err, &se) || se.Status != avrorpc.StatusFailed {
		t.Fatalf("err = %v, want FAILED", err)
	}
	m := s.FlumeMetrics()
	if ch.Stats().Size != 3 || m["ConnectionClosedCount"] != "1" || m["EventWriteFail"] != "1" || m["EventDrainSuccessCount"] != "0" {
		t.Fatalf("channel %d, metrics %v", ch.Stats().Size, m)
	}
	col.mu.Lock()
	col.status = avrorpc.StatusOK
	col.mu.Unlock()
	if _, err := s.Process(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m := s.FlumeMetrics(); m["ConnectionCreatedCount"] != "2" {
		t.Fatalf("did not reconnect: %v", m)
	}
}

// mute accepts connections, reads requests, and never answers; with die set
// it closes each connection once a request arrives instead.
func mute(t *testing.T, die bool) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	conns := make(chan net.Conn, 16)
	t.Cleanup(func() {
		l.Close()
		close(conns)
		for c := range conns {
			c.Close()
		}
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns <- c
			wg.Add(1)
			go func() {
				defer wg.Done()
				if die {
					c.Read(make([]byte, 16))
					c.Close()
					return
				}
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return l.Addr().String()
}

func TestACollectorThatNeverAnswersTimesOutAndTheBatchIsRolledBack(t *testing.T) {
	ch := newMemoryWith(t, 4)
	s := newAvroTo(t, mute(t, false), AvroOptions{RequestTimeout: 200 * time.Millisecond})
	s.Start(context.Background(), ch)
	start := time.Now()
	_, err := s.Process(context.Background())
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %v", took)
	}
	if ch.Stats().Size != 4 {
		t.Fatalf("channel holds %d, want the 4 rolled back", ch.Stats().Size)
	}
}

func TestACollectorDyingMidBatchLosesNothing(t *testing.T) {
	ch := newMemoryWith(t, 4)
	s := newAvroTo(t, mute(t, true), AvroOptions{})
	s.Start(context.Background(), ch)
	if _, err := s.Process(context.Background()); err == nil {
		t.Fatal("no error from a collector that died")
	}
	tx := ch.Begin()
	evs, _ := tx.Take(10)
	tx.Rollback()
	if len(evs) != 4 || string(evs[0].Body) != "e0" || string(evs[3].Body) != "e3" {
		t.Fatalf("channel head after rollback: %d events", len(evs))
	}
}

func TestFailoverSendsARolledBackBatchToTheNextCollector(t *testing.T) {
	for name, dead := range map[string]func(t *testing.T) string{
		"the first collector is down":          freeAddr,
		"the first collector never answers":    func(t *testing.T) string { return mute(t, false) },
		"the first collector dies mid-request": func(t *testing.T) string { return mute(t, true) },
	} {
		t.Run(name, func(t *testing.T) {
			col := &collector{}
			live, _, _ := serveOn(t, "127.0.0.1:0", col, avrorpc.ServerOptions{})
			k1 := NewAvro("k1", AvroOptions{Hostname: "127.0.0.1", Port: mustPort(t, dead(t)),
				ConnectTimeout: time.Second, RequestTimeout: 200 * time.Millisecond}, nil)
			k2 := NewAvro("k2", AvroOptions{Hostname: "127.0.0.1", Port: mustPort(t, live)}, nil)
			ch := newMemoryWith(t, 150)
			for _, s := range []*Avro{k1, k2} {
				s.Start(context.Background(), ch)
				t.Cleanup(func() { s.Stop() })
			}
			p, err := NewFailover("g1", []Sink{k1, k2}, FailoverOptions{Priorities: map[string]int{"k1": 10, "k2": 5}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for ch.Stats().Size > 0 {
				if _, err := p.Process(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			bodies, _ := col.got()
			if len(bodies) != 150 || bodies[0] != "e0" || bodies[149] != "e149" {
				t.Fatalf("the live collector got %d events", len(bodies))
			}
			if k1.FlumeMetrics()["EventDrainSuccessCount"] != "0" {
				t.Fatalf("k1 metrics %v", k1.FlumeMetrics())
			}
		})
	}
}

func mustPort(t *testing.T, addr string) int {
	_, p := hostPort(t, addr)
	return p
}

func TestResetConnectionIntervalReconnectsBeforeTheNextBatch(t *testing.T) {
	col := &collector{}
	addr, srv, _ := serveOn(t, "127.0.0.1:0", col, avrorpc.ServerOptions{})
	s := newAvroTo(t, addr, AvroOptions{BatchSize: 1, ResetConnectionInterval: time.Nanosecond})
	s.Start(context.Background(), newMemoryWith(t, 3))
	for range 3 {
		if _, err := s.Process(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if srv.Stats().Accepted != 3 || s.FlumeMetrics()["ConnectionClosedCount"] != "2" {
		t.Fatalf("server %+v, metrics %v", srv.Stats(), s.FlumeMetrics())
	}
}

func TestAConnectionTheCollectorClosedWhileIdleIsReplacedWithoutFailing(t *testing.T) {
	col := &collector{}
	addr, _, _ := serveOn(t, "127.0.0.1:0", col, avrorpc.ServerOptions{IdleTimeout: 50 * time.Millisecond})
	ch := newMemoryWith(t, 2)
	s := newAvroTo(t, addr, AvroOptions{BatchSize: 1})
	s.Start(context.Background(), ch)
	if _, err := s.Process(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond) // past the server's idle timeout and the client's stale check
	if _, err := s.Process(context.Background()); err != nil {
		t.Fatalf("after the idle close: %v", err)
	}
	if bodies, _ := col.got(); len(bodies) != 2 {
		t.Fatalf("collector got %v", bodies)
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "collector"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestTheFactoryReadsFlumeKeysForDeflateAndTLS(t *testing.T) {
	col := &collector{}
	addr, _, _ := serveOn(t, "127.0.0.1:0", col, avrorpc.ServerOptions{
		Deflate: true, TLS: &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}})
	h, p := hostPort(t, addr)
	c := config.FromMap("a1.sinks.k1.", map[string]string{
		"hostname": h, "port": fmt.Sprint(p), "batch-size": "7", "compression-type": "deflate", "compression-level": "9",
		"ssl": "true", "trust-all-certs": "true", "request-timeout": "5000", "connect-timeout": "5000", "reset-connection-interval": "60",
	})
	sk, err := checkedSink("avro")("k1", c, nil)
	if err != nil || c.Problems().Err() != nil {
		t.Fatalf("configure: %v %v", err, c.Problems().Err())
	}
	s := sk.(*Avro)
	t.Cleanup(func() { s.Stop() })
	if s.BatchSize() != 7 || s.opts.ResetConnectionInterval != time.Minute {
		t.Fatalf("options %+v", s.opts)
	}
	s.Start(context.Background(), newMemoryWith(t, 10))
	for range 2 {
		if _, err := s.Process(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, calls := col.got(); fmt.Sprint(calls) != "[7 3]" {
		t.Fatalf("calls %v", calls)
	}
}

func TestAvroSinkConfigurationProblems(t *testing.T) {
	base := func(kv map[string]string) map[string]string {
		m := map[string]string{"hostname": "collector", "port": "4141"}
		for k, v := range kv {
			m[k] = v
		}
		return m
	}
	jks := filepath.Join(t.TempDir(), "truststore.jks")
	if err := os.WriteFile(jks, []byte{0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2}, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		kv   map[string]string
		want string
		warn bool
	}{
		{"a missing hostname", map[string]string{"port": "4141"}, "hostname: required key is missing", false},
		{"a misspelt key", base(map[string]string{"batchsize": "10"}), "did you mean batch-size", false},
		{"a bad port", base(map[string]string{"port": "x"}), "not a port number", false},
		{"compression level out of range", base(map[string]string{"compression-level": "11"}), "must be 0-9", false},
		{"a JKS truststore", base(map[string]string{"ssl": "true", "truststore": jks, "truststore-type": "JKS"}), "keytool", false},
		{"a JKS truststore path that does not exist", base(map[string]string{"ssl": "true", "truststore": "/nonexistent.jks", "truststore-type": "JKS"}),
			"open /nonexistent.jks: no such file or directory", false},
		{"a timeout below Flume's minimum", base(map[string]string{"request-timeout": "10"}), "minimum of 1000 ms", true},
		{"maxIoWorkers", base(map[string]string{"maxIoWorkers": "4"}), "no longer supported", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := config.FromMap("a1.sinks.k1.", tc.kv)
			_, err := checkedSink("avro")("k1", c, nil)
			var msgs []string
			for _, p := range c.Problems().Errors() {
				msgs = append(msgs, p.String())
			}
			if tc.warn {
				if err != nil || len(msgs) != 0 {
					t.Fatalf("errors %v %v for a warning case", err, msgs)
				}
				msgs = nil
				for _, p := range c.Problems().Warnings() {
					msgs = append(msgs, p.String())
				}
			}
			if !strings.Contains(strings.Join(msgs, "\n"), tc.want) {
				t.Fatalf("problems %v, want one mentioning %q", msgs, tc.want)
			}
		})
	}
}
