package bench

// The whole pipeline with real flumed processes on one machine.
//
// BenchmarkPipeline: a load generator in this process speaks Flume's Avro
// RPC (internal/avrorpc) to an agent (avro source → file channel → avro
// sink), which forwards to a collector (avro source → file channel → null
// sink). One iteration is one 512-byte event; the clock runs from the first
// send until the collector's channel has counted b.N takes, so events/s is
// end to end, durable at both hops (fsync per commit, the default). Each
// process's CPU (user+system over the run, in % of one core) and peak RSS
// come from /proc/<pid>/stat and /proc/<pid>/status. Variants: one avro
// sink at the agent or four (each its own runner), each keeping one batch
// in flight (pipeline-depth=1, Flume's way) or the default four, and the
// file channels syncing at every commit (the default) or once a second. The
// load generator
// keeps 8 appendBatch calls in flight, so the agent ingests faster than it
// forwards and the run includes draining that backlog.
//
//	go test -run '^$' -bench 'BenchmarkPipeline' -benchtime 1000000x ./bench/
//
// BenchmarkFailover: the seed's exercise (failover group, maxpenalty 10 s as
// in testdata/failover, two collectors) under a steady 1000 events/s.
// Each iteration kills collector1, measures failover (kill → first event
// accepted by collector2), restarts it after 3 s down, and measures failback
// (restart → first event accepted by collector1), reporting median and max.
//
//	go test -run '^$' -bench 'BenchmarkFailover' -benchtime 10x ./bench/

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/avrorpc"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/e2e"
	"github.com/flumed/flumed/sink"
)

