package channel

// The Kafka channel (Flume's KafkaChannel): a topic is the queue. A put
// transaction produces its events when it commits and returns once Kafka
// acknowledged every record (acks=all, idempotent by default); a take
// transaction reads from the consumer group's position and commits the
// group's offsets when it commits; a rollback returns the taken events to
// the head of this channel's queue, in order.
//
// What this file owns: one producer client (shared by every put
// transaction; franz-go is safe for concurrent use) and one group consumer
// whose records wait in head, oldest first, until a take hands them out.
// Every polled record is tracked per partition (kafkaPart) until a take
// commit makes it done; the offset committed for a partition is the first
// record not yet done, so an offset is never committed past an event that
// was not taken and committed. A partition revoked from this member drops
// its records: the member that gets it next reads them again from the
// committed offset, so events taken and not committed when a rebalance
// comes are delivered twice (work in flight), never lost; such a take's
// Commit fails, so its taker knows.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/kafkaclient"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The Kafka channel's keys (Flume's KafkaChannel) and the Java client
// properties flumed maps.
var (
	kafkaChBootstrap = config.List("kafka.bootstrap.servers", ",", "", "the brokers to start from, host:port, comma separated").Required()
	kafkaChTopic     = config.String("kafka.topic", "flume-channel", "the topic that holds the channel's events")
	kafkaChParse     = config.Bool("parseAsFlumeEvent", true, "records are Avro AvroFlumeEvents (headers and body), as Flume's channel writes them; false: the value is the body")
	kafkaChPoll      = config.Millis("pollTimeout", 500*time.Millisecond, "how long a take waits for the records it asks for, as in Flume")
	kafkaChPartHdr   = config.String("partitionIdHeader", "", "a header holding the partition to put the event in")
	kafkaChDefPart   = config.String("defaultPartitionId", "", "the partition for events without partitionIdHeader; unset: the producer's partitioner")
	kafkaChTxCap     = config.Int("transactionCapacity", 1000, "the most events one transaction may hold").Flumed()
)

var kafkaChannelType = &config.Spec{
	Type:    "kafka",
	Classes: []string{"org.apache.flume.channel.kafka.KafkaChannel"},
	Doc: "a put commits once every record is acknowledged (acks=all, idempotent); a take commits the group's " +
		"offsets up to the first event not yet taken and committed; a rollback returns events to the head in order; " +
		"no capacity (the topic's retention is the bound)",
	Keys: []config.Decl{kafkaChBootstrap, kafkaChTopic, kafkaChParse, kafkaChPoll, kafkaChPartHdr, kafkaChDefPart,
		kafkaChTxCap, kafkaclient.Producer, kafkaclient.Consumer,
		config.Ignore("migrateZookeeperOffsets", "ZooKeeper offsets are not read; the group's Kafka offsets are"),
		config.Refuse("brokerList", "Flume's old name: write kafka.bootstrap.servers"),
		config.Refuse("topic", "Flume's old name: write kafka.topic"),
		config.Refuse("groupId", "Flume's old name: write kafka.consumer.group.id")},
}

// KafkaOptions configure a Kafka channel.
type KafkaOptions struct {
	Brokers             []string
	Topic               string
	ParseAsFlumeEvent   bool
	PollTimeout         time.Duration
	PartitionIDHeader   string
	DefaultPartition    int32 // -1: none
	TransactionCapacity int
	Group               string
	Producer, Consumer  []kgo.Opt // from kafka.producer.* / kafka.consumer.*, or a test's
}

type kafkaSpec struct{ o KafkaOptions }

func (s kafkaSpec) TransactionCapacity() int { return s.o.TransactionCapacity }
func (s kafkaSpec) Open(name string, log *slog.Logger) (Channel, error) {
	return OpenKafka(name, s.o, log)
}

