package kafkaclient

import "github.com/twmb/franz-go/pkg/kgo"

// FlumePartitioner is the Java client's default partitioner with Flume's
// explicit partitions: a record whose Partition the sink set (>= 0) goes
// there (franz-go fails it when the topic has no such partition); one with
// a key goes to murmur2(key) as Java's does; the rest stick to a partition
// per batch.
type FlumePartitioner struct{}

// ForTopic implements kgo.Partitioner.
func (FlumePartitioner) ForTopic(t string) kgo.TopicPartitioner {
	return &flumeTopicPartitioner{inner: kgo.StickyKeyPartitioner(nil).ForTopic(t)}
}

type flumeTopicPartitioner struct{ inner kgo.TopicPartitioner }

func (p *flumeTopicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return r.Partition >= 0 || p.inner.RequiresConsistency(r)
}

func (p *flumeTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Partition >= 0 {
		return int(r.Partition)
	}
	return p.inner.Partition(r, n)
}

func (p *flumeTopicPartitioner) OnNewBatch() {
	if nb, ok := p.inner.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}
