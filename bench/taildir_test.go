package bench

// The taildir source tailing a file that a fast writer appends 512-byte lines
// to, through the channel processor into a memory or a file channel that a
// goroutine drains:
//
//	go test -run '^$' -bench 'BenchmarkTaildir' -benchtime 400000x ./bench/
//
// One iteration is one line. The source runs under the real pollable runner
// (backoff 1 ms, up to 10 ms, so catching up with the writer costs no idle
// second). Besides lines/s and MB/s it reports the CPU (user+system) of the
// whole process per line: the writer and the draining goroutine are
// included. The baseline in the same run (source=none) puts the same number
// of prepared 512-byte events in batches of the same size through the same
// processor and channel with the same drain: the difference is what tailing
// costs. Batches of 100 (Flume's default) and 1000.
// Positions are journaled with positionSync=batch (one fdatasync per batch),
// the default; positionSync=interval is measured too.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/source"
)

const tailBenchLine = 512

func tailBenchCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tailBenchChannel opens the channel under test.
func tailBenchChannel(b *testing.B, kind string) channel.Channel {
	switch kind {
	case "memory":
		return channel.NewMemory("c1", channel.MemoryOptions{Capacity: 100_000, TransactionCapacity: 1000})
	case "file":
		dir := b.TempDir()
		o := channel.DefaultFileOptions()
		o.CheckpointDir = filepath.Join(dir, "checkpoint")
		o.DataDir = filepath.Join(dir, "data")
		o.MinimumRequiredSpace = -1
		o.Capacity, o.TransactionCapacity, o.KeepAlive = 100_000, 1000, 0
		f, err := channel.OpenFile("c1", o, nil)
		if err != nil {
			b.Fatal(err)
		}
		return f
	}
	b.Fatalf("unknown channel %s", kind)
	return nil
}

// tailBenchDrain takes from ch until want events were taken or ctx ends, and
// reports the count on done.
func tailBenchDrain(ctx context.Context, ch channel.Channel, want int64, taken *atomic.Int64, done chan<- struct{}) {
	defer close(done)
	for taken.Load() < want && ctx.Err() == nil {
		tx := ch.Begin()
		evs, err := tx.Take(1000)
		if err != nil {
			tx.Rollback()
			continue
		}
		if err := tx.Commit(); err != nil {
			continue
		}
		if len(evs) == 0 {
			time.Sleep(50 * time.Microsecond) // pacing: an empty take backs off, as a sink runner does
		}
		taken.Add(int64(len(evs)))
	}
}

func tailBenchProcessor(b *testing.B, ch channel.Channel) *source.ChannelProcessor {
	c := config.FromMap("a1.sources.r1.", map[string]string{})
	p, err := source.NewChannelProcessor(c, []channel.Channel{ch}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func tailBenchReport(b *testing.B, lines int, elapsed, cpu time.Duration) {
	b.ReportMetric(float64(lines)/elapsed.Seconds(), "lines/s")
	b.ReportMetric(float64(lines)*tailBenchLine/1e6/elapsed.Seconds(), "MB/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(lines), "cpu-ns/line")
}

func BenchmarkTaildir(b *testing.B) {
	for _, ch := range []string{"memory", "file"} {
		for _, batch := range []int{100, 1000} {
			b.Run(fmt.Sprintf("source=none/channel=%s/batch=%d/size=%d", ch, batch, tailBenchLine), func(b *testing.B) {
				benchPutBaseline(b, ch, batch)
			})
			for _, sync := range []string{"batch", "interval"} {
				b.Run(fmt.Sprintf("source=taildir/positionSync=%s/channel=%s/batch=%d/size=%d", sync, ch, batch, tailBenchLine), func(b *testing.B) {
					benchTaildir(b, ch, sync, batch)
				})
			}
		}
	}
}

// benchPutBaseline puts prepared batches through the processor.
func benchPutBaseline(b *testing.B, kind string, batch int) {
	ch := tailBenchChannel(b, kind)
	defer ch.Close()
	proc := tailBenchProcessor(b, ch)
	body := bytes.Repeat([]byte("x"), tailBenchLine-1)
	var taken atomic.Int64
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cpu0, start := tailBenchCPU(), time.Now()
	b.ResetTimer()
	go tailBenchDrain(ctx, ch, int64(b.N), &taken, done)
	for sent := 0; sent < b.N; {
		n := min(batch, b.N-sent)
		evs := make([]channel.Event, n)
		for i := range evs {
			evs[i] = channel.Event{Headers: map[string]string{}, Body: body}
		}
		if err := proc.PutBatch(evs); err != nil {
			time.Sleep(100 * time.Microsecond) // pacing: the channel is full, the drain catches up
			continue
		}
		sent += n
	}
	<-done
	b.StopTimer()
	tailBenchReport(b, b.N, time.Since(start), tailBenchCPU()-cpu0)
}

// benchTaildir tails a file written as fast as the writer can.
func benchTaildir(b *testing.B, kind, sync string, batch int) {
	dir := b.TempDir()
	path := filepath.Join(dir, "app.log")
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	ch := tailBenchChannel(b, kind)
	defer ch.Close()
	proc := tailBenchProcessor(b, ch)
	factory, ok := source.Lookup("taildir")
	if !ok {
		b.Fatal("taildir is not registered")
	}
	c := config.FromMap("a1.sources.r1.", map[string]string{
		"filegroups": "g", "filegroups.g": dir + `/app\.log`, "positionFile": filepath.Join(dir, "pos.json"),
		"batchSize": fmt.Sprint(batch), "backoffSleepIncrement": "1", "maxBackoffSleep": "10",
		"positionSync": sync,
	})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	src, err := factory("r1", c, log)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := src.Start(ctx, proc); err != nil {
		b.Fatal(err)
	}
	runner := source.NewRunner(src.(source.Pollable), log)
	line := append(bytes.Repeat([]byte("y"), tailBenchLine-1), '\n')
	chunk := bytes.Repeat(line, 128) // 64 KiB per write
	var taken atomic.Int64
	done := make(chan struct{})

	cpu0, start := tailBenchCPU(), time.Now()
	b.ResetTimer()
	go tailBenchDrain(ctx, ch, int64(b.N), &taken, done)
	go runner.Run(ctx)
	for written := 0; written < b.N; {
		n := min(128, b.N-written)
		if _, err := out.Write(chunk[:n*tailBenchLine]); err != nil {
			b.Fatal(err)
		}
		written += n
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d lines arrived", taken.Load(), b.N)
	}
	b.StopTimer()
	elapsed, cpu := time.Since(start), tailBenchCPU()-cpu0
	runner.Stop()
	if err := src.Stop(); err != nil {
		b.Fatal(err)
	}
	if got := taken.Load(); got != int64(b.N) {
		b.Fatalf("%d lines taken, want %d", got, b.N)
	}
	tailBenchReport(b, b.N, elapsed, cpu)
}
