package source

// The avro source deduplicates what a flumed sink names (origin and
// sequence numbers in the call metadata): per event, so a resend cut into
// other batches after the sender's restart is recognised; by a range set
// per origin, so a batch committed out of order (pipelined calls, handled
// concurrently) never makes an earlier batch that was never committed look
// like a resend (a high-water mark would drop it: lost); and a batch without
// identity (from Apache Flume) is put as before, duplicates included.

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/avrorpc"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/source/internal/sourcetest"
)

func TestTheAvroSourceAnswersAResentEventWithoutPuttingItAgain(t *testing.T) {
	ch := memoryChannel("c1")
	p, err := NewChannelProcessor(config.FromMap(srcPrefix, nil), []channel.Channel{ch}, sourcetest.DiscardLog())
	if err != nil {
		t.Fatal(err)
	}
	_, addr := startAvro(t, nil, p)
	c, err := avrorpc.Dial(context.Background(), addr, avrorpc.ClientOptions{RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	origin := [16]byte{0x5e, 0x4d}
	send := func(from, to int) {
		t.Helper()
		id := &avrorpc.Identity{Origin: origin}
		for i := from; i < to; i++ {
			id.Seqs = append(id.Seqs, uint64(i))
		}
		pend, err := c.SendFrom(context.Background(), id, avroEvents(from, to))
		if err == nil {
			err = pend.Wait(context.Background())
		}
		if err != nil {
			t.Fatalf("send %d..%d: %v", from, to-1, err)
		}
	}
	// Batch 100..199 commits before batch 0..99 was ever sent: pipelined
	// calls the collector handled out of order.
	send(100, 200)
	send(0, 100)
	// The sender restarted and sends its window again, cut differently,
	// with new events after it.
	send(50, 150)
	send(150, 250)
	if err := sendBatch(t, addr, avroEvents(300, 302)); err != nil { // a Flume sender: no identity
		t.Fatal(err)
	}
	if err := sendBatch(t, addr, avroEvents(300, 302)); err != nil { // and its resend: put again, as in Flume
		t.Fatal(err)
	}
	var got []string
	for {
		tx := ch.Begin()
		evs, err := tx.Take(100)
		if err != nil || tx.Commit() != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			got = append(got, e.Headers["seq"])
		}
	}
	var want []string
	for _, r := range [][2]int{{100, 200}, {0, 100}, {200, 250}} {
		for i := r[0]; i < r[1]; i++ {
			want = append(want, avroEvents(i, i+1)[0].Headers["seq"])
		}
	}
	want = append(want, "300", "301", "300", "301")
	if !slices.Equal(got, want) {
		t.Fatalf("the channel holds %d events %v…, want %d: each named event once, the unnamed ones twice", len(got), got[:min(len(got), 10)], len(want))
	}
}
