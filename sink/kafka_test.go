package sink

// The Kafka sink against kfake (3 brokers, topics replicated 3 times over 6
// partitions). The contract: a take commits only once Kafka acknowledged
// every record of its batch, so 0 acknowledged events are lost whatever the
// brokers do; events with one key stay in order in their partition; the
// idempotent producer writes no record twice within a session, so retried
// faults (NOT_LEADER, timeouts, leader moves, a broker removed) leave every
// event exactly once; a broker error past retries rolls back every
// uncommitted batch and is returned, which is what drives a failover
// processor.

import (
	"context"
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/avrorpc"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/kafkatest"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

const kafkaKeys = 12

// keyedEvents are n events whose "key" header is k<i mod keys> and whose
// body is "<key>/<i>".
func keyedEvents(n int) []channel.Event {
	out := make([]channel.Event, n)
	for i := range out {
		k := fmt.Sprintf("k%d", i%kafkaKeys)
		out[i] = channel.Event{Headers: map[string]string{"key": k}, Body: fmt.Appendf(nil, "%s/%d", k, i)}
	}
	return out
}

func memoryWith(t *testing.T, events []channel.Event) *channel.Memory {
	t.Helper()
	ch := channel.NewMemory("c1", channel.MemoryOptions{Capacity: 100000, TransactionCapacity: 1000})
	t.Cleanup(func() { _ = ch.Close() })
	for i := 0; i < len(events); i += 1000 {
		txn := ch.Begin()
		if err := txn.Put(events[i:min(i+1000, len(events))]...); err != nil {
			t.Fatal(err)
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return ch
}

func newTestKafka(c *kfake.Cluster, topic string, mod func(*KafkaOptions)) *Kafka {
	o := KafkaOptions{Brokers: c.ListenAddrs(), Topic: topic, BatchSize: 100, DefaultPartition: -1,
		Client: []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RetryBackoffFn(func(int) time.Duration { return time.Millisecond })}}
	if mod != nil {
		mod(&o)
	}
	return NewKafka("k1", o, nil)
}

// drainKafka runs s until ch is empty, calling between(i) before the i-th
// Process. It fails the test on a Process error.
func drainKafka(t *testing.T, s *Kafka, ch channel.Channel, between func(i int)) {
	t.Helper()
	if err := s.Start(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; ; i++ {
		if between != nil {
			between(i)
		}
		st, err := s.Process(ctx)
		if err != nil {
			t.Fatalf("Process %d: %v", i, err)
		}
		if st == Backoff && ch.Stats().Size == 0 {
			return
		}
	}
}

// checkKeyed checks that records hold every one of n keyed events, each
// key in one partition in the order put; exact also wants each once.
func checkKeyed(t *testing.T, recs []*kgo.Record, n int, exact bool) {
	t.Helper()
	seen := make(map[int]int)
	last := make(map[string]int)
	part := make(map[string]int32)
	dups := 0
	for _, r := range recs {
		k, seqText, _ := strings.Cut(string(r.Value), "/")
		seq, err := strconv.Atoi(seqText)
		if err != nil || string(r.Key) != k {
			t.Fatalf("record %q key %q", r.Value, r.Key)
		}
		if p, ok := part[k]; ok && p != r.Partition {
			t.Fatalf("key %s in partitions %d and %d", k, p, r.Partition)
		}
		part[k] = r.Partition
		seen[seq]++
		if seen[seq] > 1 {
			dups++
			continue // a duplicate from rolled-back work: its first copy was in order
		}
		if l, ok := last[k]; ok && seq < l {
			t.Fatalf("key %s: %d after %d", k, seq, l)
		}
		last[k] = seq
	}
	for i := range n {
		if seen[i] == 0 {
			t.Fatalf("event %d lost (%d records read)", i, len(recs))
		}
	}
	if exact && dups > 0 {
		t.Fatalf("%d duplicates", dups)
	}
}

func TestKafkaSinkDeliversEveryEventOnceInOrderPerKey(t *testing.T) {
	c := kafkatest.Cluster(t, 6, "t")
	const n = 3000
	ch := memoryWith(t, keyedEvents(n))
	drainKafka(t, newTestKafka(c, "t", nil), ch, nil)
	checkKeyed(t, kafkatest.ReadAll(t, c, "t", n), n, true)
	if got := kafkatest.Count(t, c, "t"); got != n {
		t.Fatalf("topic holds %d records, want %d", got, n)
	}
}

// TestKafkaSinkSurvivesBrokerFaults: each fault is one Kafka retries past,
// so the sink never fails, and the idempotent producer writes each record
// once.
func TestKafkaSinkSurvivesBrokerFaults(t *testing.T) {
	const n = 2000
	for _, tc := range []struct {
		name  string
		fault func(t *testing.T, c *kfake.Cluster) func(i int)
	}{
		{"NOT_LEADER_FOR_PARTITION answers are retried", func(t *testing.T, c *kfake.Cluster) func(int) {
			left := 6
			t.Cleanup(func() {
				if left != 0 {
					t.Errorf("%d NOT_LEADER answers left unsent", left)
				}
			})
			c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				if left == 0 {
					return nil, nil, false
				}
				left--
				c.KeepControl()
				return produceError(req.(*kmsg.ProduceRequest), kerr.NotLeaderForPartition), nil, true
			})
			return nil
		}},
		{"requests that time out after writing are not written twice", func(t *testing.T, c *kfake.Cluster) func(int) {
			h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut, Count: 5})
			t.Cleanup(func() {
				if h.Hits() == 0 {
					t.Error("no produce request timed out")
				}
			})
			return nil
		}},
		{"leaders move mid-stream", func(t *testing.T, c *kfake.Cluster) func(int) {
			return func(i int) {
				if i%5 == 4 {
					c.ShufflePartitionLeaders()
				}
			}
		}},
		{"a broker is removed mid-stream", func(t *testing.T, c *kfake.Cluster) func(int) {
			return func(i int) {
				if i == 5 {
					if err := c.RemoveNode(c.LeaderFor("t", 0)); err != nil {
						t.Fatal(err)
					}
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := kafkatest.Cluster(t, 6, "t")
			between := tc.fault(t, c)
			ch := memoryWith(t, keyedEvents(n))
			drainKafka(t, newTestKafka(c, "t", nil), ch, between)
			checkKeyed(t, kafkatest.ReadAll(t, c, "t", n), n, true)
		})
	}
}

// produceError answers every partition of req with code.
func produceError(req *kmsg.ProduceRequest, e *kerr.Error) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.TopicID = rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = e.Code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func TestKafkaSinkBrokerErrorRollsBackAndIsReturned(t *testing.T) {
	c := kafkatest.Cluster(t, 6, "t")
	const n = 1000
	ch := memoryWith(t, keyedEvents(n))
	s := newTestKafka(c, "t", nil)
	if err := s.Start(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.TopicAuthorizationFailed, Count: -1})
	ctx := context.Background()
	var err error
	for err == nil {
		_, err = s.Process(ctx)
	}
	if !strings.Contains(err.Error(), "TOPIC_AUTHORIZATION_FAILED") {
		t.Fatalf("Process = %v", err)
	}
	if got := ch.Stats().Size; got != n {
		t.Fatalf("channel holds %d events after the failure, want all %d back", got, n)
	}
	if got := s.counter.EventWriteFail.Load(); got != 1 {
		t.Fatalf("EventWriteFail = %d", got)
	}
	h.Remove()
	_ = s.Stop()
	drainKafka(t, newTestKafka(c, "t", nil), ch, nil)
	checkKeyed(t, kafkatest.ReadAll(t, c, "t", n), n, false)
}

