package bench

// The Kafka sink draining a file channel into kfake (3 brokers, a topic of 6
// partitions replicated 3 times), next to its baseline in the same run: a
// raw franz-go producer loop producing the same 512-byte records with the
// same producer settings (acks=all, idempotent) to the same cluster. The
// figure is sink/raw; the issue asks for at least 0.8.
//
// kfake runs in this process, so both sides pay its cost (decoding produce
// requests, appending to its in-memory log): measure its share with
// -cpuprofile and `go tool pprof -top -focus kfake`.

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/kafkatest"
	"github.com/flumed/flumed/sink"
	"github.com/twmb/franz-go/pkg/kgo"
)

func BenchmarkKafkaSink(b *testing.B) {
	const size, chunk = 512, 20_000
	for _, tc := range []struct{ batch, depth int }{{100, 4}, {100, 16}, {1000, 4}, {1000, 16}} {
		batch := tc.batch
		b.Run("sink=kafka/channel=file/batch="+strconv.Itoa(batch)+"/depth="+strconv.Itoa(tc.depth)+"/size=512", func(b *testing.B) {
			c := kafkatest.Cluster(b, 6, "raw", "sink")
			producer := []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0)}
			raw := kafkatest.Client(b, c, append(producer, kgo.DefaultProduceTopic("raw"))...)
			o := benchFileOptions(b.TempDir())
			o.TransactionCapacity = max(batch, 1000)
			ch := openBenchFile(b, o)
			defer ch.Close()
			events := benchEvents(chunk, size)
			var rawTime, sinkTime time.Duration
			ctx := context.Background()
			s := sink.NewKafka("k1", sink.KafkaOptions{Brokers: c.ListenAddrs(), Topic: "sink", BatchSize: batch,
				DefaultPartition: -1, Depth: tc.depth, Client: producer}, nil)
			if err := s.Start(ctx, ch); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = s.Stop() }()
			for b.Loop() {
				// The baseline: the same records, produced as fast as
				// franz-go takes them, then flushed.
				began := time.Now()
				failed := make(chan error, 1)
				for i := range events {
					raw.Produce(ctx, &kgo.Record{Value: events[i].Body}, func(_ *kgo.Record, err error) {
						if err != nil {
							select {
							case failed <- err:
							default:
							}
						}
					})
				}
				if err := raw.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				rawTime += time.Since(began)
				select {
				case err := <-failed:
					b.Fatal(err)
				default:
				}

				for i := 0; i < chunk; i += 1000 {
					commitPut(b, ch, events[i:i+1000])
				}
				began = time.Now()
				drainKafkaSink(b, s, ch)
				sinkTime += time.Since(began)
			}
			n := float64(b.N * chunk)
			b.ReportMetric(n/rawTime.Seconds(), "raw-events/s")
			b.ReportMetric(n/sinkTime.Seconds(), "sink-events/s")
			b.ReportMetric(rawTime.Seconds()/sinkTime.Seconds(), "sink/raw")
		})
	}
}

func drainKafkaSink(b *testing.B, s *sink.Kafka, ch channel.Channel) {
	for {
		st, err := s.Process(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if st == sink.Backoff && ch.Stats().Size == 0 {
			return
		}
	}
}
