package source

// The Kafka source against kfake (3 brokers, a topic of 6 partitions
// replicated 3 times). The contract: every record becomes one event with
// Flume's headers (topic, partition, offset, timestamp, key); the group's
// offsets are committed only after the channel transaction committed, so a
// batch the channel refuses is neither lost nor skipped; a rebalance in the
// middle of a stream loses nothing and repeats at most the batch not yet
// committed; migrateZookeeperOffsets is refused.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// collector is a BatchPutter that keeps what it accepted, refusing while
// refuse is set.
type collector struct {
	mu     sync.Mutex
	got    []channel.Event
	refuse bool
	calls  int
}

func (c *collector) PutBatch(events []channel.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.refuse {
		return fmt.Errorf("test: %w", channel.ErrFull)
	}
	c.got = append(c.got, events...)
	return nil
}

func (c *collector) events() []channel.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]channel.Event(nil), c.got...)
}

func produceKeyed(t *testing.T, c *kfake.Cluster, topic string, from, to int) {
	t.Helper()
	cl := kafkatest.Client(t, c, kgo.DefaultProduceTopic(topic))
	var rs []*kgo.Record
	for i := from; i < to; i++ {
		rs = append(rs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%12), Value: fmt.Appendf(nil, "%d", i)})
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func newTestKafkaSource(c *kfake.Cluster, group string) *Kafka {
	return NewKafka("r1", KafkaOptions{Brokers: c.ListenAddrs(), Topics: []string{"t"}, Group: group,
		BatchSize: 100, BatchDuration: 100 * time.Millisecond, SetTopicHeader: true, TopicHeader: "topic",
		Consumer: []kgo.Opt{kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50 * time.Millisecond)}}, nil)
}

// runUntil calls Poll until done holds.
func runUntil(t *testing.T, s *Kafka, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		if _, err := s.Poll(context.Background()); err != nil {
			t.Logf("Poll: %v", err)
		}
	}
}

func committed(t *testing.T, c *kfake.Cluster, group string) int64 {
	t.Helper()
	adm := kadm.NewClient(kafkatest.Client(t, c))
	offs, err := adm.FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) { n += o.At })
	return n
}

func TestKafkaSourcePutsEveryRecordOnceWithFlumesHeaders(t *testing.T) {
	c := kafkatest.Cluster(t, 6, "t")
	const n = 1500
	produceKeyed(t, c, "t", 0, n)
	s := newTestKafkaSource(c, "g")
	col := &collector{}
	if err := s.Start(context.Background(), col); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	runUntil(t, s, func() bool { return len(col.events()) >= n })
	seen := map[string]bool{}
	for _, e := range col.events() {
		if seen[string(e.Body)] {
			t.Fatalf("%s twice", e.Body)
		}
		seen[string(e.Body)] = true
		h := e.Headers
		if h["topic"] != "t" || h["partition"] == "" || h["offset"] == "" || h["timestamp"] == "" || !strings.HasPrefix(h["key"], "k") {
			t.Fatalf("headers %v", h)
		}
	}
	if got := committed(t, c, "g"); got != n {
		t.Fatalf("committed offsets sum to %d, want %d", got, n)
	}
}

func TestKafkaSourceCommitsOffsetsOnlyAfterTheChannelCommitted(t *testing.T) {
	c := kafkatest.Cluster(t, 6, "t")
	const n = 300
	produceKeyed(t, c, "t", 0, n)
	s := newTestKafkaSource(c, "g")
	col := &collector{refuse: true}
	if err := s.Start(context.Background(), col); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	runUntil(t, s, func() bool { col.mu.Lock(); defer col.mu.Unlock(); return col.calls >= 3 })
	if got := committed(t, c, "g"); got != 0 {
		t.Fatalf("offsets committed (%d) while the channel refused every batch", got)
	}
	col.mu.Lock()
	col.refuse = false
	col.mu.Unlock()
	runUntil(t, s, func() bool { return len(col.events()) >= n })
	seen := map[string]bool{}
	for _, e := range col.events() {
		if seen[string(e.Body)] {
			t.Fatalf("%s twice", e.Body)
		}
		seen[string(e.Body)] = true
	}
}

