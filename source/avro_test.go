package source

// Contract of the avro source: a client is answered OK only after the
// channel processor committed its events, and FAILED when a channel refused
// them, in which case nothing of the batch is left in the channel. The
// recorded Java transcripts put exactly their events into a real memory
// channel. Flume's counters are kept. Bad input closes only its connection
// and is counted; configuration problems are reported with their keys.
// Calls a client pipelines on one connection are put concurrently, up to
// max-calls-per-connection, so the channel can commit them together.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/avrorpc"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/source/internal/sourcetest"
)

func avroConfig(kv map[string]string) *config.Context {
	base := map[string]string{"bind": "127.0.0.1", "port": "0"}
	for k, v := range kv {
		base[k] = v
	}
	return config.FromMap("a1.sources.r1.", base)
}

// startAvro builds the source from keys, starts it into p and stops it when
// the test ends.
func startAvro(t *testing.T, kv map[string]string, p BatchPutter) (*Avro, string) {
	t.Helper()
	c := avroConfig(kv)
	c.Check(avroType)
	src, err := newAvroSource("r1", c, sourcetest.DiscardLog())
	if err != nil || c.Problems().Err() != nil {
		t.Fatalf("configure: %v %v", err, c.Problems().Err())
	}
	a := src.(*Avro)
	if err := a.Start(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop() })
	return a, a.Addr().String()
}

func avroEvents(from, to int) []avrorpc.Event {
	var out []avrorpc.Event
	for i := from; i < to; i++ {
		out = append(out, avrorpc.Event{Headers: map[string]string{"seq": fmt.Sprint(i)}, Body: []byte(fmt.Sprintf("event-%d", i))})
	}
	return out
}