// A failing Kafka sink in a failover group hands its events to the next sink.
func TestKafkaSinkFailureDrivesFailover(t *testing.T) {
	c := kafkatest.Cluster(t, 3, "t")
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.TopicAuthorizationFailed, Count: -1})
	ch := memoryWith(t, keyedEvents(500))
	backup := &countingSink{}
	p, err := NewFailover("g1", []Sink{newTestKafka(c, "t", nil), backup}, FailoverOptions{Priorities: map[string]int{"k1": 10, "counting": 5}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	drain(t, ch, p)
	if backup.events != 500 {
		t.Fatalf("the backup sink got %d events, want 500", backup.events)
	}
}

func TestKafkaSinkWritesFlumesAvroFlumeEvent(t *testing.T) {
	c := kafkatest.Cluster(t, 1, "t")
	ch := memoryWith(t, []channel.Event{{Headers: map[string]string{"a": "b"}, Body: []byte("hi")}})
	drainKafka(t, newTestKafka(c, "t", func(o *KafkaOptions) { o.UseFlumeEventFormat = true }), ch, nil)
	recs := kafkatest.ReadAll(t, c, "t", 1)
	// What Java's SpecificDatumWriter<AvroFlumeEvent> writes for
	// {headers: {a: b}, body: "hi"}: a map block of 1 entry (zigzag 2),
	// "a", "b", the end of the map, then the body's length (4) and bytes.
	want := []byte{0x02, 0x02, 'a', 0x02, 'b', 0x00, 0x04, 'h', 'i'}
	if string(recs[0].Value) != string(want) {
		t.Fatalf("value % x, want % x", recs[0].Value, want)
	}
	e, err := avrorpc.DecodeEvent(recs[0].Value, avrorpc.Limits{})
	if err != nil || e.Headers["a"] != "b" || string(e.Body) != "hi" {
		t.Fatalf("decoded %+v, %v", e, err)
	}
}

func TestKafkaSinkRoutesByHeaders(t *testing.T) {
	c := kafkatest.Cluster(t, 4, "t", "other", "t-x")
	ch := memoryWith(t, []channel.Event{
		{Headers: map[string]string{"topic": "other"}, Body: []byte("by topic header")},
		{Headers: map[string]string{"p": "3"}, Body: []byte("by partition header")},
		{Body: []byte("default partition")},
	})
	drainKafka(t, newTestKafka(c, "t", func(o *KafkaOptions) {
		o.AllowTopicOverride, o.TopicHeader = true, "topic"
		o.PartitionIDHeader, o.DefaultPartition = "p", 2
	}), ch, nil)
	if r := kafkatest.ReadAll(t, c, "other", 1)[0]; string(r.Value) != "by topic header" {
		t.Fatalf("other: %q", r.Value)
	}
	for _, r := range kafkatest.ReadAll(t, c, "t", 2) {
		want := map[string]int32{"by partition header": 3, "default partition": 2}[string(r.Value)]
		if r.Partition != want {
			t.Fatalf("%q in partition %d, want %d", r.Value, r.Partition, want)
		}
	}
	// kafka.topic's %{header} takes the event's header.
	ch = memoryWith(t, []channel.Event{{Headers: map[string]string{"kind": "x"}, Body: []byte("by template")}})
	drainKafka(t, newTestKafka(c, "t-%{kind}", nil), ch, nil)
	if r := kafkatest.ReadAll(t, c, "t-x", 1)[0]; string(r.Value) != "by template" {
		t.Fatalf("t-x: %q", r.Value)
	}
}

func TestKafkaSinkConfiguration(t *testing.T) {
	for _, tc := range []struct {
		name string
		kv   map[string]string
		want string // "" for no error
	}{
		{"the keys Flume documents are accepted", map[string]string{"kafka.topic": "t", "flumeBatchSize": "500",
			"kafka.producer.linger.ms": "5", "kafka.producer.compression.type": "lz4", "useFlumeEventFormat": "true"}, ""},
		{"a misspelt producer property gets a did-you-mean", map[string]string{"kafka.producer.lingr.ms": "5"},
			"did you mean kafka.producer.linger.ms?"},
		{"acks=0 is refused", map[string]string{"kafka.producer.acks": "0"}, "0 is refused"},
		{"SASL needs a login line", map[string]string{"kafka.producer.security.protocol": "SASL_PLAINTEXT"}, "sasl.jaas.config"},
		{"a bad defaultPartitionId is refused", map[string]string{"defaultPartitionId": "x"}, "not a partition number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := map[string]string{"kafka.bootstrap.servers": "127.0.0.1:1"}
			for k, v := range tc.kv {
				kv[k] = v
			}
			c := config.FromMap("a1.sinks.k1.", kv)
			f, _ := Lookup("kafka")
			s, err := f("k1", c, nil)
			perr := c.Problems().Err()
			if tc.want == "" {
				if err != nil || perr != nil {
					t.Fatalf("err %v, problems %v", err, perr)
				}
				if s.(*Kafka).BatchSize() != 500 {
					t.Fatalf("batch size %d", s.(*Kafka).BatchSize())
				}
				return
			}
			if perr == nil || !strings.Contains(perr.Error(), tc.want) {
				t.Fatalf("problems %v, want %q", perr, tc.want)
			}
		})
	}
}