func kafkaChannelFactory(_ string, c *config.Context) (Spec, error) {
	o := KafkaOptions{
		Brokers:             kafkaChBootstrap.Get(c),
		Topic:               kafkaChTopic.Get(c),
		ParseAsFlumeEvent:   kafkaChParse.Get(c),
		PollTimeout:         kafkaChPoll.Get(c),
		PartitionIDHeader:   kafkaChPartHdr.Get(c),
		DefaultPartition:    -1,
		TransactionCapacity: kafkaChTxCap.Get(c),
	}
	ok := len(o.Brokers) > 0
	if v := kafkaChDefPart.Get(c); v != "" {
		p, err := strconv.ParseInt(v, 10, 32)
		if err != nil || p < 0 {
			c.Errorf(kafkaChDefPart.Name(), "not a partition number: %q", v)
			ok = false
		}
		o.DefaultPartition = int32(p)
	}
	if o.TransactionCapacity < 1 {
		c.Errorf(kafkaChTxCap.Name(), "must be at least 1")
		ok = false
	}
	var pOK, cOK bool
	var cc kafkaclient.ConsumerConfig
	o.Producer, pOK = kafkaclient.ProducerOptions(c)
	o.Consumer, cc, cOK = kafkaclient.ConsumerOptions(c)
	o.Group = cc.Group
	if !ok || !pOK || !cOK {
		return nil, errors.New("invalid kafka channel configuration")
	}
	return kafkaSpec{o}, nil
}

// Kafka is the Kafka channel.
type Kafka struct {
	name string
	o    KafkaOptions
	log  *slog.Logger
	prod *kgo.Client
	cons *kgo.Client

	pollMu sync.Mutex // one poller at a time; never held with mu while polling

	mu     sync.Mutex
	head   []kafkaRec // polled, not taken (or rolled back), oldest first
	parts  map[kafkaTP]*kafkaPart
	closed bool
	stats  Stats
}

var _ Channel = (*Kafka)(nil)

type kafkaTP struct {
	topic string
	part  int32
}

// kafkaPart is one assigned partition's records from their poll until their
// take commits. A revoked partition's kafkaPart is dropped; records of it
// still held by takes are recognised by pointer and never committed.
type kafkaPart struct {
	offsets []int64 // polled, in order
	done    []bool  // offsets[i]'s take committed
	epoch   int32   // leader epoch of the last record, for the commit
}

// kafkaRec is one polled record as an event, with where it came from.
type kafkaRec struct {
	ev     Event
	part   *kafkaPart
	tp     kafkaTP
	offset int64
	epoch  int32
}

// OpenKafka starts the channel's producer and group consumer. It does not
// wait for the brokers: a cluster that is down fails puts and empties takes.
func OpenKafka(name string, o KafkaOptions, log *slog.Logger) (*Kafka, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = kafkaChPoll.Default()
	}
	if o.TransactionCapacity < 1 {
		o.TransactionCapacity = kafkaChTxCap.Default()
	}
	if o.Group == "" {
		o.Group = "flume"
	}
	k := &Kafka{name: name, o: o, log: log, parts: map[kafkaTP]*kafkaPart{}}
	k.stats = Stats{Type: "kafka", StartTime: time.Now()}
	var err error
	k.prod, err = kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(o.Brokers...), kgo.DefaultProduceTopic(o.Topic),
		kgo.RecordPartitioner(kafkaclient.FlumePartitioner{})}, o.Producer...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka channel %s: producer: %w", name, err)
	}
	k.cons, err = kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(o.Brokers...), kgo.ConsumeTopics(o.Topic),
		kgo.ConsumerGroup(o.Group), kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsRevoked(k.dropParts), kgo.OnPartitionsLost(k.dropParts)}, o.Consumer...)...)
	if err != nil {
		k.prod.Close()
		return nil, fmt.Errorf("kafka channel %s: consumer: %w", name, err)
	}
	return k, nil
}

// Name implements Channel.
func (k *Kafka) Name() string { return k.name }

