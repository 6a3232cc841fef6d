package e2e

// A flumed agent with a file channel and a Kafka sink, SIGKILLed 5 times
// mid-stream, writes every event to the topic, in order per partition. The
// Kafka cluster is kfake (3 brokers, a topic of 6 partitions replicated 3
// times) run by this test process on loopback ports; the agents are real
// flumed processes. A sender agent (seq → memory → avro, one batch at a
// time, so the middle's channel holds the events in order) feeds the middle
// agent (avro → file channel → kafka), whose avro source sets each event's
// key header to the last digit of its number: ten keys, each in one
// partition, so order is checked per key.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/kafkatest"
	"github.com/flumed/flumed/sink"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestKafkaSinkAgentKilledFiveTimesLosesNothing(t *testing.T) {
	const (
		total       = 500_000
		kills       = 5
		senderBatch = 100
		kafkaBatch  = 100
	)
	kc := kafkatest.Cluster(t, 6, "t")
	c := newCluster(t)
	p := c.ports(3) // middle; two metrics servers
	middlePort := p[0]

	middleConf := c.config("middle.properties",
		"a1.sources = r1",
		"a1.channels = c1",
		"a1.sinks = k1",
		"a1.sources.r1.type = avro",
		"a1.sources.r1.bind = 127.0.0.1",
		fmt.Sprintf("a1.sources.r1.port = %d", middlePort),
		"a1.sources.r1.channels = c1",
		"a1.sources.r1.interceptors = i1",
		"a1.sources.r1.interceptors.i1.type = regex_extractor",
		`a1.sources.r1.interceptors.i1.regex = (\\d)$`,
		"a1.sources.r1.interceptors.i1.serializers = s1",
		"a1.sources.r1.interceptors.i1.serializers.s1.name = key",
		fileChannel("c1", c.path("middle")),
		"a1.sinks.k1.type = kafka",
		"a1.sinks.k1.channel = c1",
		"a1.sinks.k1.kafka.bootstrap.servers = "+strings.Join(kc.ListenAddrs(), ","),
		"a1.sinks.k1.kafka.topic = t",
		fmt.Sprintf("a1.sinks.k1.flumeBatchSize = %d", kafkaBatch),
	)
	senderConf := c.seqSender(total, senderBatch, middlePort, "a1.sinks.k1.pipeline-depth = 1" /* the middle's channel gets the events in order */)
	middle := c.proc(ProcOptions{Name: "middle", Configs: []string{middleConf}, MetricsPort: p[1], ReadyPort: middlePort})
	sender := c.proc(ProcOptions{Name: "sender", Configs: []string{senderConf}, MetricsPort: p[2]})
	c.start(middle)
	c.start(sender)

	topic := newTopicReader(t, kc.ListenAddrs(), "t")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 14))
	for k := 1; k <= kills; k++ {
		before := topic.distinct()
		await.True(t, fmt.Sprintf("kill %d: this run of the middle writes to Kafka", k), throttle(lookEvery, func() bool {
			topic.poll()
			return topic.distinct() > before
		}))
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond) // the random moment of the kill, not a wait
		if topic.distinct() >= total {
			t.Fatalf("kill %d: every event was in the topic before it; raise total", k)
		}
		c.kill(middle)
		t.Logf("kill %d: the topic held %d distinct events", k, topic.distinct())
		c.start(middle)
	}
	waitMoving(t, "every event in the topic", total, func() int { topic.poll(); return topic.distinct() })

	window := sink.Window(16) // the Kafka sink's default pipelineDepth
	bound := kills * window * kafkaBatch
	t.Logf("%d records for %d events: %d duplicates (bound %d)", topic.records, total, topic.records-total, bound)
	if topic.records-total > bound {
		t.Errorf("%d duplicates, more than %d kills × %d batches of %d", topic.records-total, kills, window, kafkaBatch)
	}
	if len(topic.outOfOrder) > 0 {
		t.Errorf("events out of order in their partition: %v", topic.outOfOrder[:min(10, len(topic.outOfOrder))])
	}
	for i := range total {
		if !topic.seen[i] {
			t.Fatalf("event %d is not in the topic", i)
		}
	}
}

// topicReader reads a topic from its start and checks, per key, that each
// event's first copy comes after the first copies of the events before it.
type topicReader struct {
	cl         *kgo.Client
	seen       map[int]bool
	last       map[string]int
	part       map[string]int32
	records    int
	outOfOrder []string
}

func newTopicReader(t *testing.T, addrs []string, topic string) *topicReader {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &topicReader{cl: cl, seen: map[int]bool{}, last: map[string]int{}, part: map[string]int32{}}
}

func (r *topicReader) distinct() int { return len(r.seen) }

