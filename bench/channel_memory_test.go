// Package bench holds flumed's benchmarks; nothing imports it.
//
// BenchmarkChannel measures put+take throughput of every channel type under the
// same load, so each result sits next to its baseline (the memory channel) in
// one run: each iteration commits one put transaction of batch events of size
// body bytes, then takes them back in one transaction and commits that.
//
//	go test -run '^$' -bench 'BenchmarkChannel/' -benchmem ./bench/
package bench

import (
	"fmt"
	"slices"
	"testing"

	"github.com/flumed/flumed/channel"
)

// channelCase opens a fresh, empty channel of one type for a benchmark, with
// room for at least capacity events and transactions of txCap events, that
// never waits (keep-alive 0). The benchmark closes it.
type channelCase func(b *testing.B, capacity, txCap int) channel.Channel

// benchChannels lists the channel types BenchmarkChannel measures, by the name
// in "channel=<name>". Each channel type's bench file adds its own entry in an
// init func.
var benchChannels = map[string]channelCase{}

func init() {
	benchChannels["memory"] = func(b *testing.B, capacity, txCap int) channel.Channel {
		return channel.NewMemory("bench", channel.MemoryOptions{Capacity: capacity, TransactionCapacity: txCap})
	}
}

var (
	benchBatches = []int{100}
	benchSizes   = []int{512}
)

func BenchmarkChannel(b *testing.B) {
	names := make([]string, 0, len(benchChannels))
	for name := range benchChannels {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, batch := range benchBatches {
			for _, size := range benchSizes {
				b.Run(fmt.Sprintf("channel=%s/batch=%d/size=%d", name, batch, size), func(b *testing.B) {
					ch := benchChannels[name](b, 10*batch, batch)
					defer ch.Close()
					benchPutTake(b, ch, batch, size)
				})
			}
		}
	}
}

// benchPutTake commits a put of batch events, then takes and commits them,
// once per iteration, and reports events/s and MB/s of event bodies.
func benchPutTake(b *testing.B, ch channel.Channel, batch, size int) {
	events := make([]channel.Event, batch)
	for i := range events {
		body := make([]byte, size)
		for j := range body {
			body[j] = byte(i + j)
		}
		events[i] = channel.Event{Body: body}
	}
	b.ReportAllocs()
	for b.Loop() {
		tx := ch.Begin()
		if err := tx.Put(events...); err != nil {
			b.Fatalf("put: %v", err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatalf("commit put: %v", err)
		}
		tx = ch.Begin()
		got, err := tx.Take(batch)
		if err != nil || len(got) != batch {
			b.Fatalf("take: %d of %d events, %v", len(got), batch, err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatalf("commit take: %v", err)
		}
	}
	reportThroughput(b, b.N*batch, size)
}

// reportThroughput reports events/s and MB/s (10^6 bytes of bodies) over the
// benchmark's measured time.
func reportThroughput(b *testing.B, events, size int) {
	secs := b.Elapsed().Seconds()
	if secs <= 0 {
		return
	}
	b.ReportMetric(float64(events)/secs, "events/s")
	b.ReportMetric(float64(events)*float64(size)/1e6/secs, "MB/s")
}
