package channel_test

// The Kafka channel against kfake (3 brokers, topics replicated 3 times).
// It runs the channeltest suite on a topic of one partition (Kafka orders a
// partition, not a topic), except the cases whose semantics a Kafka channel
// does not have, each listed in notKafka with why. Its own cases: events
// survive a close and reopen through the group's committed offsets; a take
// commit commits offsets only up to the first event not yet committed; a
// rebalance loses nothing.

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/channel/channeltest"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/kafkatest"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// notKafka are the suite's cases that do not apply, by the start of their
// name, and why.
var notKafka = map[string]string{
	"limits/a_full_channel":                      "no capacity: the topic's retention bounds a Kafka channel",
	"limits/events_taken_but_not":                "no capacity",
	"limits/a_put_waiting_for_space":             "no capacity: a put never waits for space",
	"limits/a_full_error_says_why":               "no capacity: ErrFull is never returned",
	"limits/take_on_an_empty_channel":            "an empty take waits pollTimeout on the wall clock: Kafka's poll takes no fake clock",
	"close/Close_wakes_a_put_waiting":            "a put never waits for space",
	"stats/a_new_channel_reports":                "no capacity or size: the topic holds the events, shared by the group",
	"stats/Flume's_metrics_render":               "no capacity or size to render",
	"transactions/CommitAll_commits_several":     "it asserts Size; CommitAll is one Commit per take here, covered by the case after it",
	"stats/counters_follow_Flume":                "no size (the attempt and success counters are Flume's; Size is the topic's)",
	"stats/OldestAge_is_how_long":                "not known: the queue is the topic, and its oldest event is at the group's committed offsets (a consumer-lag exporter's measure)",
	"durability/committed_events_survive_reopen": "no size: the events are counted by the topic, not the channel (their survival is checked by the other durability cases)",
}
var kafkaTopics atomic.Int64