func TestKafkaSinkAuthenticatesWithSCRAM(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, "t"),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "flume", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kv := map[string]string{
		"kafka.bootstrap.servers":          strings.Join(c.ListenAddrs(), ","),
		"kafka.topic":                      "t",
		"kafka.producer.security.protocol": "SASL_PLAINTEXT",
		"kafka.producer.sasl.mechanism":    "SCRAM-SHA-256",
		"kafka.producer.sasl.jaas.config":  `org.apache.kafka.common.security.scram.ScramLoginModule required username="flume" password="s3cret";`,
	}
	cfg := config.FromMap("a1.sinks.k1.", kv)
	f, _ := Lookup("kafka")
	s, err := f("k1", cfg, nil)
	if err != nil {
		t.Fatal(err, cfg.Problems().Err())
	}
	ch := memoryWith(t, keyedEvents(100))
	drainKafka(t, s.(*Kafka), ch, nil)
	auth := kgo.SASL(scram.Auth{User: "flume", Pass: "s3cret"}.AsSha256Mechanism())
	if got := len(kafkatest.ReadAll(t, c, "t", 100, auth)); got != 100 {
		t.Fatalf("topic holds %d", got)
	}
}

// countingSink takes batches and counts their events.
type countingSink struct {
	eng    *Engine
	events int
}