// Stats implements Channel. Size and Capacity are 0: the events are in the
// topic, shared with every member of the group, and its retention is the
// bound (Flume's Kafka channel reports no size either). A drain that waits
// for Size 0 therefore ends at once, leaving the events in Kafka.
func (k *Kafka) Stats() Stats {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.stats
}

// Close leaves the group (committing nothing more) and closes the clients.
// Takes not committed are read again by whichever member gets their
// partitions.
func (k *Kafka) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	k.stats.StopTime = time.Now()
	k.mu.Unlock()
	k.cons.Close()
	k.prod.Close()
	return nil
}

// Begin implements Channel.
func (k *Kafka) Begin() Txn { return &kafkaTxn{ch: k} }

func (k *Kafka) errClosed() error { return fmt.Errorf("channel %s: %w", k.name, ErrClosed) }

// dropParts forgets revoked or lost partitions: their records in head go,
// and takes holding some of them will not commit their offsets.
func (k *Kafka) dropParts(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for t, ps := range revoked {
		for _, p := range ps {
			delete(k.parts, kafkaTP{t, p})
		}
	}
	k.head = slices.DeleteFunc(k.head, func(r kafkaRec) bool { return k.parts[r.tp] != r.part })
}

// poll fetches records into head, waiting up to wait for the first.
func (k *Kafka) poll(wait time.Duration, max int) error {
	k.pollMu.Lock()
	defer k.pollMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if wait <= 0 {
		cancel() // only what is fetched already
	}
	fs := k.cons.PollRecords(ctx, max)
	if fs.IsClientClosed() {
		return k.errClosed()
	}
	var err error
	fs.EachError(func(t string, p int32, e error) {
		if !errors.Is(e, context.DeadlineExceeded) && !errors.Is(e, context.Canceled) && err == nil {
			err = fmt.Errorf("poll %s[%d]: %w", t, p, e)
		}
	})
	recs := fs.Records()
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, r := range recs {
		tp := kafkaTP{r.Topic, r.Partition}
		pt := k.parts[tp]
		if pt == nil {
			pt = &kafkaPart{}
			k.parts[tp] = pt
		}
		ev, derr := k.decode(r)
		if derr != nil {
			// A record that is not a Flume event is skipped, as Flume's channel
			// cannot deliver it either; its offset still counts as done so the
			// group moves past it.
			k.log.Error("kafka channel skipping a record that is not an AvroFlumeEvent", "channel", k.name,
				"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", derr)
			pt.offsets, pt.done = append(pt.offsets, r.Offset), append(pt.done, true)
			continue
		}
		pt.offsets, pt.done = append(pt.offsets, r.Offset), append(pt.done, false)
		pt.epoch = r.LeaderEpoch
		k.head = append(k.head, kafkaRec{ev: ev, part: pt, tp: tp, offset: r.Offset, epoch: r.LeaderEpoch})
	}
	return err
}

func (k *Kafka) decode(r *kgo.Record) (Event, error) {
	if !k.o.ParseAsFlumeEvent {
		return Event{Body: r.Value}, nil
	}
	var keys keyCache
	e, n, err := decodeAvroEvent(r.Value, &keys)
	if err != nil {
		return Event{}, err
	}
	if n != len(r.Value) {
		return Event{}, fmt.Errorf("%d bytes after the event", len(r.Value)-n)
	}
	return e, nil
}

// record makes a producer record of e.
func (k *Kafka) record(e Event) (*kgo.Record, error) {
	r := &kgo.Record{Topic: k.o.Topic, Partition: k.o.DefaultPartition}
	if k.o.PartitionIDHeader != "" {
		if v, ok := e.Headers[k.o.PartitionIDHeader]; ok {
			p, err := strconv.ParseInt(v, 10, 32)
			if err != nil || p < 0 {
				return nil, fmt.Errorf("header %s: not a partition number: %q", k.o.PartitionIDHeader, v)
			}
			r.Partition = int32(p)
		}
	}
	if key, ok := e.Headers["key"]; ok {
		r.Key = []byte(key)
	}
	if k.o.ParseAsFlumeEvent {
		r.Value = appendAvroEvent(make([]byte, 0, avroEventSize(e)), e)
	} else {
		r.Value = e.Body
	}
	return r, nil
}