const (
	pipelineBody  = 512
	pipelineBatch = 100
	loadConns     = 8 // concurrent appendBatch calls: the agent's group commit needs more than one
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// flumedBinary builds ./cmd/flumed once per benchmark binary, into a
// directory removed when the process exits normally (os.TempDir otherwise).
func flumedBinary(b *testing.B) string {
	b.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flumed-bench-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin, buildErr = e2e.Build(dir)
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return builtBin
}

// node is one flumed process of a benchmark, killed at the end of the run.
func node(b *testing.B, name string, port, metrics int, lines ...string) *e2e.Proc {
	b.Helper()
	dir := b.TempDir()
	conf := filepath.Join(dir, name+".properties")
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	p := e2e.NewProc(e2e.ProcOptions{Name: name, Bin: flumedBinary(b), Configs: []string{conf}, Dir: dir,
		MetricsPort: metrics, ReadyPort: port, Args: []string{"--log-level", "warn"}})
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if b.Failed() {
			b.Logf("%s:\n%s", name, p.Tail("stderr", 20))
		}
		_ = p.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	return p
}

// avroNode is an agent whose avro source on port puts into a file channel
// under a fresh directory, drained by the given sink lines.
func avroNode(b *testing.B, name string, port, metrics int, sinks ...string) *e2e.Proc {
	return avroNodeFsync(b, name, port, metrics, 0, sinks...)
}

// avroNodeFsync is avroNode with the file channel syncing every fsyncEvery
// (fsyncPerTransaction = false) instead of at every commit, when it is not 0.
func avroNodeFsync(b *testing.B, name string, port, metrics int, fsyncEvery time.Duration, sinks ...string) *e2e.Proc {
	p, _ := avroNodeDir(b, name, port, metrics, fsyncEvery, sinks...)
	return p
}

// avroNodeDir is avroNodeFsync, also returning the directory its file
// channel lives in (checkpoint/ and data/).
func avroNodeDir(b *testing.B, name string, port, metrics int, fsyncEvery time.Duration, sinks ...string) (*e2e.Proc, string) {
	dir := b.TempDir()
	lines := []string{
		"a1.sources = r1",
		"a1.channels = c1",
		"a1.sources.r1.type = avro",
		"a1.sources.r1.bind = 127.0.0.1",
		fmt.Sprintf("a1.sources.r1.port = %d", port),
		"a1.sources.r1.channels = c1",
		"a1.channels.c1.type = file",
		"a1.channels.c1.checkpointDir = " + dir + "/checkpoint",
		"a1.channels.c1.dataDirs = " + dir + "/data",
		"a1.channels.c1.transactionCapacity = 10000",
		"a1.channels.c1.minimumRequiredSpace = 104857600",
	}
	if fsyncEvery > 0 {
		lines = append(lines, "a1.channels.c1.fsyncPerTransaction = false",
			fmt.Sprintf("a1.channels.c1.fsyncInterval = %d", int(fsyncEvery.Seconds())))
	}
	return node(b, name, port, metrics, append(lines, sinks...)...), dir
}

// avroSinkLines are the keys of avro sink name on channel c1 to port; a
// depth above 0 sets its pipeline-depth, 0 leaves the default.
func avroSinkLines(name string, port, depth int) []string {
	k := "a1.sinks." + name + "."
	lines := []string{
		k + "type = avro",
		k + "channel = c1",
		k + "hostname = 127.0.0.1",
		fmt.Sprintf("%sport = %d", k, port),
		fmt.Sprintf("%sbatch-size = %d", k, pipelineBatch),
		k + "connect-timeout = 2000",
		k + "request-timeout = 5000",
	}
	if depth > 0 {
		lines = append(lines, fmt.Sprintf("%spipeline-depth = %d", k, depth))
	}
	return lines
}

func BenchmarkPipeline(b *testing.B) {
	// One avro sink is the exercise's shape. With pipeline-depth=1 (Flume's
	// way) each batch waits for the collector's commit and then its own take
	// commit, one after the other; with the default depth (4) one sink keeps
	// several batches in flight on its connection, so both file channels
	// group-commit them. Several sinks on the same channel, each without a
	// group and so with its own runner, are Flume's usual answer to a
	// latency-bound hop. (A load_balance group would not help: one runner
	// calls its sinks one at a time.)
	//
	// fsync=commit is the file channel's default (durable when the source
	// hears OK); fsync=1s syncs once a second instead, for comparison: what
	// the pipeline costs beyond its fsyncs.
	for _, fsync := range []time.Duration{0, time.Second} {
		for _, sinks := range []int{1, 4} {
			for _, depth := range []int{1, sink.DefaultPipelineDepth} {
				mode := "commit"
				if fsync > 0 {
					mode = fsync.String()
				}
				name := fmt.Sprintf("body=%d/batch=%d/channels=file/fsync=%s/agent-sinks=%d/pipeline-depth=%d",
					pipelineBody, pipelineBatch, mode, sinks, depth)
				b.Run(name, func(b *testing.B) { benchPipeline(b, sinks, depth, fsync, true) })
				if fsync == 0 && sinks == 1 && depth == sink.DefaultPipelineDepth {
					// The same without deduplication between the hops
					// (the agent's sink sends no identity, as Flume's):
					// what dedup costs, in the same run (README, "No
					// duplicates between hops").
					b.Run(name+"/dedup=off", func(b *testing.B) { benchPipeline(b, sinks, depth, fsync, false) })
				}
			}
		}
	}
}

func benchPipeline(b *testing.B, sinks, depth int, fsync time.Duration, dedup bool) {
	ports, err := e2e.FreePorts(4)
	if err != nil {
		b.Fatal(err)
	}
	collector, collectorDir := avroNodeDir(b, "collector", ports[0], ports[1], fsync,
		"a1.sinks = k1", "a1.sinks.k1.type = null", "a1.sinks.k1.channel = c1",
		fmt.Sprintf("a1.sinks.k1.batchSize = %d", pipelineBatch))
	var lines []string
	names := make([]string, sinks)
	for i := range names {
		names[i] = fmt.Sprintf("k%d", i+1)
		d := depth
		if d == sink.DefaultPipelineDepth {
			d = 0 // what a configuration without the key gets
		}
		lines = append(lines, avroSinkLines(names[i], ports[0], d)...)
		if !dedup {
			lines = append(lines, "a1.sinks."+names[i]+".dedup = false")
		}
	}
	lines = append(lines, "a1.sinks = "+strings.Join(names, " "))
	agent := avroNodeFsync(b, "agent", ports[2], ports[3], fsync, lines...)
	procs := map[string]int{"agent": agent.Pid(), "collector": collector.Pid(), "loadgen": os.Getpid()}
	before := usages(b, procs)

	b.ResetTimer()
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- sendEvents(ctx, e2e.Addr(ports[2]), b.N) }()
	waitTakes(b, collector, int64(b.N), sent)
	elapsed := time.Since(start)
	b.StopTimer()

	after := usages(b, procs)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(b.N)*pipelineBody/1e6/elapsed.Seconds(), "MB/s")
	for _, name := range []string{"agent", "collector", "loadgen"} {
		cpu := after[name].CPU - before[name].CPU
		b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds(), name+"-cpu-%")
		b.ReportMetric(float64(after[name].HWM)/(1<<20), name+"-peak-rss-MiB")
	}
	if dedup {
		reportDedupState(b, collectorDir)
	}
}

