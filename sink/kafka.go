package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/avrorpc"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/counter"
	"github.com/flumed/flumed/internal/kafkaclient"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The Kafka sink's keys (Flume's KafkaSink), and the kafka.producer.*
// properties flumed maps (internal/kafkaclient).
var (
	kafkaBootstrap  = config.List("kafka.bootstrap.servers", ",", "", "the brokers to start from, host:port, comma separated").Required()
	kafkaTopic      = config.String("kafka.topic", "default-flume-topic", "the topic; %{header} is replaced by the event's header")
	kafkaBatch      = config.Int("flumeBatchSize", 100, "the most events taken in one transaction and produced before it commits")
	kafkaFlumeEvent = config.Bool("useFlumeEventFormat", false, "write each record's value as an Avro AvroFlumeEvent (headers and body), as Flume does")
	kafkaTopicHdr   = config.String("topicHeader", "topic", "the header naming an event's topic, when allowTopicOverride is true")
	kafkaOverride   = config.Bool("allowTopicOverride", true, "let topicHeader choose the topic")
	kafkaPartHdr    = config.String("partitionIdHeader", "", "a header holding the partition number to write the event to")
	kafkaDefPart    = config.String("defaultPartitionId", "", "the partition for events without partitionIdHeader; unset lets the key (or stickiness) choose")
	kafkaDepth      = config.Int("pipelineDepth", defaultKafkaDepth,
		"how many batches may be in flight at once, each its own take transaction; 1 is Flume's one at a time").Flumed()
)

// defaultKafkaDepth keeps enough records in flight that the sink is not
// bound by one produce round trip per batch: with Flume's default batch of
// 100, 16 batches keep 1,600 records in flight (bench/kafka_test.go:
// draining a file channel, 1.2-1.6× the events/s of depth 4). It widens
// the duplicates after a crash to Window(16) = 48 batches.
const defaultKafkaDepth = 16

// kafkaType declares the Kafka sink.
var kafkaType = &config.Spec{
	Type:    "kafka",
	Classes: []string{"org.apache.flume.sink.kafka.KafkaSink"},
	Doc: "commits a take only once every record of the batch is acknowledged, with the idempotent producer " +
		"and acks=all by default (Flume's is 1); keeps up to `pipelineDepth` batches in flight; a broker error " +
		"rolls back every uncommitted batch and drives the sink processor. Duplicates: [Kafka](#kafka)",
	Keys: []config.Decl{kafkaBootstrap, kafkaTopic, kafkaBatch, kafkaFlumeEvent, kafkaTopicHdr, kafkaOverride,
		kafkaPartHdr, kafkaDefPart, kafkaDepth, kafkaclient.Producer,
		config.Refuse("brokerList", "Flume's old name: write kafka.bootstrap.servers"),
		config.Refuse("topic", "Flume's old name: write kafka.topic"),
		config.Refuse("batchSize", "Flume's old name: write flumeBatchSize"),
		config.Refuse("requiredAcks", "Flume's old name: write kafka.producer.acks"),
		config.Ignore("timestampHeader", "")},
}

// KafkaOptions configure a Kafka sink.
type KafkaOptions struct {
	Brokers             []string
	Topic               string // may hold %{header}
	BatchSize           int
	UseFlumeEventFormat bool
	TopicHeader         string // used when AllowTopicOverride
	AllowTopicOverride  bool
	PartitionIDHeader   string
	DefaultPartition    int32 // -1: none
	// Depth is how many batches may be in flight (pipelineDepth).
	Depth int
	// Client are franz-go options beyond the brokers and the partitioner:
	// kafkaclient.ProducerOptions, or a test's.
	Client []kgo.Opt
	// StopTimeout bounds how long Stop waits for the answers of the batches
	// in flight (kafka.producer.delivery.timeout.ms when built from a file).
	StopTimeout time.Duration
}

// Kafka is Flume's Kafka sink on franz-go: it takes up to BatchSize events
// in one channel transaction, produces one record per event, and commits
// the transaction only once Kafka acknowledged every record: with acks=all
// (the default) every in-sync replica has them. The producer is idempotent,
// so a retry within a producer session never writes a record twice.
//
// Batches run on the sink's Engine with Depth batches in flight; records of several batches share franz-go's per-partition
// batches. A failed record (a broker error past its retries, the delivery
// timeout, a bad partition) fails its batch: the engine rolls back every
// uncommitted batch, latest first, and the error drives the sink
// processor. The client is then closed, which fails the records still
// buffered, and the next Process starts a new one (a new producer session):
// the batches rolled back are produced again, so records Kafka had taken
// from them appear twice: duplicates only from work in flight.
type Kafka struct {
	name    string
	opts    KafkaOptions
	log     *slog.Logger
	counter counter.Sink
	stopped bool
	topic   func(map[string]string) string

	// Owned by the runner goroutine.
	eng    *Engine
	client *kgo.Client
}