func (r *topicReader) poll() {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r.cl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) {
		r.records++
		n, err := strconv.Atoi(string(rec.Value))
		if err != nil {
			r.outOfOrder = append(r.outOfOrder, "not a number: "+string(rec.Value))
			return
		}
		k := string(rec.Key)
		if p, ok := r.part[k]; ok && p != rec.Partition {
			r.outOfOrder = append(r.outOfOrder, fmt.Sprintf("key %s in partitions %d and %d", k, p, rec.Partition))
		}
		r.part[k] = rec.Partition
		if r.seen[n] {
			return // a repeat of work in flight at a kill
		}
		r.seen[n] = true
		if l, ok := r.last[k]; ok && n < l {
			r.outOfOrder = append(r.outOfOrder, fmt.Sprintf("key %s: %d after %d", k, n, l))
		}
		r.last[k] = n
	})
}

// A Kafka source → file channel → file_roll agent, SIGKILLed 5 times while
// this test produces to the topic: every event reaches the file, and the
// repeats stay within what was in flight at each kill (the source's batch
// not yet committed to the channel, the sink's window).
func TestKafkaSourceAgentKilledFiveTimesLosesNothing(t *testing.T) {
	const (
		total       = 300_000
		kills       = 5
		sourceBatch = 500
		rollBatch   = 1000
	)
	kc := kafkatest.Cluster(t, 6, "t")
	c := newCluster(t)
	p := c.ports(1)
	conf := c.config("agent.properties",
		"a1.sources = r1",
		"a1.channels = c1",
		"a1.sinks = k1",
		"a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource",
		"a1.sources.r1.channels = c1",
		"a1.sources.r1.kafka.bootstrap.servers = "+strings.Join(kc.ListenAddrs(), ","),
		"a1.sources.r1.kafka.topics = t",
		"a1.sources.r1.kafka.consumer.group.id = flumed",
		"a1.sources.r1.kafka.consumer.auto.offset.reset = earliest",
		"a1.sources.r1.kafka.consumer.session.timeout.ms = 6000",
		// A restarted agent is the same member: it takes its partitions back
		// without waiting for the killed one's session to expire.
		"a1.sources.r1.kafka.consumer.group.instance.id = agent-1",
		"a1.sources.r1.kafka.consumer.max.poll.interval.ms = 10000",
		fmt.Sprintf("a1.sources.r1.batchSize = %d", sourceBatch),
		"a1.sources.r1.batchDurationMillis = 100",
		fileChannel("c1", c.path("agent")),
		"a1.sinks.k1.type = file_roll",
		"a1.sinks.k1.channel = c1",
		"a1.sinks.k1.sink.directory = "+c.path("agent", "out"),
		"a1.sinks.k1.sink.rollInterval = 0",
		fmt.Sprintf("a1.sinks.k1.sink.batchSize = %d", rollBatch),
	)
	agent := c.proc(ProcOptions{Name: "agent", Configs: []string{conf}, MetricsPort: p[0]})
	c.start(agent)

	// The producer writes the events in batches while the agent is killed.
	prod := kafkatest.Client(t, kc, kgo.DefaultProduceTopic("t"), kgo.ProducerLinger(0))
	ctx, cancel := context.WithCancel(context.Background())
	produced := make(chan error, 1)
	killed := make(chan struct{}) // closed after the last kill
	go func() {
		for i := 0; i < total; i += 100 {
			rs := make([]*kgo.Record, 0, 100)
			for j := i; j < i+100; j++ {
				rs = append(rs, &kgo.Record{Key: []byte(strconv.Itoa(j % 10)), Value: []byte(strconv.Itoa(j))})
			}
			if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				produced <- err
				return
			}
			// Paced to at most 10k events/s until the last kill: the stream
			// must outlast the kills on a fast machine too (30 s of it).
			select {
			case <-killed:
			default:
				time.Sleep(10 * time.Millisecond)
			}
		}
		produced <- nil
	}()
	defer cancel()

	l := NewLedger()
	r := &RollReader{Dir: c.path("agent", "out"), Collector: "out", Ledger: l, Parse: ParseDecimal}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 15))
	for k := 1; k <= kills; k++ {
		before := l.Distinct()
		await.True(t, fmt.Sprintf("kill %d: this run of the agent writes events", k), throttle(lookEvery, func() bool {
			_ = r.Poll()
			return l.Distinct() > before
		}))
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond) // the random moment of the kill, not a wait
		_ = r.Poll()
		if l.Distinct() >= total {
			t.Fatalf("kill %d: every event was written before it; raise total", k)
		}
		c.kill(agent)
		t.Logf("kill %d: the file held %d distinct events", k, l.Distinct())
		c.start(agent)
	}
	close(killed)
	if err := await.Recv(t, "the producer to finish", produced); err != nil {
		t.Fatal(err)
	}
	waitMoving(t, "every event in the file", total, func() int { _ = r.Poll(); return l.Distinct() })
	c.idle(agent)
	if err := r.Poll(); err != nil {
		t.Fatal(err)
	}
	got := l.Tally(0, total-1)
	bound := kills * (sourceBatch + sink.Window(sink.DefaultPipelineDepth)*rollBatch)
	t.Logf("tally: %s", got)
	if len(got.Missing) != 0 || got.Foreign != 0 || got.Duplicates > bound {
		t.Errorf("want nothing missing or foreign and at most %d duplicates: %s", bound, got)
	}
}
