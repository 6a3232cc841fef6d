package sink

// The avro sink names each event to the collector (its channel's origin and
// the event's sequence number there, in the call metadata) whenever its
// channel can (a channel.Originator whose take transactions are
// channel.Sequenced: the file and memory channels), so a collector that
// committed a batch whose reply was lost recognises its resend: the resend
// carries the same numbers as the first send, even cut into other batches.
// With dedup = false it sends as Flume does.

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/avrorpc"
)

// originCollector records every identified call, answering the first fails
// calls FAILED after keeping them (a commit whose reply was lost).
type originCollector struct {
	collector
	mu    sync.Mutex
	fails int
	ids   []*avrorpc.Identity
}

func (c *originCollector) AppendBatchFrom(id *avrorpc.Identity, evs []avrorpc.Event) avrorpc.Status {
	c.mu.Lock()
	c.ids = append(c.ids, id)
	fail := c.fails > 0
	c.fails--
	c.mu.Unlock()
	st := c.AppendBatch(evs)
	if fail {
		return avrorpc.StatusFailed
	}
	return st
}

func TestTheAvroSinkNamesItsEvents(t *testing.T) {
	serve := func(t *testing.T, col *originCollector) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := avrorpc.NewServer(col, avrorpc.ServerOptions{})
		done := make(chan struct{})
		go func() { defer close(done); s.Serve(ln) }()
		t.Cleanup(func() { s.Close(); <-done })
		return ln.Addr().String()
	}

	t.Run("a resend after a lost reply carries the numbers of the first send", func(t *testing.T) {
		col := &originCollector{fails: 1}
		addr := serve(t, col)
		ch := newMemoryWith(t, 5)
		s := newAvroTo(t, addr, AvroOptions{BatchSize: 5, PipelineDepth: 1})
		s.Start(context.Background(), ch)
		if _, err := s.Process(context.Background()); err == nil {
			t.Fatal("the FAILED reply was not an error")
		}
		if _, err := s.Process(context.Background()); err != nil {
			t.Fatal(err)
		}
		col.mu.Lock()
		defer col.mu.Unlock()
		if len(col.ids) != 2 {
			t.Fatalf("%d identified calls, want 2", len(col.ids))
		}
		a, b := col.ids[0], col.ids[1]
		if a.Origin != ch.Origin() || b.Origin != a.Origin || len(a.Seqs) != 5 || !slices.Equal(a.Seqs, b.Seqs) {
			t.Fatalf("first send %+v, resend %+v, channel origin %x", a, b, ch.Origin())
		}
	})

	t.Run("dedup = false sends as Flume does", func(t *testing.T) {
		col := &originCollector{}
		addr := serve(t, col)
		ch := newMemoryWith(t, 5)
		s := newAvroTo(t, addr, AvroOptions{BatchSize: 5, NoDedup: true})
		s.Start(context.Background(), ch)
		if _, err := s.Process(context.Background()); err != nil {
			t.Fatal(err)
		}
		if bodies, _ := col.got(); len(bodies) != 5 || len(col.ids) != 0 {
			t.Fatalf("collector got %d events, %d identified calls", len(bodies), len(col.ids))
		}
	})
}

var (
	_ channel.Originator = (*channel.Memory)(nil)
	_ OriginDelivery     = avroDelivery{}
)
