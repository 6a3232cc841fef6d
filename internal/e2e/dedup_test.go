package e2e

// No duplicates between hops (README, "No duplicates between hops"): a chain
// of real flumed processes, sender (seq → memory → avro) → middle (avro →
// file channel → avro) → collector (avro → file channel → avro) → tally
// (avro → memory → file_roll), with the middle agent, the collector, or both
// SIGKILLed ten times each while events flow through them. Every event the
// sender generated reaches the tally's file exactly once: 0 lost, 0
// duplicates.
//
// Each hop names its events (origin and sequence number in the avro call
// metadata) and each receiving channel answers a resend of what it committed
// without putting it again, so neither kind of crash duplicates: a batch a
// killed receiver committed before its reply went out, nor a batch a killed
// sender had delivered before its take commit was durable (a take commit
// lost after the next hop committed the put). The tally and the sender are
// never killed: the tally's file_roll sink, and the sender's memory channel,
// are not what is tested (file_roll writes again what it wrote before a
// crash; a memory channel loses its events).

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestNoDuplicatesBetweenHops(t *testing.T) {
	for _, tc := range []struct {
		name   string
		victim func(middle, collector *Proc) []*Proc
	}{
		{"the middle agent killed 10 times", func(m, _ *Proc) []*Proc { return []*Proc{m} }},
		{"the collector killed 10 times", func(_, c *Proc) []*Proc { return []*Proc{c} }},
		{"both killed 10 times", func(m, c *Proc) []*Proc { return []*Proc{m, c} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Side by side: most of each chain's time is its restarts.
			t.Parallel()
			dedupChain(t, tc.victim)
		})
	}
}

func dedupChain(t *testing.T, victims func(middle, collector *Proc) []*Proc) {
	const (
		total  = 250_000 // the sender must still be sending, or the middle draining, at the last kill
		kills  = 10
		batch  = 20 // the sender's small batches slow it, so events still flow at the last kill
		middle = 100
	)
	c := newCluster(t)
	p := c.ports(7) // middle, collector, tally; four metrics servers
	middlePort, collectorPort, tallyPort := p[0], p[1], p[2]
	l := NewLedger()

	tallyConf := c.config("tally.properties",
		"a1.sources = r1", "a1.channels = c1", "a1.sinks = k1",
		"a1.sources.r1.type = avro", "a1.sources.r1.bind = 127.0.0.1",
		fmt.Sprintf("a1.sources.r1.port = %d", tallyPort), "a1.sources.r1.channels = c1",
		"a1.channels.c1.type = memory", "a1.channels.c1.capacity = 100000", "a1.channels.c1.transactionCapacity = 1000",
		"a1.sinks.k1.type = file_roll", "a1.sinks.k1.channel = c1",
		"a1.sinks.k1.sink.directory = "+c.path("tally", "out"),
		"a1.sinks.k1.sink.rollInterval = 0", "a1.sinks.k1.sink.batchSize = 1000",
	)
	hop := func(name string, port, next int) string {
		return c.config(name+".properties",
			"a1.sources = r1", "a1.channels = c1", "a1.sinks = k1",
			"a1.sources.r1.type = avro", "a1.sources.r1.bind = 127.0.0.1",
			fmt.Sprintf("a1.sources.r1.port = %d", port), "a1.sources.r1.channels = c1",
			fileChannel("c1", c.path(name)),
			"a1.sinks.k1.type = avro", "a1.sinks.k1.channel = c1", "a1.sinks.k1.hostname = 127.0.0.1",
			fmt.Sprintf("a1.sinks.k1.port = %d", next), fmt.Sprintf("a1.sinks.k1.batch-size = %d", middle),
			"a1.sinks.k1.connect-timeout = 2000", "a1.sinks.k1.request-timeout = 5000",
		)
	}
	middleConf := hop("middle", middlePort, collectorPort)
	collectorConf := hop("collector", collectorPort, tallyPort)
	senderConf := c.seqSender(total, batch, middlePort)
	tally := c.proc(ProcOptions{Name: "tally", Configs: []string{tallyConf}, MetricsPort: p[3], ReadyPort: tallyPort})
	coll := c.proc(ProcOptions{Name: "collector", Configs: []string{collectorConf}, MetricsPort: p[4], ReadyPort: collectorPort})
	mid := c.proc(ProcOptions{Name: "middle", Configs: []string{middleConf}, MetricsPort: p[5], ReadyPort: middlePort})
	sender := c.proc(ProcOptions{Name: "sender", Configs: []string{senderConf}, MetricsPort: p[6]})
	c.start(tally)
	c.start(coll)
	c.start(mid)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	r := &RollReader{Dir: c.path("tally", "out"), Collector: "tally", Ledger: l, Parse: ParseDecimal}
	wg.Go(func() { _ = r.Run(ctx, 50*time.Millisecond) })
	defer func() { cancel(); wg.Wait() }()

	c.start(sender)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 16))
	began := time.Now()
	for k := 1; k <= kills; k++ {
		vs := victims(mid, coll)
		for _, v := range vs {
			flowing(t, v, fmt.Sprintf("kill %d of %s", k, v.Name()))
		}
		// Not a wait: the random moment of the kill is what is simulated.
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		if l.Distinct() >= total {
			t.Fatalf("kill %d: every event was delivered before it; raise total", k)
		}
		for _, v := range vs {
			c.kill(v)
		}
		for _, v := range vs {
			c.start(v)
		}
	}
	t.Logf("%d kills in %s; the tally has %d distinct events", kills, time.Since(began).Round(time.Millisecond), l.Distinct())

	waitMoving(t, "every event at the tally", total, l.Distinct)
	c.metric(sender, "SOURCE.r1", "EventAcceptedCount", "the sender generated every event", func(v int64) bool { return v == total })
	// Every hop has delivered and committed what it took, so duplicates
	// still on their way would show: the tally's sink is the last of them.
	for _, pr := range []*Proc{mid, coll, tally} {
		c.idle(pr)
	}
	if err := r.Poll(); err != nil {
		t.Fatal(err)
	}
	got := l.Tally(0, total-1)
	t.Logf("tally: %s (%s in all)", got, time.Since(began).Round(time.Millisecond))
	if len(got.Missing) != 0 || got.Foreign != 0 || got.Duplicates != 0 {
		t.Errorf("want nothing missing, foreign or duplicated: %s", got)
	}
	if g := l.GarbageLines(); len(g) != 0 {
		t.Errorf("lines that are not events in the tally's output: %q", g)
	}
}
