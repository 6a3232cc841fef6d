package e2e

// A crash chain: a sender (seq → memory → avro) feeds a middle agent (avro →
// file channel → avro) feeding a collector (avro → file channel → file_roll).
// The middle agent is SIGKILLed at random moments while events flow through
// it, and started again each time. Every event the sender generated must
// reach the collector's file, and the duplicates per kill are at most what
// README's "Delivery and duplicates" allows through the middle agent: the
// sender's batches in flight, which the middle committed but died before
// answering (a failed next hop: at most depth batches), and the middle's own
// batches delivered and not yet committed (a crash: at most
// sink.Window(depth) batches). Both avro sinks run at the default
// pipeline-depth, sink.DefaultPipelineDepth.
//
// The sender is never killed: its memory channel is the one place in the
// chain that would lose events on a crash, which is not what is tested here.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/sink"
)

func TestCrashChainLosesNothingWhenTheMiddleAgentIsKilled(t *testing.T) {
	const (
		total       = 600_000 // the sender must still be sending at the last kill
		kills       = 5
		senderBatch = 20 // small batches slow the sender, so events still flow at the last kill
		middleBatch = 100
	)
	c := newCluster(t)
	p := c.ports(5) // middle, collector; and three metrics servers
	middlePort, collectorPort := p[0], p[1]
	l := NewLedger()

	collectorConf := c.config("collector.properties",
		"a1.sources = r1",
		"a1.channels = c1",
		"a1.sinks = k1",
		"a1.sources.r1.type = avro",
		"a1.sources.r1.bind = 127.0.0.1",
		fmt.Sprintf("a1.sources.r1.port = %d", collectorPort),
		"a1.sources.r1.channels = c1",
		fileChannel("c1", c.path("collector")),
		"a1.sinks.k1.type = file_roll",
		"a1.sinks.k1.channel = c1",
		"a1.sinks.k1.sink.directory = "+c.path("collector", "out"),
		"a1.sinks.k1.sink.rollInterval = 0",
		"a1.sinks.k1.sink.batchSize = 1000",
	)
	middleConf := c.config("middle.properties",
		"a1.sources = r1",
		"a1.channels = c1",
		"a1.sinks = k1",
		"a1.sources.r1.type = avro",
		"a1.sources.r1.bind = 127.0.0.1",
		fmt.Sprintf("a1.sources.r1.port = %d", middlePort),
		"a1.sources.r1.channels = c1",
		fileChannel("c1", c.path("middle")),
		"a1.sinks.k1.type = avro",
		"a1.sinks.k1.channel = c1",
		"a1.sinks.k1.hostname = 127.0.0.1",
		fmt.Sprintf("a1.sinks.k1.port = %d", collectorPort),
		fmt.Sprintf("a1.sinks.k1.batch-size = %d", middleBatch),
	)
	senderConf := c.seqSender(total, senderBatch, middlePort)
	collector := c.proc(ProcOptions{Name: "collector", Configs: []string{collectorConf}, MetricsPort: p[2], ReadyPort: collectorPort})
	middle := c.proc(ProcOptions{Name: "middle", Configs: []string{middleConf}, MetricsPort: p[3], ReadyPort: middlePort})
	sender := c.proc(ProcOptions{Name: "sender", Configs: []string{senderConf}, MetricsPort: p[4]})
	c.start(collector)
	c.start(middle)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	r := &RollReader{Dir: c.path("collector", "out"), Collector: "collector", Ledger: l, Parse: ParseDecimal}
	wg.Go(func() { _ = r.Run(ctx, 50*time.Millisecond) })
	defer func() { cancel(); wg.Wait() }()

	c.start(sender)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 6))
	for k := 1; k <= kills; k++ {
		// Kill only while events flow through this run of the middle agent:
		// in from the sender, or out to the collector once the sender is done.
		flowing(t, middle, fmt.Sprintf("kill %d", k))
		// The sender sleeps 5 s after each failure while the middle drains
		// its backlog: a delay up to 1.5 s lands kills in either phase, and
		// often while both directions are busy. Not a wait: the random
		// moment of the kill is what is simulated.
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		if l.Distinct() >= total {
			t.Fatalf("kill %d: every event was delivered before it; raise total", k)
		}
		m, _ := middle.Metrics(ctx)
		c.kill(middle)
		t.Logf("kill %d: this run of the middle had accepted %d events and delivered %d, and held %d; the collector's file has %d lines",
			k, m.Int("SOURCE.r1", "EventAcceptedCount"), m.Int("SINK.k1", "EventDrainSuccessCount"), m.Int("CHANNEL.c1", "ChannelSize"), l.Total("collector"))
		c.start(middle)
	}

	// Distinct counts foreign numbers too; the tally below rules them out.
	waitMoving(t, "every event at the collector", total, l.Distinct)
	c.metric(sender, "SOURCE.r1", "EventAcceptedCount", "the sender generated every event", func(v int64) bool { return v == total })
	// The collector's sink has written out all it took: the duplicates are
	// all in its output, and a last poll reads them.
	c.idle(collector)
	if err := r.Poll(); err != nil {
		t.Fatal(err)
	}
	got := l.Tally(0, total-1)
	depth := sink.DefaultPipelineDepth
	window := sink.Window(depth)
	bound := kills * (depth*senderBatch + window*middleBatch)
	t.Logf("tally: %s", got)
	if len(got.Missing) != 0 || got.Foreign != 0 || got.Duplicates > bound {
		t.Errorf("want nothing missing or foreign and at most %d duplicates (%d kills × (%d sender batches of %d + %d middle batches of %d)): %s",
			bound, kills, depth, senderBatch, window, middleBatch, got)
	}
	if g := l.GarbageLines(); len(g) != 0 {
		t.Errorf("lines that are not events in the collector's output: %q", g)
	}
}

// flowing waits until this run of the middle agent has accepted events from
// the sender or delivered some to the collector.
func flowing(t *testing.T, middle *Proc, what string) {
	t.Helper()
	await.True(t, what+": events flowing through the middle agent", throttle(lookEvery, func() bool {
		m, err := middle.Metrics(context.Background())
		return err == nil && (m.Int("SOURCE.r1", "EventAcceptedCount") > 0 || m.Int("SINK.k1", "EventDrainSuccessCount") > 0)
	}))
}

// fileChannel is a file channel's keys under dir, one per line.
func fileChannel(name, dir string) string {
	k := "a1.channels." + name + "."
	return k + "type = file\n" +
		k + "checkpointDir = " + dir + "/checkpoint\n" +
		k + "dataDirs = " + dir + "/data\n" +
		k + "transactionCapacity = 1000\n" +
		k + "minimumRequiredSpace = 10485760"
}
