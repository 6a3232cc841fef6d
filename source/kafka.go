package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/avrorpc"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/counter"
	"github.com/flumed/flumed/internal/kafkaclient"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The Kafka source's keys (Flume's KafkaSource) and the kafka.consumer.*
// properties flumed maps. They are declared as a spec; until the source
// registry takes specs they are read on the transitional path.
var (
	kafkaSrcBootstrap = config.List("kafka.bootstrap.servers", ",", "", "the brokers to start from, host:port, comma separated").Required()
	kafkaSrcTopics    = config.List("kafka.topics", ",", "", "the topics to read, comma separated")
	kafkaSrcRegex     = config.String("kafka.topics.regex", "", "a regular expression naming the topics to read (instead of kafka.topics)")
	kafkaSrcBatch     = config.Int("batchSize", 1000, "the most events put in one channel transaction")
	kafkaSrcDuration  = config.Millis("batchDurationMillis", time.Second, "the longest a batch waits to fill before it is put")
	kafkaSrcSetTopic  = config.Bool("setTopicHeader", true, "put the record's topic in topicHeader")
	kafkaSrcTopicHdr  = config.String("topicHeader", "topic", "the header that gets the topic")
	kafkaSrcFlumeFmt  = config.Bool("useFlumeEventFormat", false, "records are Avro AvroFlumeEvents (headers and body), as Flume's sink and channel write them")
	kafkaSrcMigrate   = config.Bool("migrateZookeeperOffsets", false, "refused when true: offsets are the group's in Kafka")
)

// kafkaSourceType declares the Kafka source (for the spec registry).
var kafkaSourceType = &config.Spec{
	Type:    "kafka",
	Classes: []string{"org.apache.flume.source.kafka.KafkaSource"},
	Doc: "commits the group's offsets only after the channel transaction committed; holds the group's " +
		"rebalances between a poll and that commit, so a rebalance repeats at most the batch not yet committed",
	Keys: []config.Decl{kafkaSrcBootstrap, kafkaSrcTopics, kafkaSrcRegex, kafkaSrcBatch, kafkaSrcDuration,
		kafkaSrcSetTopic, kafkaSrcTopicHdr, kafkaSrcFlumeFmt, kafkaSrcMigrate, kafkaclient.Consumer, ProcessorKeys},
}

// KafkaOptions configure a Kafka source.
type KafkaOptions struct {
	Brokers         []string
	Topics          []string
	TopicsRegex     string
	Group           string
	BatchSize       int
	BatchDuration   time.Duration
	SetTopicHeader  bool
	TopicHeader     string
	FlumeEventFmt   bool
	Consumer        []kgo.Opt // from kafka.consumer.*, or a test's
	BackoffIncrease time.Duration
	BackoffMax      time.Duration
}

// Kafka is Flume's Kafka source: a group consumer whose batches go to the
// channel processor, and whose offsets are committed only once the channel
// transactions committed. The client holds the group's rebalances from a
// poll until that commit (BlockRebalanceOnPoll), so a rebalance never takes
// a partition away with events put and not committed: the member that gets
// it next starts from offsets that cover every event committed to the
// channel, and repeats at most the batch not yet committed when this one
// stopped or crashed. A batch the channel refuses is kept and put again
// before anything newer is polled.
type Kafka struct {
	name     string
	o        KafkaOptions
	log      *slog.Logger
	counters counter.Source

	mu   sync.Mutex
	proc BatchPutter
	cl   *kgo.Client

	// Owned by the runner goroutine: a batch polled and not yet committed
	// to the channel, kept across a refusal.
	pending []channel.Event
	polled  []*kgo.Record
}

var (
	_ Pollable   = (*Kafka)(nil)
	_ BatchSizer = (*Kafka)(nil)
)