func sendBatch(t *testing.T, addr string, evs []avrorpc.Event) error {
	t.Helper()
	c, err := avrorpc.Dial(context.Background(), addr, avrorpc.ClientOptions{RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.AppendBatch(context.Background(), evs)
}

func takeAll(t *testing.T, ch channel.Channel) []channel.Event {
	t.Helper()
	tx := ch.Begin()
	evs, err := tx.Take(20) // memoryProcessor's transactionCapacity
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestTheRecordedJavaClientsPutExactlyTheirEventsIntoTheChannel(t *testing.T) {
	for name, want := range map[string][]string{"append1": {"event-0"}, "batch3": {"event-0", "event-1", "event-2"}, "append2-same-conn": {"event-0", "event-1"}} {
		t.Run(name, func(t *testing.T) {
			mem, p := memoryProcessor(t, "c1")
			_, addr := startAvro(t, nil, p)
			in, err := os.ReadFile(filepath.Join("..", "testdata", "avro-rpc", name+".client-to-server.bin"))
			if err != nil {
				t.Fatal(err)
			}
			reply, err := os.ReadFile(filepath.Join("..", "testdata", "avro-rpc", name+".server-to-client.bin"))
			if err != nil {
				t.Fatal(err)
			}
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			conn.Write(in)
			got := make([]byte, len(reply))
			if _, err := readFull(conn, got); err != nil || string(got) != string(reply) {
				t.Fatalf("reply %x (%v), want %x", got, err, reply)
			}
			evs := takeAll(t, mem)
			if len(evs) != len(want) {
				t.Fatalf("channel holds %d events, want %d", len(evs), len(want))
			}
			for i, e := range evs {
				if string(e.Body) != want[i] || e.Headers["seq"] != fmt.Sprint(i) {
					t.Fatalf("event %d = %q %v", i, e.Body, e.Headers)
				}
			}
		})
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// gate is a BatchPutter that holds its hold-th call until released and lets
// the others through.
type gate struct {
	hold    int
	entered chan struct{} // closed when the held call came in
	release chan error

	mu    sync.Mutex
	calls int
}

func (g *gate) PutBatch([]channel.Event) error {
	g.mu.Lock()
	g.calls++
	n := g.calls
	g.mu.Unlock()
	if n != g.hold {
		return nil
	}
	close(g.entered)
	return <-g.release
}

func TestTheClientIsAnsweredOnlyAfterTheProcessorReturns(t *testing.T) {
	g := &gate{hold: 2, entered: make(chan struct{}), release: make(chan error)}
	_, addr := startAvro(t, nil, g)
	ctx := context.Background()
	c, err := avrorpc.Dial(ctx, addr, avrorpc.ClientOptions{RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.AppendBatch(ctx, avroEvents(0, 1)); err != nil { // completes the handshake
		t.Fatal(err)
	}
	held, err := c.Send(ctx, avroEvents(1, 3))
	if err != nil {
		t.Fatal(err)
	}
	await.Done(t, "the held put", g.entered)
	later, err := c.Send(ctx, avroEvents(3, 4))
	if err != nil {
		t.Fatal(err)
	}
	// The replies share one ordered stream: an answer to the held call sent
	// before its put returned would be read before the later call's answer.
	answered := func(p *avrorpc.Pending) func() bool {
		return func() bool {
			select {
			case <-p.Done():
				return true
			default:
				return false
			}
		}
	}
	await.Never(t, "an answer before the events were committed", answered(held), answered(later))
	g.release <- nil
	if err := held.Wait(ctx); err != nil {
		t.Fatalf("after the commit: %v", err)
	}
}

// barrier lets calls through only once want of them are inside PutBatch at
// the same time, and fails them if that does not happen in time.
type barrier struct {
	want    int
	mu      sync.Mutex
	inside  int
	maxSeen int
	full    chan struct{}
}

func (b *barrier) PutBatch([]channel.Event) error {
	b.mu.Lock()
	b.inside++
	b.maxSeen = max(b.maxSeen, b.inside)
	full := b.full
	if b.inside == b.want {
		close(full)
	}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.inside--
		b.mu.Unlock()
	}()
	select {
	case <-full:
		return nil
	case <-time.After(await.Limit):
		return errors.New("the other calls never came in")
	}
}

func TestCallsPipelinedOnOneConnectionArePutConcurrently(t *testing.T) {
	b := &barrier{want: 3, full: make(chan struct{})}
	_, addr := startAvro(t, map[string]string{"max-calls-per-connection": "3"}, b)
	c, err := avrorpc.Dial(context.Background(), addr, avrorpc.ClientOptions{RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The first call carries the handshake and goes alone: let it through.
	b.mu.Lock()
	b.want = 1
	b.mu.Unlock()
	if err := c.AppendBatch(context.Background(), avroEvents(0, 1)); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.want, b.full = 3, make(chan struct{})
	b.mu.Unlock()
	var ps []*avrorpc.Pending
	for i := 1; i <= 3; i++ {
		p, err := c.Send(context.Background(), avroEvents(i, i+1))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	for i, p := range ps {
		if err := p.Wait(context.Background()); err != nil {
			t.Fatalf("call %d: %v (at most %d put at once)", i+1, err, b.maxSeen)
		}
	}
}

func TestARefusedBatchIsAnsweredFailedAndLeavesNothingInTheChannel(t *testing.T) {
	mem := channel.NewMemory("c1", channel.MemoryOptions{Capacity: 5, TransactionCapacity: 5})
	t.Cleanup(func() { mem.Close() })
	p, err := NewChannelProcessor(config.FromMap("a1.sources.r1.", nil), []channel.Channel{mem}, sourcetest.DiscardLog())
	if err != nil {
		t.Fatal(err)
	}
	a, addr := startAvro(t, nil, p)
	err = sendBatch(t, addr, avroEvents(0, 8)) // more than the transaction holds
	se, ok := err.(*avrorpc.StatusError)
	if !ok || se.Status != avrorpc.StatusFailed {
		t.Fatalf("err = %v, want FAILED", err)
	}
	if got := mem.Stats().Size; got != 0 {
		t.Fatalf("channel holds %d events of a refused batch", got)
	}
	if err := sendBatch(t, addr, avroEvents(0, 4)); err != nil {
		t.Fatalf("a batch that fits: %v", err)
	}
	m := a.FlumeMetrics()
	want := map[string]string{"AppendBatchReceivedCount": "2", "AppendBatchAcceptedCount": "1", "EventReceivedCount": "12",
		"EventAcceptedCount": "4", "ChannelWriteFail": "1", "Type": "SOURCE"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %s, want %s", k, m[k], v)
		}
	}
}

func TestAppendCountsAndOpenConnections(t *testing.T) {
	mem, p := memoryProcessor(t, "c1")
	a, addr := startAvro(t, nil, p)
	c, err := avrorpc.Dial(context.Background(), addr, avrorpc.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, e := range avroEvents(0, 2) {
		if err := c.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	m := a.FlumeMetrics()
	for k, v := range map[string]string{"AppendReceivedCount": "2", "AppendAcceptedCount": "2", "EventAcceptedCount": "2", "OpenConnectionCount": "1"} {
		if m[k] != v {
			t.Errorf("%s = %s, want %s", k, m[k], v)
		}
	}
	if n := len(takeAll(t, mem)); n != 2 {
		t.Fatalf("channel holds %d", n)
	}
}

func TestBadInputClosesOnlyItsConnectionAndIsCounted(t *testing.T) {
	mem, p := memoryProcessor(t, "c1")
	a, addr := startAvro(t, map[string]string{"max-batch-events": "10"}, p)
	c, err := avrorpc.Dial(context.Background(), addr, avrorpc.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.AppendBatch(context.Background(), avroEvents(0, 11)); err == nil {
		t.Fatal("a batch over max-batch-events was accepted")
	}
	if err := sendBatch(t, addr, avroEvents(0, 10)); err != nil {
		t.Fatalf("another connection: %v", err)
	}
	if got := a.FlumeMetrics()["EventReadFail"]; got != "1" {
		t.Fatalf("EventReadFail = %s", got)
	}
	if n := len(takeAll(t, mem)); n != 10 {
		t.Fatalf("channel holds %d events, want only the good batch's 10", n)
	}
}

func TestDeflateAndTheIPFilterWork(t *testing.T) {
	mem, p := memoryProcessor(t, "c1")
	_, addr := startAvro(t, map[string]string{"compression-type": "deflate", "ipFilter": "true", "ipFilterRules": "allow:ip:127.0.0.1,deny:ip:*"}, p)
	c, err := avrorpc.Dial(context.Background(), addr, avrorpc.ClientOptions{Deflate: true, DeflateLevel: 6})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.AppendBatch(context.Background(), avroEvents(0, 3)); err != nil {
		t.Fatal(err)
	}
	if n := len(takeAll(t, mem)); n != 3 {
		t.Fatalf("channel holds %d", n)
	}
}

func TestAvroSourceConfigurationProblems(t *testing.T) {
	cases := []struct {
		name string
		kv   map[string]string
		want string
	}{
		{"a misspelt key", map[string]string{"compresion-type": "deflate"}, "did you mean compression-type"},
		{"an unknown compression", map[string]string{"compression-type": "gzip"}, "must be one of none, deflate"},
		{"ipFilter without rules", map[string]string{"ipFilter": "true"}, "ipFilterRules: required key is missing"},
		{"a malformed rule", map[string]string{"ipFilter": "true", "ipFilterRules": "permit:ip:*"}, "neither allow nor deny"},
		{"a bad port", map[string]string{"port": "70000"}, "not a port number"},
		{"no calls per connection", map[string]string{"max-calls-per-connection": "0"}, "max-calls-per-connection: must be positive"},
		{"a frame bigger than the memory budget", map[string]string{"max-frame-bytes": "1000", "max-inflight-bytes": "10"}, "at least max-frame-bytes"},
		{"ssl without a certificate", map[string]string{"ssl": "true"}, "neither keystore nor ssl-cert"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := avroConfig(tc.kv)
			c.Check(avroType)
			_, _ = newAvroSource("r1", c, sourcetest.DiscardLog())
			err := c.Problems().Err()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("problems %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	c := avroConfig(map[string]string{"threads": "8"})
	c.Check(avroType)
	if _, err := newAvroSource("r1", c, sourcetest.DiscardLog()); err != nil {
		t.Fatal(err)
	}
	if c.Problems().Err() != nil || len(c.Problems().Warnings()) != 1 {
		t.Fatalf("threads: errors %v, warnings %v", c.Problems().Err(), c.Problems().Warnings())
	}
}

func TestStartFailsOnABusyPortAndStopIsIdempotent(t *testing.T) {
	_, p := memoryProcessor(t, "c1")
	a, addr := startAvro(t, nil, p)
	_, port, _ := net.SplitHostPort(addr)
	c := avroConfig(map[string]string{"port": port})
	c.Check(avroType)
	b, err := newAvroSource("r2", c, sourcetest.DiscardLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background(), p); err == nil {
		b.Stop()
		t.Fatal("started on a busy port")
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
}