var (
	_ Sink              = (*Kafka)(nil)
	_ BatchSizer        = (*Kafka)(nil)
	_ BatchSizeKeyer    = (*Kafka)(nil)
	_ counter.Monitored = (*Kafka)(nil)
)

// NewKafka builds a Kafka sink; zero fields get their keys' defaults.
func NewKafka(name string, o KafkaOptions, log *slog.Logger) *Kafka {
	if o.BatchSize < 1 {
		o.BatchSize = kafkaBatch.Default()
	}
	if o.Topic == "" {
		o.Topic = kafkaTopic.Default()
	}
	if o.Depth < 1 {
		o.Depth = defaultKafkaDepth
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 30 * time.Second
	}
	return &Kafka{name: name, opts: o, log: orDiscard(log), topic: topicTemplate(o.Topic)}
}

func newKafkaFactory(name string, c *config.Context, log *slog.Logger) (Sink, error) {
	o := KafkaOptions{
		Brokers:             kafkaBootstrap.Get(c),
		Topic:               kafkaTopic.Get(c),
		BatchSize:           kafkaBatch.Get(c),
		UseFlumeEventFormat: kafkaFlumeEvent.Get(c),
		TopicHeader:         kafkaTopicHdr.Get(c),
		AllowTopicOverride:  kafkaOverride.Get(c),
		PartitionIDHeader:   kafkaPartHdr.Get(c),
		DefaultPartition:    -1,
		StopTimeout:         kafkaclient.DeliveryTimeout(c),
		Depth:               kafkaDepth.Get(c),
	}
	ok := len(o.Brokers) > 0
	if o.BatchSize < 1 {
		c.Errorf(kafkaBatch.Name(), "must be at least 1, not %d", o.BatchSize)
		ok = false
	}
	if o.Depth < 1 || o.Depth > maxPipelineDepth {
		c.Errorf(kafkaDepth.Name(), "must be 1-%d batches in flight, not %d", maxPipelineDepth, o.Depth)
		ok = false
	}
	if v := kafkaDefPart.Get(c); v != "" {
		p, err := strconv.ParseInt(v, 10, 32)
		if err != nil || p < 0 {
			c.Errorf(kafkaDefPart.Name(), "not a partition number: %q", v)
			ok = false
		}
		o.DefaultPartition = int32(p)
	}
	opts, clientOK := kafkaclient.ProducerOptions(c)
	o.Client = opts
	if !ok || !clientOK {
		return nil, fmt.Errorf("configure kafka sink %s: invalid configuration", name)
	}
	return NewKafka(name, o, log), nil
}

// Name implements Sink.
func (s *Kafka) Name() string { return s.name }

// BatchSize implements BatchSizer.
func (s *Kafka) BatchSize() int { return s.opts.BatchSize }

// BatchSizeKey implements BatchSizeKeyer.
func (s *Kafka) BatchSizeKey() string { return kafkaBatch.Name() }

// FlumeMetrics implements counter.Monitored with Flume's SinkCounter.
func (s *Kafka) FlumeMetrics() map[string]string { return s.counter.FlumeMetrics() }

// Start binds the sink to its channel and checks the client options. It
// does not wait for the brokers: a cluster that is down fails in Process.
func (s *Kafka) Start(_ context.Context, ch channel.Channel) error {
	if err := s.connect(); err != nil {
		return err
	}
	s.eng = NewEngine(EngineOptions{
		Sink: s.name, Channel: ch, BatchSize: s.opts.BatchSize, Depth: s.opts.Depth,
		Counter: &s.counter, Log: s.log,
	}, kafkaDelivery{s})
	s.stopped = false
	s.counter.Started()
	return nil
}

// Process delivers one batch (see Kafka and engine.go).
func (s *Kafka) Process(ctx context.Context) (Status, error) {
	if s.eng == nil || s.stopped {
		return Backoff, errors.New("kafka sink not started")
	}
	st, err := s.eng.Process(ctx)
	if err != nil {
		s.disconnect()
		return st, fmt.Errorf("kafka sink %s: %w", s.name, err)
	}
	return st, nil
}

// Stop settles the batches in flight (each waits at most StopTimeout) and
// closes the client. Idempotent.
func (s *Kafka) Stop() error {
	if s.stopped {
		return nil
	}
	if s.eng != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.StopTimeout)
		if err := s.eng.Settle(ctx); err != nil {
			s.log.Warn("kafka sink stopping: batches in flight rolled back", slog.String("sink", s.name), slog.Any("err", err))
		}
		cancel()
	}
	s.disconnect()
	s.stopped = true
	s.counter.Stopped()
	return nil
}