func newKafkaSource(name string, c *config.Context, log *slog.Logger) (Source, error) {
	o := KafkaOptions{
		Brokers:        kafkaSrcBootstrap.Get(c),
		Topics:         kafkaSrcTopics.Get(c),
		TopicsRegex:    kafkaSrcRegex.Get(c),
		BatchSize:      kafkaSrcBatch.Get(c),
		BatchDuration:  kafkaSrcDuration.Get(c),
		SetTopicHeader: kafkaSrcSetTopic.Get(c),
		TopicHeader:    kafkaSrcTopicHdr.Get(c),
		FlumeEventFmt:  kafkaSrcFlumeFmt.Get(c),
	}
	ok := true
	if len(o.Brokers) == 0 {
		c.Errorf(kafkaSrcBootstrap.Name(), "required")
		ok = false
	}
	if kafkaSrcMigrate.Get(c) {
		c.Errorf(kafkaSrcMigrate.Name(), "true is refused: flumed reads no ZooKeeper offsets; migrate them with Flume 1.9 first, or let the group start from auto.offset.reset")
		ok = false
	}
	if (len(o.Topics) == 0) == (o.TopicsRegex == "") {
		c.Errorf(kafkaSrcTopics.Name(), "set exactly one of kafka.topics and kafka.topics.regex")
		ok = false
	}
	if o.BatchSize < 1 {
		c.Errorf(kafkaSrcBatch.Name(), "must be at least 1")
		ok = false
	}
	if o.BatchDuration <= 0 {
		c.Errorf(kafkaSrcDuration.Name(), "must be positive")
		ok = false
	}
	opts, cc, cOK := kafkaclient.ConsumerOptions(c)
	o.Consumer, o.Group = opts, cc.Group
	if !ok || !cOK {
		return nil, errConfig
	}
	return NewKafka(name, o, log), nil
}

// NewKafka builds a Kafka source.
func NewKafka(name string, o KafkaOptions, log *slog.Logger) *Kafka {
	if o.BatchSize < 1 {
		o.BatchSize = kafkaSrcBatch.Default()
	}
	if o.BatchDuration <= 0 {
		o.BatchDuration = kafkaSrcDuration.Default()
	}
	if o.Group == "" {
		o.Group = "flume"
	}
	if o.BackoffIncrease <= 0 {
		o.BackoffIncrease = time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 5 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Kafka{name: name, o: o, log: log}
}

// Name implements Source.
func (s *Kafka) Name() string { return s.name }

// BatchSize implements BatchSizer.
func (s *Kafka) BatchSize() int { return s.o.BatchSize }

// Backoff implements Pollable.
func (s *Kafka) Backoff() (time.Duration, time.Duration) { return s.o.BackoffIncrease, s.o.BackoffMax }

// FlumeMetrics returns Flume's SOURCE counters.
func (s *Kafka) FlumeMetrics() map[string]string { return s.counters.FlumeMetrics() }

// Start joins the group (without waiting for the brokers).
func (s *Kafka) Start(_ context.Context, p BatchPutter) error {
	opts := []kgo.Opt{kgo.SeedBrokers(s.o.Brokers...), kgo.ConsumerGroup(s.o.Group), kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd())}
	if s.o.TopicsRegex != "" {
		opts = append(opts, kgo.ConsumeTopics(s.o.TopicsRegex), kgo.ConsumeRegex())
	} else {
		opts = append(opts, kgo.ConsumeTopics(s.o.Topics...))
	}
	cl, err := kgo.NewClient(append(opts, s.o.Consumer...)...)
	if err != nil {
		return fmt.Errorf("kafka source %s: %w", s.name, err)
	}
	s.mu.Lock()
	s.proc, s.cl = p, cl
	s.mu.Unlock()
	s.counters.Started()
	return nil
}

// Stop leaves the group; a batch not yet committed to the channel is read
// again by whoever gets its partitions. The runner must have stopped.
func (s *Kafka) Stop() error {
	s.mu.Lock()
	cl := s.cl
	s.cl = nil
	s.mu.Unlock()
	if cl != nil {
		cl.AllowRebalance()
		cl.Close()
	}
	s.counters.Stopped()
	return nil
}

