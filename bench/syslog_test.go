package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/syslog"
	"github.com/flumed/flumed/source"
)

// syslogMessages returns n RFC 3164 messages of 200 bytes each, newline
// terminated, as one block a sender writes in a loop.
func syslogMessages(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		line := fmt.Sprintf("<13>Apr 13 11:11:11 web%02d app[123]: request %08d served ", i%50, i)
		for len(line) < 199 {
			line += "x"
		}
		b.WriteString(line + "\n")
	}
	return b.Bytes()
}

// drainMemory takes from ch until stop, counting events.
func drainMemory(ch *channel.Memory, n *atomic.Int64, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		tx := ch.Begin()
		evs, err := tx.Take(1000)
		if err != nil {
			tx.Rollback()
			return
		}
		tx.Commit()
		n.Add(int64(len(evs)))
		if len(evs) == 0 {
			time.Sleep(50 * time.Microsecond)
		}
	}
}

// BenchmarkSyslogTCP sends 200-byte RFC 3164 messages over one TCP
// connection to the syslogtcp source into a memory channel, next to two
// baselines on the same input: a raw TCP reader that only splits lines, and
// one that also puts each line as an event (no parsing) into a memory
// channel in batches of 1000, which is the work the source does minus
// syslog parsing.
func BenchmarkSyslogTCP(b *testing.B) {
	block := syslogMessages(1000)
	send := func(b *testing.B, addr string, received func() int64) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ResetTimer()
		start, cpu := time.Now(), processCPU()
		sent := 0
		for sent < b.N {
			if _, err := c.Write(block); err != nil {
				b.Fatal(err)
			}
			sent += 1000
		}
		for received() < int64(sent) {
			time.Sleep(100 * time.Microsecond)
		}
		el := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(sent)/el.Seconds(), "msgs/s")
		b.ReportMetric(float64(sent*200)/el.Seconds()/1e6, "MB/s")
		// What the whole process (sender and drainer included) spent per
		// message: on a machine whose cores are busy with other work this,
		// more than msgs/s, says what the path costs.
		b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(sent), "cpu-ns/msg")
	}

	b.Run("path=raw-line-reader/size=200", func(b *testing.B) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		var n atomic.Int64
		go func() {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			r := bufio.NewReaderSize(c, 64<<10)
			for {
				if _, err := r.ReadSlice('\n'); err != nil {
					if err == io.EOF {
						return
					}
					if err != bufio.ErrBufferFull {
						return
					}
				}
				n.Add(1)
			}
		}()
		send(b, l.Addr().String(), n.Load)
	})

	b.Run("path=raw-lines-memory-channel/size=200", func(b *testing.B) {
		mem := channel.NewMemory("c1", channel.MemoryOptions{Capacity: 100_000, TransactionCapacity: 1000})
		defer mem.Close()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		go func() {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			r := bufio.NewReaderSize(c, 64<<10)
			batch := make([]channel.Event, 0, 1000)
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					return
				}
				batch = append(batch, channel.Event{Headers: map[string]string{}, Body: bytes.Clone(line[:len(line)-1])})
				if len(batch) == cap(batch) || r.Buffered() == 0 {
					tx := mem.Begin()
					if tx.Put(batch...) != nil || tx.Commit() != nil {
						tx.Rollback()
						return
					}
					batch = make([]channel.Event, 0, 1000)
				}
			}
		}()
		var n atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); drainMemory(mem, &n, stop) }()
		defer func() { close(stop); wg.Wait() }()
		send(b, l.Addr().String(), n.Load)
	})

	b.Run("path=syslogtcp-memory-channel/size=200", func(b *testing.B) {
		mem := channel.NewMemory("c1", channel.MemoryOptions{Capacity: 100_000, TransactionCapacity: 1000})
		defer mem.Close()
		proc, err := source.NewChannelProcessor(config.FromMap("a1.sources.r1.", nil), []channel.Channel{mem}, quiet)
		if err != nil {
			b.Fatal(err)
		}
		src := source.NewSyslogTCP("r1", source.SyslogTCPOptions{
			BatchSize: 1000,
			Ports:     []source.SyslogPort{{Addr: "127.0.0.1:0", Parser: syslog.NewParser(syslog.Options{OctetCounting: true})}},
		}, quiet)
		if err := src.Start(context.Background(), proc); err != nil {
			b.Fatal(err)
		}
		defer src.Stop()
		var n atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); drainMemory(mem, &n, stop) }()
		defer func() { close(stop); wg.Wait() }()
		send(b, src.Addrs()[0].String(), n.Load)
	})
}