func newKafkaChannel(t *testing.T, c *kfake.Cluster, topic, group string, txCap int) *channel.Kafka {
	t.Helper()
	ch, err := channel.OpenKafka("c1", channel.KafkaOptions{
		Brokers: c.ListenAddrs(), Topic: topic, Group: group, ParseAsFlumeEvent: true,
		PollTimeout: time.Second, DefaultPartition: -1, TransactionCapacity: txCap,
		Producer: []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(4 << 20)},
		Consumer: []kgo.Opt{kgo.FetchMaxWait(50 * time.Millisecond), kgo.FetchMaxPartitionBytes(8 << 20)},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestKafkaChannelConformance(t *testing.T) {
	// The suite's largest body is 1 MiB, past a broker's default
	// message.max.bytes: the cluster takes 4 MiB, as a site sending such
	// events configures it.
	c, err := kfake.NewCluster(kfake.NumBrokers(kafkatest.Brokers), kfake.BrokerConfigs(map[string]string{"message.max.bytes": "4194304"}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type handle struct{ topic, group string }
	opened := map[*channel.Kafka]handle{}
	txCap := map[*channel.Kafka]int{}
	channeltest.Run(t, channeltest.Factory{
		New: func(t *testing.T, o channeltest.Options) channel.Channel {
			name := strings.TrimPrefix(t.Name(), "TestKafkaChannelConformance/")
			for prefix, why := range notKafka {
				if strings.HasPrefix(name, prefix) && why != "" {
					t.Skip(why)
				}
			}
			n := kafkaTopics.Add(1)
			topic, group := fmt.Sprintf("c%d", n), fmt.Sprintf("g%d", n)
			kafkatest.CreateTopics(t, c, 1, topic)
			ch := newKafkaChannel(t, c, topic, group, o.TransactionCapacity)
			opened[ch] = handle{topic, group}
			txCap[ch] = o.TransactionCapacity
			return ch
		},
		Reopen: func(t *testing.T, ch channel.Channel) channel.Channel {
			k := ch.(*channel.Kafka)
			h := opened[k]
			_ = k.Close()
			nk := newKafkaChannel(t, c, h.topic, h.group, txCap[k])
			opened[nk] = h
			txCap[nk] = txCap[k]
			return nk
		},
	})
}

// TestKafkaChannelDeliversAcrossPartitionsAndAReopen puts keyed events over
// 6 partitions, takes half, reopens, and takes the rest: every event once,
// in order per key.
func TestKafkaChannelDeliversAcrossPartitionsAndAReopen(t *testing.T) {
	c := kafkatest.Cluster(t, 6, "ch")
	ch := newKafkaChannel(t, c, "ch", "g", 1000)
	const n, keys = 2000, 8
	for i := 0; i < n; i += 500 {
		txn := ch.Begin()
		for j := i; j < i+500; j++ {
			k := fmt.Sprintf("k%d", j%keys)
			if err := txn.Put(channel.Event{Headers: map[string]string{"key": k}, Body: fmt.Appendf(nil, "%s/%d", k, j)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	last := map[string]int{}
	takeSome := func(ch *channel.Kafka, want int) {
		for len(seen) < want {
			txn := ch.Begin()
			evs, err := txn.Take(100)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				var seq int
				k, _, _ := strings.Cut(string(e.Body), "/")
				fmt.Sscanf(string(e.Body), k+"/%d", &seq)
				if seen[string(e.Body)] {
					t.Fatalf("%s taken twice", e.Body)
				}
				if l, ok := last[k]; ok && seq < l {
					t.Fatalf("key %s: %d after %d", k, seq, l)
				}
				seen[string(e.Body)], last[k] = true, seq
			}
			if err := txn.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	takeSome(ch, n/2)
	_ = ch.Close()
	ch = newKafkaChannel(t, c, "ch", "g", 1000)
	defer ch.Close()
	takeSome(ch, n)
}

// TestKafkaChannelRollbackReturnsEventsToTheHeadAndAReopenRedeliversUncommitted:
// a take rolled back comes back first; a take left open when the channel
// closes comes back after a reopen (its offsets were never committed).
func TestKafkaChannelUncommittedTakesComeBackAfterAReopen(t *testing.T) {
	c := kafkatest.Cluster(t, 1, "ch")
	ch := newKafkaChannel(t, c, "ch", "g", 100)
	txn := ch.Begin()
	for i := range 10 {
		_ = txn.Put(channel.Event{Body: fmt.Appendf(nil, "e%d", i)})
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	take := func(ch channel.Channel, n int) ([]string, channel.Txn) {
		txn := ch.Begin()
		var got []string
		for len(got) < n {
			evs, err := txn.Take(n - len(got))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				got = append(got, string(e.Body))
			}
		}
		return got, txn
	}
	got, t1 := take(ch, 3)
	if err := t1.Commit(); err != nil || strings.Join(got, ",") != "e0,e1,e2" {
		t.Fatalf("first take %v %v", got, err)
	}
	got, t2 := take(ch, 3)
	if err := t2.Rollback(); err != nil || strings.Join(got, ",") != "e3,e4,e5" {
		t.Fatalf("second take %v %v", got, err)
	}
	got, _ = take(ch, 4) // left open: the channel closes under it
	if strings.Join(got, ",") != "e3,e4,e5,e6" {
		t.Fatalf("a rolled back take did not come back first: %v", got)
	}
	_ = ch.Close()
	ch2 := newKafkaChannel(t, c, "ch", "g", 100)
	defer ch2.Close()
	got, t3 := take(ch2, 7)
	if err := t3.Commit(); err != nil || strings.Join(got, ",") != "e3,e4,e5,e6,e7,e8,e9" {
		t.Fatalf("after reopen %v %v", got, err)
	}
}

// TestKafkaChannelARebalanceLosesNothing: two channels share a group over 6
// partitions; one takes and closes mid-stream with a take open. Every event
// is taken and committed by one of them; only the open take may repeat.
func TestKafkaChannelARebalanceLosesNothing(t *testing.T) {
	c := kafkatest.Cluster(t, 6, "ch")
	a := newKafkaChannel(t, c, "ch", "g", 1000)
	const n = 3000
	txn := a.Begin()
	for i := range n {
		if i > 0 && i%1000 == 0 {
			if err := txn.Commit(); err != nil {
				t.Fatal(err)
			}
			txn = a.Begin()
		}
		_ = txn.Put(channel.Event{Headers: map[string]string{"key": fmt.Sprint(i % 12)}, Body: fmt.Appendf(nil, "%d", i)})
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	takeCommit := func(ch channel.Channel) int {
		txn := ch.Begin()
		evs, err := txn.Take(50)
		if err != nil {
			t.Fatal(err)
		}
		if err := txn.Commit(); err != nil {
			_ = err // a commit refused by a rebalance rolls back: the events come again
			return 0
		}
		for _, e := range evs {
			seen[string(e.Body)]++
		}
		return len(evs)
	}
	for range 10 {
		takeCommit(a)
	}
	b := newKafkaChannel(t, c, "ch", "g", 1000) // joins: the group rebalances
	defer b.Close()
	for range 5 {
		takeCommit(a)
		takeCommit(b)
	}
	open := a.Begin()
	if _, err := open.Take(50); err != nil {
		t.Fatal(err)
	}
	_ = a.Close() // leaves with a take open
	deadline := time.Now().Add(60 * time.Second)
	for len(seen) < n && time.Now().Before(deadline) {
		takeCommit(b)
	}
	dups := 0
	for i := range n {
		switch c := seen[fmt.Sprint(i)]; {
		case c == 0:
			t.Fatalf("event %d lost (%d of %d taken)", i, len(seen), n)
		case c > 1:
			dups += c - 1
		}
	}
	// Only the take left open when a closed may come again: its offsets
	// were never committed.
	if dups > 50 {
		t.Fatalf("%d events taken twice; at most the open take's 50 may be", dups)
	}
}

func TestKafkaChannelConfiguration(t *testing.T) {
	for _, tc := range []struct {
		kv   map[string]string
		want string // "" for none
	}{
		{map[string]string{"kafka.topic": "t", "kafka.consumer.group.id": "g", "parseAsFlumeEvent": "false"}, ""},
		{map[string]string{"kafka.consumer.enable.auto.commit": "true"}, "true is refused"},
		{map[string]string{"kafka.consumer.sesion.timeout.ms": "1"}, "did you mean kafka.consumer.session.timeout.ms?"},
		{map[string]string{"kafka.producer.acks": "0"}, "0 is refused"},
	} {
		kv := map[string]string{"kafka.bootstrap.servers": "127.0.0.1:1"}
		for k, v := range tc.kv {
			kv[k] = v
		}
		c := config.FromMap("a1.channels.c1.", kv)
		f, ok := channel.Lookup("org.apache.flume.channel.kafka.KafkaChannel")
		if !ok {
			t.Fatal("the Kafka channel class is not registered")
		}
		_, err := f("c1", c)
		perr := c.Problems().Err()
		if tc.want == "" && (err != nil || perr != nil) {
			t.Errorf("%v: %v %v", tc.kv, err, perr)
		}
		if tc.want != "" && (perr == nil || !strings.Contains(perr.Error(), tc.want)) {
			t.Errorf("%v: %v, want %q", tc.kv, perr, tc.want)
		}
	}
}