// Poll puts one batch: the one the channel refused last time, or up to
// batchSize records polled within batchDurationMillis; then commits their
// offsets and lets the group rebalance.
func (s *Kafka) Poll(ctx context.Context) (Status, error) {
	s.mu.Lock()
	p, cl := s.proc, s.cl
	s.mu.Unlock()
	if p == nil || cl == nil {
		return Backoff, errors.New("kafka source not started")
	}
	if len(s.polled) == 0 {
		if err := s.fetch(ctx, cl); err != nil {
			return Backoff, err
		}
		if len(s.polled) == 0 {
			cl.AllowRebalance()
			return Backoff, nil
		}
	}
	if len(s.pending) > 0 {
		s.counters.AppendBatchReceived.Add(1)
		s.counters.EventReceived.Add(int64(len(s.pending)))
		if err := p.PutBatch(s.pending); err != nil {
			// Kept: put again before anything newer. The group waits for
			// this batch's commit (or, past its rebalance timeout, moves on
			// without this member, whose batch the next owner reads again).
			s.counters.ChannelWriteFail.Add(1)
			s.log.Warn("kafka source: the channel refused a batch; it will be put again", "source", s.name,
				"events", len(s.pending), "err", err)
			return Backoff, nil
		}
		s.counters.AppendBatchAccepted.Add(1)
		s.counters.EventAccepted.Add(int64(len(s.pending)))
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := cl.CommitRecords(cctx, s.polled...)
	cancel()
	s.pending, s.polled = nil, nil
	cl.AllowRebalance()
	if err != nil {
		// The events are in the channel: the next owner of these partitions
		// reads them again (a repeat of this batch, never a loss).
		return Backoff, fmt.Errorf("kafka source %s: commit offsets: %w", s.name, err)
	}
	return Ready, nil
}

// fetch gathers up to batchSize records, waiting at most batchDuration.
func (s *Kafka) fetch(ctx context.Context, cl *kgo.Client) error {
	deadline := time.Now().Add(s.o.BatchDuration)
	for len(s.polled) < s.o.BatchSize {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		pctx, cancel := context.WithTimeout(ctx, left)
		fs := cl.PollRecords(pctx, s.o.BatchSize-len(s.polled))
		cancel()
		if fs.IsClientClosed() {
			return errors.New("kafka source closed")
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				s.log.Warn("kafka source fetch", "source", s.name, "topic", t, "partition", p, "err", err)
			}
		})
		for _, r := range fs.Records() {
			e, err := s.event(r)
			if err != nil {
				s.counters.EventReadFail.Add(1)
				s.log.Error("kafka source skipping a record that is not an AvroFlumeEvent", "source", s.name,
					"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
			} else {
				s.pending = append(s.pending, e)
			}
			s.polled = append(s.polled, r) // committed with the batch either way
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil
}

// event makes Flume's event of a record, with Flume's headers.
func (s *Kafka) event(r *kgo.Record) (channel.Event, error) {
	var e channel.Event
	if s.o.FlumeEventFmt {
		ae, err := avrorpc.DecodeEvent(r.Value, avrorpc.Limits{})
		if err != nil {
			return e, err
		}
		e = channel.Event(ae)
	} else {
		e.Body = r.Value
	}
	if e.Headers == nil {
		e.Headers = make(map[string]string, 5)
	}
	if _, ok := e.Headers["timestamp"]; !ok {
		e.Headers["timestamp"] = strconv.FormatInt(time.Now().UnixMilli(), 10)
	}
	if s.o.SetTopicHeader {
		e.Headers[s.o.TopicHeader] = r.Topic
	}
	e.Headers["partition"] = strconv.Itoa(int(r.Partition))
	e.Headers["offset"] = strconv.FormatInt(r.Offset, 10)
	if r.Key != nil {
		e.Headers["key"] = string(r.Key)
	}
	return e, nil
}
