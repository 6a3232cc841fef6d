package bench

// The file channel's benchmarks, each next to its baseline in the same run
// (512-byte events):
//
//	go test -run '^$' -bench 'FilePutTake|FileGroupCommit' -benchtime 3s ./bench/
//	go test -run '^$' -bench 'FileWriteAmplification' -benchtime 1x ./bench/
//	go test -run '^$' -bench 'FileRestart|FileDrain' -benchtime 1x -timeout 60m ./bench/
//
// BenchmarkFilePutTake: durable put+take at batch 100 against a raw tidwall
// WriteBatch-of-100-with-fsync loop. "sequential" is one goroutine putting a
// batch then taking it (two commits, so two syncs, per batch); "pipelined"
// is a producer and a consumer goroutine, as an agent runs them, whose
// commits the commit loop groups.
//
// BenchmarkFileGroupCommit: single-event put transactions committed by 1 and
// by 32 goroutines.
//
// BenchmarkFileWriteAmplification: a producer and a consumer that keeps up,
// long enough to fill and release several segments; reports bytes written to
// the disk (/proc/self/io write_bytes) per byte of event bodies ingested, and
// the longest put commit, to see what releasing segments stalls.
//
// BenchmarkFileRestart and BenchmarkFileDrain need a big backlog: 1,000,000
// events by default, 10,000,000 (about 5.5 GB of disk) with FLUMED_BENCH_BIG=1.
// They drop the page cache first when they can (root), and measure restart in
// a child process (the bench binary re-executed) so its RSS is its own.

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	tidwall "github.com/tidwall/wal"
)

func init() {
	benchChannels["file"] = func(b *testing.B, capacity, txCap int) channel.Channel {
		o := benchFileOptions(b.TempDir())
		o.Capacity, o.TransactionCapacity, o.KeepAlive = capacity, txCap, 0
		return openBenchFile(b, o)
	}
}

func benchFileOptions(dir string) channel.FileOptions {
	o := channel.DefaultFileOptions()
	o.CheckpointDir = filepath.Join(dir, "checkpoint")
	o.DataDir = filepath.Join(dir, "data")
	o.MinimumRequiredSpace = -1
	o.Capacity = 100_000_000
	o.KeepAlive = 0
	return o
}

func openBenchFile(b testing.TB, o channel.FileOptions) *channel.File {
	b.Helper()
	f, err := channel.OpenFile("bench", o, nil)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// benchEvents returns n events of size body bytes and no headers.
func benchEvents(n, size int) []channel.Event {
	events := make([]channel.Event, n)
	for i, p := range payloads(n, size) {
		events[i] = channel.Event{Body: p}
	}
	return events
}

func commitPut(b testing.TB, ch channel.Channel, events []channel.Event) {
	tx := ch.Begin()
	if err := tx.Put(events...); err != nil {
		b.Fatalf("put: %v", err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatalf("commit put: %v", err)
	}
}

// commitTake takes up to max events in one transaction and commits it.
func commitTake(b testing.TB, ch channel.Channel, max int) int {
	tx := ch.Begin()
	got, err := tx.Take(max)
	if err != nil {
		b.Fatalf("take: %v", err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatalf("commit take: %v", err)
	}
	return len(got)
}

// rawTidwallBatches is the baseline: b.N WriteBatch calls of batch entries,
// each fsynced by tidwall.
func rawTidwallBatches(b *testing.B, batch, size int) {
	l, err := tidwall.Open(b.TempDir(), &tidwall.Options{SegmentSize: benchSegment})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ps := payloads(batch, size)
	var wb tidwall.Batch
	next := uint64(1)
	for b.Loop() {
		for _, p := range ps {
			wb.Write(next, p)
			next++
		}
		if err := l.WriteBatch(&wb); err != nil {
			b.Fatal(err)
		}
	}
	reportThroughput(b, b.N*batch, size)
}

func BenchmarkFilePutTake(b *testing.B) {
	const batch, size = 100, 512
	name := fmt.Sprintf("batch=%d/size=%d", batch, size)
	b.Run("impl=raw-tidwall/"+name, func(b *testing.B) { rawTidwallBatches(b, batch, size) })
	b.Run("impl=file/mode=sequential/"+name, func(b *testing.B) {
		o := benchFileOptions(b.TempDir())
		o.TransactionCapacity = batch
		ch := openBenchFile(b, o)
		defer ch.Close()
		events := benchEvents(batch, size)
		b.ReportAllocs()
		for b.Loop() {
			commitPut(b, ch, events)
			if n := commitTake(b, ch, batch); n != batch {
				b.Fatalf("took %d", n)
			}
		}
		reportThroughput(b, b.N*batch, size)
	})
	b.Run("impl=file/mode=pipelined/"+name, func(b *testing.B) {
		o := benchFileOptions(b.TempDir())
		o.TransactionCapacity = batch
		ch := openBenchFile(b, o)
		defer ch.Close()
		events := benchEvents(batch, size)
		b.ReportAllocs()
		b.ResetTimer()
		total := b.N * batch
		done := make(chan struct{})
		go func() { // the consumer: a sink taking batches as they come
			defer close(done)
			for taken := 0; taken < total; {
				n := commitTake(b, ch, batch)
				if n == 0 {
					time.Sleep(50 * time.Microsecond)
				}
				taken += n
			}
		}()
		for range b.N {
			commitPut(b, ch, events)
		}
		<-done
		reportThroughput(b, total, size)
	})
}

func BenchmarkFileGroupCommit(b *testing.B) {
	const size = 512
	for _, g := range []int{1, 32} {
		b.Run(fmt.Sprintf("goroutines=%d/batch=1/size=%d", g, size), func(b *testing.B) {
			o := benchFileOptions(b.TempDir())
			ch := openBenchFile(b, o)
			defer ch.Close()
			events := benchEvents(g, size)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for i := range g {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						commitPut(b, ch, events[i:i+1])
					}
				}()
			}
			wg.Wait()
			reportThroughput(b, b.N, size)
		})
	}
}