func (s *countingSink) Name() string { return "counting" }
func (s *countingSink) Start(_ context.Context, ch channel.Channel) error {
	s.eng = NewEngine(EngineOptions{Sink: "counting", Channel: ch, BatchSize: 100, Depth: 1},
		DeliverFunc(func(_ context.Context, es []channel.Event) error { s.events += len(es); return nil }))
	return nil
}
func (s *countingSink) Process(ctx context.Context) (Status, error) { return s.eng.Process(ctx) }
func (s *countingSink) Stop() error                                 { return s.eng.Settle(context.Background()) }

func TestKafkaSinkSpeaksSASLPlainOverTLS(t *testing.T) {
	srv, caPath := kafkatest.TLS(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, "t"), kfake.TLS(srv),
		kfake.EnableSASL(), kfake.Superuser("PLAIN", "flume", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := config.FromMap("a1.sinks.k1.", map[string]string{
		"kafka.bootstrap.servers":                strings.Join(c.ListenAddrs(), ","),
		"kafka.topic":                            "t",
		"kafka.producer.security.protocol":       "SASL_SSL",
		"kafka.producer.sasl.mechanism":          "PLAIN",
		"kafka.producer.sasl.jaas.config":        `org.apache.kafka.common.security.plain.PlainLoginModule required username="flume" password="s3cret";`,
		"kafka.producer.ssl.truststore.location": caPath,
		"kafka.producer.ssl.truststore.type":     "PEM",
	})
	f, _ := Lookup("kafka")
	s, err := f("k1", cfg, nil)
	if err != nil {
		t.Fatal(err, cfg.Problems().Err())
	}
	drainKafka(t, s.(*Kafka), memoryWith(t, keyedEvents(100)), nil)
	read := []kgo.Opt{
		kgo.DialTLSConfig(&tls.Config{InsecureSkipVerify: true}), //nolint:gosec // the reader only counts
		kgo.SASL(plain.Auth{User: "flume", Pass: "s3cret"}.AsMechanism()),
	}
	if got := len(kafkatest.ReadAll(t, c, "t", 100, read...)); got != 100 {
		t.Fatalf("topic holds %d", got)
	}
}