// commitTaken marks recs done and commits, synchronously, every partition's
// offset that moved: the first record not yet done.
func (k *Kafka) commitTaken(recs []kafkaRec) error {
	k.mu.Lock()
	for _, r := range recs {
		if k.parts[r.tp] != r.part {
			// Revoked since it was taken: its next owner reads it again
			// from the committed offset, so this take cannot commit.
			k.mu.Unlock()
			return fmt.Errorf("%s[%d] was reassigned by a rebalance", r.tp.topic, r.tp.part)
		}
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, r := range recs {
		pt := k.parts[r.tp]
		i, found := slices.BinarySearch(pt.offsets, r.offset)
		if !found {
			continue
		}
		pt.done[i] = true
	}
	for tp, pt := range k.parts {
		n := 0
		for n < len(pt.done) && pt.done[n] {
			n++
		}
		if n == 0 {
			continue
		}
		next := pt.offsets[n-1] + 1
		pt.offsets, pt.done = pt.offsets[n:], pt.done[n:]
		if offsets[tp.topic] == nil {
			offsets[tp.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[tp.topic][tp.part] = kgo.EpochOffset{Epoch: pt.epoch, Offset: next}
	}
	k.mu.Unlock()
	if len(offsets) == 0 {
		return nil
	}
	var cerr error
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k.cons.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil && cerr == nil {
					cerr = fmt.Errorf("commit %s[%d]: %w", t.Topic, p.Partition, e)
				}
			}
		}
	})
	return cerr
}

// unTake puts recs back at the head, in order, ahead of everything newer;
// records of partitions revoked since are dropped (their next owner reads
// them).
func (k *Kafka) unTake(recs []kafkaRec) {
	k.mu.Lock()
	defer k.mu.Unlock()
	keep := slices.DeleteFunc(slices.Clone(recs), func(r kafkaRec) bool { return k.parts[r.tp] != r.part })
	k.head = append(keep, k.head...)
}

// kafkaTxn is one transaction on a Kafka channel.
type kafkaTxn struct {
	ch    *Kafka
	puts  []Event
	taken []kafkaRec
	took  bool
	ended bool
}

func (t *kafkaTxn) check() error {
	t.ch.mu.Lock()
	closed := t.ch.closed
	t.ch.mu.Unlock()
	if closed {
		t.ended = true
		return t.ch.errClosed()
	}
	if t.ended {
		return ErrTxnDone
	}
	return nil
}

// Put implements Txn: events are staged until Commit produces them.
func (t *kafkaTxn) Put(events ...Event) error {
	t.ch.count(func(s *Stats) { s.PutAttempts += int64(len(events)) })
	if err := t.check(); err != nil {
		return err
	}
	if t.took {
		return fmt.Errorf("channel %s: %w", t.ch.name, ErrMixed)
	}
	if len(t.puts)+len(events) > t.ch.o.TransactionCapacity {
		return fmt.Errorf("channel %s: %d events: %w", t.ch.name, t.ch.o.TransactionCapacity, ErrTxnFull)
	}
	for _, e := range events {
		t.puts = append(t.puts, Event{Headers: cloneHeaders(e.Headers), Body: slices.Clone(e.Body)})
	}
	return nil
}

func cloneHeaders(h map[string]string) map[string]string {
	if h == nil {
		return nil
	}
	c := make(map[string]string, len(h))
	for k, v := range h {
		c[k] = v
	}
	return c
}