// A second member joins mid-stream, and the first leaves with a batch the
// channel refused: nothing is lost, and only that batch comes twice at most.
func TestKafkaSourceRebalanceLosesNothing(t *testing.T) {
	c := kafkatest.Cluster(t, 6, "t")
	const n = 3000
	produceKeyed(t, c, "t", 0, n)
	colA, colB := &collector{}, &collector{}
	a, b := newTestKafkaSource(c, "g"), newTestKafkaSource(c, "g")
	if err := a.Start(context.Background(), colA); err != nil {
		t.Fatal(err)
	}
	runUntil(t, a, func() bool { return len(colA.events()) >= 500 })
	if err := b.Start(context.Background(), colB); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	// Both run while the group rebalances.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_, _ = b.Poll(context.Background())
			}
		}
	}()
	runUntil(t, a, func() bool { return len(colA.events()) >= 1000 })
	colA.mu.Lock()
	colA.refuse = true
	colA.mu.Unlock()
	runUntil(t, a, func() bool { return len(a.pending) > 0 })
	_ = a.Stop() // leaves with a batch put and refused
	await.True(t, "the second member reads the rest", func() bool {
		seen := map[string]bool{}
		for _, e := range append(colA.events(), colB.events()...) {
			seen[string(e.Body)] = true
		}
		return len(seen) >= n
	})
	close(stop)
	wg.Wait()
	count := map[string]int{}
	for _, e := range append(colA.events(), colB.events()...) {
		count[string(e.Body)]++
	}
	dups := 0
	for i := range n {
		switch k := count[fmt.Sprint(i)]; {
		case k == 0:
			t.Fatalf("event %d lost", i)
		case k > 1:
			dups += k - 1
		}
	}
	if dups > 100 {
		t.Fatalf("%d events came twice; at most the uncommitted batch (100) may", dups)
	}
}

func TestKafkaSourceConfiguration(t *testing.T) {
	for _, tc := range []struct {
		kv   map[string]string
		want string
	}{
		{map[string]string{"kafka.topics": "a,b", "kafka.consumer.group.id": "g"}, ""},
		{map[string]string{"kafka.topics": "a", "migrateZookeeperOffsets": "true"}, "migrateZookeeperOffsets: true is refused"},
		{map[string]string{"kafka.topics": "a", "kafka.consumer.enable.auto.commit": "true"}, "true is refused"},
		{map[string]string{}, "set exactly one of kafka.topics and kafka.topics.regex"},
	} {
		kv := map[string]string{"kafka.bootstrap.servers": "127.0.0.1:1"}
		for k, v := range tc.kv {
			kv[k] = v
		}
		c := config.FromMap("a1.sources.r1.", kv)
		c.Check(kafkaSourceType)
		_, err := newKafkaSource("r1", c, nil)
		perr := c.Problems().Err()
		if tc.want == "" && (err != nil || perr != nil) {
			t.Errorf("%v: %v %v", tc.kv, err, perr)
		}
		if tc.want != "" && (perr == nil || !strings.Contains(perr.Error(), tc.want)) {
			t.Errorf("%v: %v, want %q", tc.kv, perr, tc.want)
		}
	}
	c := config.FromMap("a1.sources.r1.", map[string]string{"kafka.bootstrap.servers": "x:1", "kafka.topics": "a", "kafka.consumer.max.pol.records": "5"})
	c.Check(kafkaSourceType)
	if err := c.Problems().Err(); err == nil || !strings.Contains(err.Error(), "did you mean kafka.consumer.max.poll.records?") {
		t.Errorf("a misspelt consumer property: %v", err)
	}
}
