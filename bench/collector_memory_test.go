package bench

// BenchmarkCollectorMemory: the memory of a receiving collector, measured
// from outside (issue 15). A real flumed process runs Flume's usual
// collector (avro source → memory channel of capacity 10,000 → file_roll
// sink, every other key at Flume's default); two senders in this process speak Avro RPC to it as flumed's avro
// sink does (batches of 100 512-byte events, up to sink.DefaultPipelineDepth
// calls in flight on each connection) and are paced to collectorRate events/s
// together, or as fast as the box allows when it allows less (events/s says
// which). One iteration is one event; the clock runs until the collector's
// channel has counted b.N takes, so everything sent was written to the roll
// files. collector-peak-rss-MiB is the collector's VmHWM at the end: the peak
// resident memory of the whole run, start-up included; collector-idle-rss-MiB
// is its RSS once ready, before the load (mostly the binary's own pages:
// ~16 of ~18 MiB are RssFile).
//
// Where the memory went (GODEBUG=gctrace=1 in the collector, ~85k events/s,
// the box shared): the live heap stays near 7 MiB (the channel's events,
// which alias their frames, and a few frames in flight: the avro server
// holds at most MaxCallsPerConnection calls and less than two frames per
// connection). Before internal/gcpolicy had a lean headroom, a target of 400
// let the heap reach ~37 MiB between collections: peak RSS 57 MiB, against
// 35 MiB at GOGC=100. With the lean headroom (no file channel here): 44 MiB
// at the same CPU per event.
//
// Variants: gc=policy is the binary as operators run it (internal/gcpolicy
// decides the collection target); gc=GOGC=100 sets Go's default in the
// collector's environment, which turns the policy off, as a baseline in the
// same run.
//
//	go test -run '^$' -bench 'BenchmarkCollectorMemory' -benchtime 2000000x ./bench/

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/avrorpc"
	"github.com/flumed/flumed/internal/e2e"
	"github.com/flumed/flumed/sink"
)

const (
	collectorRate    = 224_000 // events/s, both senders together: the load
	collectorSenders = 2
)

func BenchmarkCollectorMemory(b *testing.B) {
	for _, gc := range []string{"policy", "GOGC=100"} {
		name := fmt.Sprintf("senders=%d/batch=%d/depth=%d/body=%d/rate=%d/gc=%s",
			collectorSenders, pipelineBatch, sink.DefaultPipelineDepth, pipelineBody, collectorRate, gc)
		b.Run(name, func(b *testing.B) {
			var env []string
			if gc != "policy" {
				env = []string{gc}
			}
			benchCollectorMemory(b, env)
		})
	}
}

func benchCollectorMemory(b *testing.B, env []string) {
	ports, err := e2e.FreePorts(2)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	roll := filepath.Join(dir, "roll")
	lines := []string{
		"a1.sources = r1",
		"a1.channels = c1",
		"a1.sinks = k1",
		"a1.sources.r1.type = avro",
		"a1.sources.r1.bind = 127.0.0.1",
		fmt.Sprintf("a1.sources.r1.port = %d", ports[0]),
		"a1.sources.r1.channels = c1",
		"a1.channels.c1.type = memory",
		"a1.channels.c1.capacity = 10000",
		"a1.sinks.k1.type = file_roll",
		"a1.sinks.k1.channel = c1",
		"a1.sinks.k1.sink.directory = " + roll,
	}
	conf := filepath.Join(dir, "collector.properties")
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	p := e2e.NewProc(e2e.ProcOptions{Name: "collector", Bin: flumedBinary(b), Configs: []string{conf}, Dir: dir,
		Env: env, MetricsPort: ports[1], ReadyPort: ports[0], Args: []string{"--log-level", "warn"}})
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if b.Failed() {
			b.Logf("collector:\n%s", p.Tail("stderr", 20))
		}
		_ = p.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	before, err := e2e.Usage(p.Pid())
	if err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	start := time.Now()
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	sent := make(chan error, 1)
	go func() { sent <- pacedSenders(sctx, e2e.Addr(ports[0]), b.N, collectorRate) }()
	waitTakes(b, p, int64(b.N), sent)
	elapsed := time.Since(start)
	b.StopTimer()

	after, err := e2e.Usage(p.Pid())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(100*(after.CPU-before.CPU).Seconds()/elapsed.Seconds(), "collector-cpu-%")
	b.ReportMetric(float64(after.HWM)/(1<<20), "collector-peak-rss-MiB")
	b.ReportMetric(float64(before.RSS)/(1<<20), "collector-idle-rss-MiB")
}

// pacedSenders sends total 512-byte events to addr from collectorSenders
// connections, each keeping up to sink.DefaultPipelineDepth appendBatch
// calls in flight, at rate events/s together: batch i of a sender is not
// sent before start + i × its interval, so a sender that fell behind
// catches up at full speed. The first error ends it.
func pacedSenders(ctx context.Context, addr string, total, rate int) error {
	body := make([]byte, pipelineBody)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	interval := time.Duration(float64(time.Second) * pipelineBatch * collectorSenders / float64(rate))
	var wg sync.WaitGroup
	errs := make(chan error, collectorSenders)
	for s := range collectorSenders {
		share := total / collectorSenders
		if s == 0 {
			share += total % collectorSenders
		}
		wg.Go(func() {
			if err := pacedSender(ctx, addr, body, share, interval); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func pacedSender(ctx context.Context, addr string, body []byte, total int, interval time.Duration) error {
	batch := make([]avrorpc.Event, pipelineBatch)
	for i := range batch {
		batch[i] = avrorpc.Event{Body: body}
	}
	c, err := avrorpc.Dial(ctx, addr, avrorpc.ClientOptions{})
	if err != nil {
		return err
	}
	defer c.Close()
	// The first call carries the handshake and is made alone.
	first := min(total, pipelineBatch)
	if err := c.AppendBatch(ctx, batch[:first]); err != nil {
		return fmt.Errorf("appendBatch: %w", err)
	}
	var inflight []*avrorpc.Pending
	start := time.Now()
	for i, done := 1, first; done < total; i++ {
		if len(inflight) == sink.DefaultPipelineDepth {
			if err := inflight[0].Wait(ctx); err != nil {
				return fmt.Errorf("appendBatch: %w", err)
			}
			inflight = inflight[1:]
		}
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		n := min(pipelineBatch, total-done)
		pc, err := c.Send(ctx, batch[:n])
		if err != nil {
			return fmt.Errorf("appendBatch: %w", err)
		}
		inflight = append(inflight, pc)
		done += n
	}
	for _, pc := range inflight {
		if err := pc.Wait(ctx); err != nil {
			return fmt.Errorf("appendBatch: %w", err)
		}
	}
	return nil
}