// Take implements Txn: up to max events from the head, polling Kafka (up
// to pollTimeout) when the head is empty.
func (t *kafkaTxn) Take(max int) ([]Event, error) {
	t.ch.count(func(s *Stats) { s.TakeAttempts++ })
	if err := t.check(); err != nil {
		return nil, err
	}
	if len(t.puts) > 0 {
		return nil, fmt.Errorf("channel %s: %w", t.ch.name, ErrMixed)
	}
	if len(t.taken)+max > t.ch.o.TransactionCapacity {
		return nil, fmt.Errorf("channel %s: %d events: %w", t.ch.name, t.ch.o.TransactionCapacity, ErrTxnFull)
	}
	t.took = true
	k := t.ch
	// As Flume's Kafka channel does, a take waits up to pollTimeout for the
	// records it asks for: it polls again while it has fewer than max and the
	// last poll brought something, and stops at the first poll that brings
	// nothing within what is left of pollTimeout. A batch split over fetches
	// (the client buffers a fetch made before the rest was produced) is then
	// taken whole however slow the machine, and a short take costs at most
	// pollTimeout, Flume's price for a sink's partial batch.
	deadline := time.Now().Add(k.o.PollTimeout)
	for {
		k.mu.Lock()
		before := len(k.head)
		k.mu.Unlock()
		if before >= max {
			break
		}
		if err := k.poll(time.Until(deadline), max-before); err != nil {
			if errors.Is(err, ErrClosed) {
				return nil, err
			}
			k.log.Warn("kafka channel poll", "channel", k.name, "err", err)
		}
		k.mu.Lock()
		got := len(k.head)
		k.mu.Unlock()
		if got == before || time.Now().After(deadline) {
			break
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	n := min(max, len(k.head))
	got := k.head[:n:n]
	k.head = k.head[n:]
	t.taken = append(t.taken, got...)
	out := make([]Event, n)
	for i, r := range got {
		out[i] = r.ev
	}
	return out, nil
}

// Commit implements Txn: puts return once Kafka acknowledged every record;
// takes once the group's offsets are committed.
func (t *kafkaTxn) Commit() error {
	wasEnded := t.ended
	if err := t.check(); err != nil {
		if !wasEnded {
			t.release()
		}
		return err
	}
	t.ended = true
	switch {
	case len(t.puts) > 0:
		// Counted before the records are written and taken back if they
		// fail: a consumer may take them between the broker's ack and the
		// producer hearing it, and a take must never count ahead of its put.
		n := int64(len(t.puts))
		t.ch.count(func(s *Stats) { s.PutSuccesses += n })
		if err := t.ch.produce(t.puts); err != nil {
			t.ch.count(func(s *Stats) { s.PutSuccesses -= n })
			return err
		}
	case len(t.taken) > 0:
		if err := t.ch.commitTaken(t.taken); err != nil {
			t.release()
			return fmt.Errorf("channel %s: commit offsets: %w", t.ch.name, err)
		}
		t.ch.count(func(s *Stats) { s.TakeSuccesses += int64(len(t.taken)) })
		t.taken = nil
	}
	return nil
}

// produce writes events and waits for every acknowledgement.
func (k *Kafka) produce(events []Event) error {
	recs := make([]*kgo.Record, len(events))
	for i, e := range events {
		r, err := k.record(e)
		if err != nil {
			return fmt.Errorf("channel %s: %w", k.name, err)
		}
		recs[i] = r
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := k.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		if errors.Is(err, kgo.ErrClientClosed) {
			return k.errClosed()
		}
		return fmt.Errorf("channel %s: produce: %w", k.name, err)
	}
	return nil
}

// Rollback implements Txn.
func (t *kafkaTxn) Rollback() error {
	wasEnded := t.ended
	err := t.check()
	if !wasEnded {
		t.ended = true
		t.release()
	}
	return err
}

// release returns the transaction's taken events to the head.
func (t *kafkaTxn) release() {
	if len(t.taken) > 0 {
		t.ch.unTake(t.taken)
		t.taken = nil
	}
	t.puts = nil
}

func (k *Kafka) count(f func(*Stats)) {
	k.mu.Lock()
	f(&k.stats)
	k.mu.Unlock()
}
