package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/syslog"
	"github.com/flumed/flumed/source"
)

// memoryPipe is a memory channel behind a channel processor, drained by a
// goroutine that counts what it takes.
type memoryPipe struct {
	mem   *channel.Memory
	proc  source.BatchPutter
	taken atomic.Int64
	stop  func()
}

func newMemoryPipe(b *testing.B) *memoryPipe {
	p := &memoryPipe{mem: channel.NewMemory("c1", channel.MemoryOptions{Capacity: 100_000, TransactionCapacity: 1000})}
	proc, err := source.NewChannelProcessor(config.FromMap("a1.sources.r1.", nil), []channel.Channel{p.mem}, quiet)
	if err != nil {
		b.Fatal(err)
	}
	p.proc = proc
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); drainMemory(p.mem, &p.taken, done) }()
	p.stop = func() { close(done); wg.Wait(); p.mem.Close() }
	return p
}

// BenchmarkSyslogUDP sends 200-byte messages at 100k/s (paced every
// millisecond) and reports how many were lost and the SO_RCVBUF the kernel
// granted.
func BenchmarkSyslogUDP(b *testing.B) {
	b.Run("rate=100000/size=200", func(b *testing.B) {
		p := newMemoryPipe(b)
		defer p.stop()
		src := source.NewSyslogUDP("r1", source.SyslogUDPOptions{Addr: "127.0.0.1:0", Parser: syslog.NewParser(syslog.Options{}),
			BatchSize: 1000, QueueEvents: 20_000, ReceiveBuffer: 8 << 20}, quiet)
		if err := src.Start(context.Background(), p.proc); err != nil {
			b.Fatal(err)
		}
		defer src.Stop()
		c, err := net.Dial("udp", src.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		msg := syslogMessages(1)
		msg = msg[:len(msg)-1]
		b.ResetTimer()
		start := time.Now()
		sent := 0
		for tick := 0; sent < b.N; tick++ {
			for range 100 { // 100 per millisecond = 100k/s
				if _, err := c.Write(msg); err == nil {
					sent++
				}
			}
			if d := time.Until(start.Add(time.Duration(tick+1) * time.Millisecond)); d > 0 {
				time.Sleep(d)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for p.taken.Load() < int64(sent) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		m := src.FlumeMetrics()
		lost := int64(sent) - p.taken.Load()
		b.ReportMetric(float64(sent)/time.Since(start).Seconds(), "sent/s")
		b.ReportMetric(float64(lost), "lost")
		b.ReportMetric(float64(src.ReceiveBuffer()), "SO_RCVBUF")
		if m["SyslogDroppedCount"] != "0" {
			b.Logf("queue drops: %s", m["SyslogDroppedCount"])
		}
	})
}

// BenchmarkHTTPJSON posts batches of 100 JSON events of ~200 bytes from 4
// keep-alive clients.
func BenchmarkHTTPJSON(b *testing.B) {
	b.Run("handler=json/batch=100/size=200", func(b *testing.B) {
		p := newMemoryPipe(b)
		defer p.stop()
		src := source.NewHTTP("r1", source.HTTPOptions{Addr: "127.0.0.1:0"}, quiet)
		if err := src.Start(context.Background(), p.proc); err != nil {
			b.Fatal(err)
		}
		defer src.Stop()
		var body strings.Builder
		body.WriteString("[")
		for i := range 100 {
			if i > 0 {
				body.WriteString(",")
			}
			fmt.Fprintf(&body, `{"headers":{"host":"web%02d","app":"shop"},"body":"%s"}`, i%50, strings.Repeat("x", 200))
		}
		body.WriteString("]")
		payload := []byte(body.String())
		url := "http://" + src.Addr().String() + "/"
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
		var next atomic.Int64
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(100) <= int64(b.N)+99 {
					resp, err := client.Post(url, "application/json", bytes.NewReader(payload))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			}()
		}
		wg.Wait()
		el := time.Since(start)
		b.StopTimer()
		accepted, _ := strconv.ParseInt(src.FlumeMetrics()["EventAcceptedCount"], 10, 64)
		b.ReportMetric(float64(accepted)/el.Seconds(), "events/s")
	})
}
