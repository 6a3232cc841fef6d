package agent

// The reload's cost where it matters: a 50-component agent (10 memory
// channels at the default keep-alive, 20 lone null sinks, 20 seq sources
// that have finished, so every sink waits on an empty channel) reloaded
// with one sink's batch size changed. swap-ms is the reload after its
// build (stop the old sink, start the new one); puts-paused-ms is how long
// any source was stopped; put-gap-ms is the longest wait between two puts
// committed by a writer into the changed sink's channel during the reload.
// Targets (issue 13): swap ≤ 100 ms, puts stopped ≤ 10 ms.
//
// It lives here rather than in bench/ because the agent is internal to
// cmd/flumed.

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
)

func fiftyComponents(batch int) string {
	var b strings.Builder
	var srcs, chans, sinks []string
	for i := range 10 {
		chans = append(chans, fmt.Sprintf("c%d", i))
		fmt.Fprintf(&b, "a1.channels.c%d.type = memory\na1.channels.c%d.capacity = 10000\n", i, i)
	}
	for i := range 20 {
		sinks = append(sinks, fmt.Sprintf("k%d", i))
		fmt.Fprintf(&b, "a1.sinks.k%d.type = null\na1.sinks.k%d.channel = c%d\n", i, i, i%10)
		srcs = append(srcs, fmt.Sprintf("r%d", i))
		fmt.Fprintf(&b, "a1.sources.r%d.type = seq\na1.sources.r%d.channels = c%d\na1.sources.r%d.totalEvents = 1\n", i, i, i%10, i)
	}
	fmt.Fprintf(&b, "a1.sinks.k0.batchSize = %d\n", batch)
	return fmt.Sprintf("a1.sources = %s\na1.channels = %s\na1.sinks = %s\n", strings.Join(srcs, " "),
		strings.Join(chans, " "), strings.Join(sinks, " ")) + b.String()
}

func BenchmarkReload(b *testing.B) {
	// writer=none: k0's channel is idle, so the old k0 is in a take waiting
	// for the keep-alive (3 s) when the reload stops it.
	for _, writer := range []bool{false, true} {
		name := "components=50/changed=sink/writer=none"
		if writer {
			name = "components=50/changed=sink/writer=steady"
		}
		b.Run(name, func(b *testing.B) { benchReload(b, writer) })
	}
}

func benchReload(b *testing.B, writer bool) {
	confs := [2]string{fiftyComponents(100), fiftyComponents(50)}
	parse := func(i int) *config.Agent {
		return config.Build(config.Options{}, config.Source{Name: "b.properties", Data: []byte(confs[i%2])}).Agent("")
	}
	a, err := Build(parse(0), Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Start(); err != nil {
		b.Fatal(err)
	}
	defer a.Stop(b.Context())

	// A writer into k0's channel, timing the gaps between its commits.
	ch := a.channels[0].channel()
	var maxGap atomic.Int64
	var measuring atomic.Bool
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if !writer {
			return
		}
		last := time.Now()
		ev := channel.Event{Body: []byte("x")}
		for {
			select {
			case <-stop:
				return
			default:
			}
			tx := ch.Begin()
			if err := tx.Put(ev); err != nil {
				_ = tx.Rollback()
				continue
			}
			if err := tx.Commit(); err != nil {
				continue
			}
			now := time.Now()
			if gap := now.Sub(last); measuring.Load() && gap.Nanoseconds() > maxGap.Load() {
				maxGap.Store(gap.Nanoseconds())
			}
			last = now
			time.Sleep(100 * time.Microsecond) // a steady writer, not a spinning one
		}
	}()
	defer func() { close(stop); <-done }()

	var swap, maxSwap, paused time.Duration
	b.ResetTimer()
	for i := range b.N {
		ca := parse(i + 1)
		measuring.Store(true)
		rep, err := a.Reload(ca)
		measuring.Store(false)
		if err != nil {
			b.Fatal(err)
		}
		if len(rep.Started) != 1 || len(rep.Stopped) != 1 {
			b.Fatalf("report %+v", rep)
		}
		swap += rep.Swap
		maxSwap = max(maxSwap, rep.Swap)
		paused = max(paused, rep.PutsPaused)
	}
	b.StopTimer()
	b.ReportMetric(float64(swap.Microseconds())/float64(b.N)/1000, "swap-ms")
	b.ReportMetric(float64(maxSwap.Microseconds())/1000, "max-swap-ms")
	b.ReportMetric(float64(paused.Microseconds())/1000, "puts-paused-ms")
	if writer {
		b.ReportMetric(float64(maxGap.Load())/1e6, "max-put-gap-ms")
	}
}
