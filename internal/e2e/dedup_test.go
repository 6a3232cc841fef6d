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
//
// Every kill must strike mid-stream, on a fast machine as on a busy one, and
// a hop drains a backlog fast: a stream left to itself is over before the
// tenth restart (each costs the upstream hop's 5 s error sleep). And a hop
// only puts twice what it was delivering or committing when it died: a hop
// that idles between trickles hardly ever is. So until the last kill the
// sender reaches the middle agent, and the collector the tally, over slow
// links, the second slower than the first: the stream trickles on at every
// kill, and the collector always has a backlog it is delivering.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

func TestNoDuplicatesBetweenHops(t *testing.T) {
	for _, tc := range []struct {
		name              string
		middle, collector bool // which are killed
	}{
		{"the middle agent killed 10 times", true, false},
		{"the collector killed 10 times", false, true},
		{"both killed 10 times", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Side by side: most of each chain's time is its restarts.
			t.Parallel()
			dedupChain(t, tc.middle, tc.collector)
		})
	}
}

func dedupChain(t *testing.T, killMiddle, killCollector bool) {
	const (
		// Until the last kill the sender is paced to sendRate events a
		// second, and the tally to tallyRate: events flow at every kill
		// whatever the machine's speed, and the collector always has a
		// backlog it is delivering. total is enough for kills that take
		// 2 min.
		total     = 250_000
		sendRate  = 3_000
		tallyRate = 1_500
		replyLag  = 5 * time.Millisecond
		kills     = 10
		batch     = 20
		middle    = 100
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
	// The sender reaches the middle agent, and the collector the tally,
	// through links that hold requests back while the far end is ahead of
	// its pace: links with little bandwidth.
	var sender, tally *Proc
	sendPace := &pace{rate: sendRate, count: func() (int64, error) { return metric(sender, "SINK.k1", "EventDrainSuccessCount") }}
	// A middle agent to be killed gets the collector's replies late, so its
	// sink is nearly always mid-batch. (Not when only the collector is
	// killed: the middle would feed it too little for a backlog.)
	middlePace := &pace{}
	if killMiddle {
		middlePace.lag = replyLag
	}
	tallyPace := &pace{rate: tallyRate, count: func() (int64, error) { return metric(tally, "SOURCE.r1", "EventAcceptedCount") }}
	middleConf := hop("middle", middlePort, pacedLink(t, fmt.Sprintf("127.0.0.1:%d", collectorPort), middlePace))
	senderConf := c.seqSender(total, batch, pacedLink(t, fmt.Sprintf("127.0.0.1:%d", middlePort), sendPace))
	collectorConf := hop("collector", collectorPort, pacedLink(t, fmt.Sprintf("127.0.0.1:%d", tallyPort), tallyPace))
	tally = c.proc(ProcOptions{Name: "tally", Configs: []string{tallyConf}, MetricsPort: p[3], ReadyPort: tallyPort})
	coll := c.proc(ProcOptions{Name: "collector", Configs: []string{collectorConf}, MetricsPort: p[4], ReadyPort: collectorPort})
	mid := c.proc(ProcOptions{Name: "middle", Configs: []string{middleConf}, MetricsPort: p[5], ReadyPort: middlePort})
	sender = c.proc(ProcOptions{Name: "sender", Configs: []string{senderConf}, MetricsPort: p[6]})
	c.start(tally)
	c.start(coll)
	c.start(mid)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	r := &RollReader{Dir: c.path("tally", "out"), Collector: "tally", Ledger: l, Parse: ParseDecimal}
	wg.Go(func() { _ = r.Run(ctx, 50*time.Millisecond) })
	defer func() { cancel(); wg.Wait() }()

	tallyPace.start()
	sendPace.start()
	c.start(sender)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 16))
	began := time.Now()
	for k := 1; k <= kills; k++ {
		var vs []*Proc
		if killMiddle {
			vs = append(vs, mid)
		}
		if killCollector {
			vs = append(vs, coll)
		}
		for _, v := range vs {
			flowing(t, v, fmt.Sprintf("kill %d of %s", k, v.Name()))
		}
		// Not a wait: the random moment of the kill is what is simulated.
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		if n := sendPace.sent(); n >= total {
			t.Fatalf("kill %d: the sender had sent every event before it (%d); raise total", k, n)
		}
		for _, v := range vs {
			c.kill(v)
		}
		for _, v := range vs {
			c.start(v)
		}
	}
	sendPace.free()
	middlePace.free()
	tallyPace.free()
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

// pace holds a link back while what has passed it, by count, is ahead of
// rate events a second since start, and holds each reply back for lag;
// free ends both.
type pace struct {
	rate  float64
	count func() (int64, error) // cumulative: from a process never restarted; nil: no rate
	lag   time.Duration

	mu     sync.Mutex // the links' goroutines and the test's
	passed int64      // count, looked up at most every lookEvery
	at     time.Time
	from   time.Time
	freed  bool
}

func (p *pace) start() { p.mu.Lock(); p.from = time.Now(); p.mu.Unlock() }
func (p *pace) free()  { p.mu.Lock(); p.freed = true; p.mu.Unlock() }

func (p *pace) sent() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.look()
}

func (p *pace) look() int64 {
	if p.count != nil && time.Since(p.at) >= lookEvery {
		if n, err := p.count(); err == nil {
			p.passed = n
		}
		p.at = time.Now()
	}
	return p.passed
}

// ok says whether the link may pass more now.
func (p *pace) ok() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.freed || p.count == nil || (!p.from.IsZero() && float64(p.look()) < time.Since(p.from).Seconds()*p.rate)
}

// delay is how long a reply is held back now.
func (p *pace) delay() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.freed {
		return 0
	}
	return p.lag
}

// metric is component's attr in p's /metrics now.
func metric(p *Proc, component, attr string) (int64, error) {
	m, err := p.Metrics(context.Background())
	if err != nil {
		return 0, err
	}
	return m.Int(component, attr), nil
}

// pacedLink listens on 127.0.0.1 and relays each connection to target,
// holding what the client sends while go is false (what target sends back
// is held only for the pace's lag). It returns the port it listens on. A connection ends when
// either side closes it; the listener closes with the test.
func pacedLink(t *testing.T, target string, pc *pace) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		track = func(c net.Conn) bool {
			mu.Lock()
			defer mu.Unlock()
			if conns == nil {
				c.Close()
				return false
			}
			conns[c] = true
			return true
		}
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		conns = nil
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			if !track(client) {
				return
			}
			wg.Go(func() {
				defer client.Close()
				server, err := net.Dial("tcp", target)
				if err != nil || !track(server) {
					return
				}
				relayPaced(client, server, pc)
			})
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// relayPaced copies between client and server until either side ends, then
// closes both, as a broken link does.
func relayPaced(client, server net.Conn, pc *pace) {
	defer client.Close()
	defer server.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer server.Close()
		buf := make([]byte, 4096)
		for {
			n, err := client.Read(buf)
			for n > 0 && !pc.ok() {
				// Pacing, not waiting on a result: the link is slow.
				time.Sleep(5 * time.Millisecond)
			}
			if n > 0 {
				if _, werr := server.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 4096)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			time.Sleep(pc.delay()) // the link's latency
			if _, werr := client.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	client.Close()
	<-done
}
