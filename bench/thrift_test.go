package bench

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/flumed/flumed/internal/avrorpc"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/thriftrpc"
	"github.com/flumed/flumed/internal/thriftrpc/flume"
	"github.com/flumed/flumed/source"
)

// BenchmarkThriftVsAvro sends the same batches (100 events of 512 bytes),
// one call at a time on one connection, to the thrift source (compact,
// framed) and to the avro source, each into a drained memory channel.
func BenchmarkThriftVsAvro(b *testing.B) {
	evs := rpcEvents(rpcBatch, rpcBody)
	run := func(b *testing.B, call func() error) {
		b.SetBytes(rpcBody)
		b.ResetTimer()
		start, cpu0 := time.Now(), cpuTime()
		n := 0
		for ; n < b.N; n += rpcBatch {
			if err := call(); err != nil {
				b.Fatal(err)
			}
		}
		elapsed, cpu := time.Since(start), cpuTime()-cpu0
		b.StopTimer()
		report(b, n, elapsed, cpu)
	}
	b.Run(fmt.Sprintf("source=avro/batch=%d/size=%d", rpcBatch, rpcBody), func(b *testing.B) {
		p := newMemoryPipe(b)
		defer p.stop()
		f, _ := source.Lookup("avro")
		src, err := f("r1", config.FromMap("a1.sources.r1.", map[string]string{"bind": "127.0.0.1", "port": "0"}), quiet)
		if err != nil {
			b.Fatal(err)
		}
		if err := src.Start(context.Background(), p.proc); err != nil {
			b.Fatal(err)
		}
		defer src.Stop()
		c, err := avrorpc.Dial(context.Background(), src.(interface{ Addr() net.Addr }).Addr().String(), avrorpc.ClientOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		batch := wireEvents(evs)
		run(b, func() error { return c.AppendBatch(context.Background(), batch) })
	})
	b.Run(fmt.Sprintf("source=thrift/protocol=compact/batch=%d/size=%d", rpcBatch, rpcBody), func(b *testing.B) {
		p := newMemoryPipe(b)
		defer p.stop()
		src := source.NewThrift("r1", "127.0.0.1:0", thriftrpc.ServerOptions{Compact: true}, quiet)
		if err := src.Start(context.Background(), p.proc); err != nil {
			b.Fatal(err)
		}
		defer src.Stop()
		conf := &thrift.TConfiguration{}
		sock := thrift.NewTSocketConf(src.Addr().String(), conf)
		tr := thrift.NewTFramedTransportConf(sock, conf)
		if err := tr.Open(); err != nil {
			b.Fatal(err)
		}
		defer tr.Close()
		client := flume.NewThriftSourceProtocolClientFactory(tr, thrift.NewTCompactProtocolFactoryConf(conf))
		batch := make([]*flume.ThriftFlumeEvent, len(evs))
		for i, e := range evs {
			batch[i] = &flume.ThriftFlumeEvent{Headers: e.Headers, Body: e.Body}
		}
		run(b, func() error {
			st, err := client.AppendBatch(context.Background(), batch)
			if err == nil && st != flume.Status_OK {
				err = fmt.Errorf("status %v", st)
			}
			return err
		})
	})
}