// reportDedupState reports the collector's dedup table as its checkpoint
// holds it: the agent's origin's entry in bytes (≤ 1 KiB while batches
// commit in order, README) and its ranges. Read-only, beside the running
// collector.
func reportDedupState(b *testing.B, dir string) {
	b.Helper()
	rep, err := channel.InspectFile(filepath.Join(dir, "checkpoint"), filepath.Join(dir, "data"))
	if err != nil {
		b.Fatal(err)
	}
	if len(rep.Dedup) != 1 {
		b.Fatalf("the collector knows %d origins, want the agent's", len(rep.Dedup))
	}
	o := rep.Dedup[0]
	b.ReportMetric(float64(o.Bytes), "dedup-bytes/origin")
	b.ReportMetric(float64(strings.Count(o.Ranges, "-")), "dedup-ranges")
}

// usages reads the CPU and memory of each named pid.
func usages(b *testing.B, pids map[string]int) map[string]e2e.ProcUsage {
	b.Helper()
	out := map[string]e2e.ProcUsage{}
	for name, pid := range pids {
		u, err := e2e.Usage(pid)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		out[name] = u
	}
	return out
}

// sendEvents appends total 512-byte events to addr in batches of
// pipelineBatch over loadConns connections. Nothing fails in this benchmark,
// so the first error ends it.
func sendEvents(ctx context.Context, addr string, total int) error {
	body := make([]byte, pipelineBody)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	var next atomic.Int64 // events claimed so far
	var wg sync.WaitGroup
	errs := make(chan error, loadConns)
	for range loadConns {
		wg.Go(func() {
			batch := make([]avrorpc.Event, pipelineBatch)
			for i := range batch {
				batch[i] = avrorpc.Event{Body: body}
			}
			c, err := avrorpc.Dial(ctx, addr, avrorpc.ClientOptions{})
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for {
				end := next.Add(pipelineBatch)
				n := int(min(end, int64(total)) - (end - pipelineBatch))
				if n <= 0 {
					return
				}
				if err := c.AppendBatch(ctx, batch[:n]); err != nil {
					errs <- fmt.Errorf("appendBatch: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// waitTakes waits until the collector's channel counted want takes. It
// fails the benchmark when the sender fails, or when the count stands still
// for await.Limit (a long run may take longer than that, but not a stuck one).
// It reads the collector's metrics at most every 5 ms: each look is an HTTP
// request to a process being measured, and 5 ms is the resolution of the
// elapsed time.
func waitTakes(b *testing.B, collector *e2e.Proc, want int64, sent <-chan error) {
	b.Helper()
	got := int64(-1)
	look := throttle(5*time.Millisecond, func() int64 {
		select {
		case err := <-sent:
			if err != nil {
				b.Fatal(err)
			}
			sent = nil
		default:
		}
		if m, err := collector.Metrics(context.Background()); err == nil {
			got = m.Int("CHANNEL.c1", "EventTakeSuccessCount")
		}
		return got
	})
	for last := look(); last < want; last = look() {
		await.True(b, fmt.Sprintf("the collector to take more than %d of %d events", last, want),
			func() bool { return look() != last })
	}
}

// throttle returns f, called at most once per d: in between, its last
// answer is given again.
func throttle[T any](d time.Duration, f func() T) func() T {
	var last T
	var at time.Time
	return func() T {
		if now := time.Now(); at.IsZero() || now.Sub(at) >= d {
			last, at = f(), now
		}
		return last
	}
}

func BenchmarkFailover(b *testing.B) {
	const maxPenalty, down = 10 * time.Second, 3 * time.Second
	b.Run(fmt.Sprintf("maxpenalty=%s/down=%s/rate=1000", maxPenalty, down), func(b *testing.B) {
		ports, err := e2e.FreePorts(6)
		if err != nil {
			b.Fatal(err)
		}
		nullSink := []string{"a1.sinks = k1", "a1.sinks.k1.type = null", "a1.sinks.k1.channel = c1"}
		c1 := avroNode(b, "collector1", ports[0], ports[1], nullSink...)
		c2 := avroNode(b, "collector2", ports[2], ports[3], nullSink...)
		group := []string{
			"a1.sinks = k1 k2",
			"a1.sinkgroups = g1",
			"a1.sinkgroups.g1.sinks = k1 k2",
			"a1.sinkgroups.g1.processor.type = failover",
			"a1.sinkgroups.g1.processor.priority.k1 = 10",
			"a1.sinkgroups.g1.processor.priority.k2 = 5",
			fmt.Sprintf("a1.sinkgroups.g1.processor.maxpenalty = %d", maxPenalty.Milliseconds()),
		}
		group = append(group, avroSinkLines("k1", ports[0], 0)...)
		group = append(group, avroSinkLines("k2", ports[2], 0)...)
		agentPort, err := e2e.FreePort()
		if err != nil {
			b.Fatal(err)
		}
		agent := avroNode(b, "agent", agentPort, ports[4], group...)

		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		w1 := &e2e.CounterWatch{Proc: c1, Component: "SOURCE.r1", Attr: "EventAcceptedCount"}
		w2 := &e2e.CounterWatch{Proc: c2, Component: "SOURCE.r1", Attr: "EventAcceptedCount"}
		for _, w := range []*e2e.CounterWatch{w1, w2} {
			wg.Go(func() { w.Run(ctx, 5*time.Millisecond) })
		}
		loadErr := make(chan error, 1)
		wg.Go(func() { loadErr <- steadyLoad(ctx, e2e.Addr(agentPort), 1000) })
		defer func() {
			cancel()
			wg.Wait()
		}()
		if _, ok := w1.WaitFirstAfter(ctx, time.Now(), 20*time.Second); !ok {
			b.Fatal("no event reached collector1")
		}
		_ = agent

		var failovers, failbacks []time.Duration
		b.ResetTimer()
		for range b.N {
			time.Sleep(time.Second) // not a wait: a second of steady load on collector1
			killed := time.Now()
			if err := c1.Kill(); err != nil {
				b.Fatal(err)
			}
			at, ok := w2.WaitFirstAfter(ctx, killed, 30*time.Second)
			if !ok {
				b.Fatal("no failover to collector2 within 30 s")
			}
			failovers = append(failovers, at.Sub(killed))
			time.Sleep(time.Until(killed.Add(down))) // not a wait: collector1 stays down this long
			up := time.Now()
			if err := c1.Start(); err != nil {
				b.Fatal(err)
			}
			rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
			err := c1.WaitReady(rctx)
			rcancel()
			if err != nil {
				b.Fatal(err)
			}
			at, ok = w1.WaitFirstAfter(ctx, up, maxPenalty+30*time.Second)
			if !ok {
				b.Fatal("no failback to collector1")
			}
			failbacks = append(failbacks, at.Sub(up))
		}
		b.StopTimer()
		select {
		case err := <-loadErr:
			b.Fatalf("load generator: %v", err)
		default:
		}
		for name, ds := range map[string][]time.Duration{"failover": failovers, "failback": failbacks} {
			med, mx := medianMax(ds)
			b.ReportMetric(med.Seconds(), name+"-median-s")
			b.ReportMetric(mx.Seconds(), name+"-max-s")
		}
		b.Logf("failover %v; failback %v", failovers, failbacks)
	})
}

// steadyLoad sends rate events/s (batches of pipelineBatch) to addr until
// ctx ends. The agent never goes down here, so any error is returned.
func steadyLoad(ctx context.Context, addr string, rate int) error {
	body := make([]byte, pipelineBody)
	batch := make([]avrorpc.Event, pipelineBatch)
	for i := range batch {
		batch[i] = avrorpc.Event{Body: body}
	}
	c, err := avrorpc.Dial(ctx, addr, avrorpc.ClientOptions{})
	if err != nil {
		return err
	}
	defer c.Close()
	t := time.NewTicker(time.Second * pipelineBatch / time.Duration(rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := c.AppendBatch(ctx, batch); err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
	}
}

// medianMax returns the median and the maximum of ds.
func medianMax(ds []time.Duration) (time.Duration, time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return med, s[len(s)-1]
}