func (s *Kafka) connect() error {
	opts := append([]kgo.Opt{kgo.SeedBrokers(s.opts.Brokers...), kgo.RecordPartitioner(kafkaclient.FlumePartitioner{})}, s.opts.Client...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		s.counter.ConnectionFailed.Add(1)
		return fmt.Errorf("kafka sink %s: new client: %w", s.name, err)
	}
	s.client = cl
	s.counter.ConnectionCreated.Add(1)
	return nil
}

// disconnect closes the client: records still buffered fail, and the
// batches they belong to were rolled back already.
func (s *Kafka) disconnect() {
	if s.client != nil {
		s.client.Close()
		s.client = nil
		s.counter.ConnectionClosed.Add(1)
	}
}

// kafkaDelivery produces one record per event; its Pending is done once
// every record is acknowledged or one failed.
type kafkaDelivery struct{ s *Kafka }

func (d kafkaDelivery) Send(ctx context.Context, events []channel.Event) (Pending, error) {
	s := d.s
	if s.client == nil {
		if err := s.connect(); err != nil {
			return nil, err
		}
	}
	p := &kafkaPending{done: make(chan struct{}), recs: recordPool.Get().(*[]kgo.Record)}
	recs := slices.Grow((*p.recs)[:0], len(events))[:len(events)]
	*p.recs = recs
	for i := range events {
		recs[i] = kgo.Record{}
		if err := s.record(&recs[i], &events[i]); err != nil {
			p.release()
			return nil, err
		}
	}
	p.left.Store(int64(len(recs)))
	for i := range recs {
		s.client.Produce(ctx, &recs[i], p.promise)
	}
	return p, nil
}

// record fills r from e as Flume's sink does: the topic from topicHeader
// (when allowed) or kafka.topic, the partition from partitionIdHeader or
// defaultPartitionId, the key from the "key" header.
func (s *Kafka) record(r *kgo.Record, e *channel.Event) error {
	r.Topic = ""
	if s.opts.AllowTopicOverride {
		r.Topic = e.Headers[s.opts.TopicHeader]
	}
	if r.Topic == "" {
		r.Topic = s.topic(e.Headers)
	}
	r.Partition = s.opts.DefaultPartition
	if s.opts.PartitionIDHeader != "" {
		if v, ok := e.Headers[s.opts.PartitionIDHeader]; ok {
			p, err := strconv.ParseInt(v, 10, 32)
			if err != nil || p < 0 {
				return fmt.Errorf("header %s: not a partition number: %q", s.opts.PartitionIDHeader, v)
			}
			r.Partition = int32(p)
		}
	}
	if k, ok := e.Headers["key"]; ok {
		r.Key = []byte(k)
	}
	if s.opts.UseFlumeEventFormat {
		r.Value = avrorpc.AppendEvent(nil, avrorpc.Event(*e))
	} else {
		r.Value = e.Body
	}
	return nil
}

// kafkaPending is one batch's outcome: done when every record's promise
// ran, failed with the first record's error.
type kafkaPending struct {
	left atomic.Int64
	done chan struct{}
	mu   sync.Mutex
	err  error
	recs *[]kgo.Record // back to recordPool once every promise ran
}

// recordPool keeps batches' record slices: a record is some 200 bytes, and
// allocating (and clearing) them per batch showed in the sink's profile.
var recordPool = sync.Pool{New: func() any { return new([]kgo.Record) }}

// release returns the records to the pool; franz-go keeps no reference to
// a record once its promise ran, and the sink none once the batch is done.
func (p *kafkaPending) release() {
	clear(*p.recs) // drop the references to event bodies
	recordPool.Put(p.recs)
	p.recs = nil
}

func (p *kafkaPending) promise(_ *kgo.Record, err error) {
	if err != nil {
		p.mu.Lock()
		if p.err == nil {
			p.err = err
		}
		p.mu.Unlock()
	}
	if p.left.Add(-1) == 0 {
		p.release()
		close(p.done)
	}
}

func (p *kafkaPending) Done() <-chan struct{} { return p.done }

func (p *kafkaPending) Wait(ctx context.Context) error {
	select {
	case <-p.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return fmt.Errorf("produce: %w", p.err)
	}
	return nil
}

// headerRef is %{name} in kafka.topic.
var headerRef = regexp.MustCompile(`%\{([^}]*)\}`)

// topicTemplate returns the topic for an event's headers: the template as
// written when it has no %{header}.
func topicTemplate(t string) func(map[string]string) string {
	if !headerRef.MatchString(t) {
		return func(map[string]string) string { return t }
	}
	return func(h map[string]string) string {
		return headerRef.ReplaceAllStringFunc(t, func(m string) string { return h[m[2:len(m)-1]] })
	}
}
