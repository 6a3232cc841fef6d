package source

// Sources through the channel processor into the real memory channel, with a
// slow taker on the other side: the channel fills up, puts fail with
// channel.ErrFull, and still every line and every number arrives exactly
// once, in order. The sources of the subpackages are built through the
// registry, as the agent builds them.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/counter"
	"github.com/flumed/flumed/source/internal/sourcetest"
)

// drain takes from ch in small transactions, more slowly than the sources
// put, until it has want events (or await.Limit passed); it returns the
// bodies in order.
func drain(t *testing.T, ch channel.Channel, want int) []string {
	t.Helper()
	var got []string
	deadline := time.Now().Add(await.Limit)
	for len(got) < want && time.Now().Before(deadline) {
		got = append(got, take(t, ch, 7)...)
		time.Sleep(200 * time.Microsecond) // pacing: a taker slower than the source
	}
	return got
}

// take takes up to max events from ch in one transaction and returns their
// bodies.
func take(t *testing.T, ch channel.Channel, max int) []string {
	t.Helper()
	tx := ch.Begin()
	evs, err := tx.Take(max)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = string(e.Body)
	}
	return out
}

func memoryProcessor(t *testing.T, name string) (*channel.Memory, *ChannelProcessor) {
	t.Helper()
	mem := channel.NewMemory(name, channel.MemoryOptions{Capacity: 50, TransactionCapacity: 20})
	t.Cleanup(func() { _ = mem.Close() })
	p, err := NewChannelProcessor(config.FromMap("a1.sources.r1.", nil), []channel.Channel{mem}, sourcetest.DiscardLog())
	if err != nil {
		t.Fatal(err)
	}
	return mem, p
}

func TestExecIntoAFullMemoryChannelLosesNothing(t *testing.T) {
	const lines = 3000
	mem, p := memoryProcessor(t, "c1")
	c := config.FromMap("a1.sources.r1.", map[string]string{
		"command": fmt.Sprintf("seq 1 %d", lines), "batchSize": "20",
	})
	c.Check(execType)
	src, err := newExecSource("r1", c, sourcetest.DiscardLog())
	if err != nil {
		t.Fatal(err)
	}
	s := src.(*Exec)
	s.opts.retryMin, s.opts.retryMax = time.Millisecond, 2*time.Millisecond
	if err := s.Start(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	got := drain(t, mem, lines)
	if !slices.Equal(got, numbers(1, lines+1)) {
		t.Fatalf("drained %d lines, not 1..%d once each in order", len(got), lines)
	}
	if metric(s, "ChannelWriteFail") == 0 {
		t.Log("the channel never filled up; the test proved less than it meant to")
	}
}

func TestSeqIntoAFullMemoryChannelLosesNothing(t *testing.T) {
	const total = 3000
	mem, p := memoryProcessor(t, "c1")
	c := config.FromMap("a1.sources.r1.", map[string]string{
		"batchSize": "20", "totalEvents": fmt.Sprint(total), "backoffSleepIncrement": "1", "maxBackoffSleep": "2",
	})
	c.Check(seqType)
	src, err := newSeqSource("r1", c, sourcetest.DiscardLog())
	if err != nil {
		t.Fatal(err)
	}
	s := src.(*Seq)
	if err := s.Start(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	r := NewRunner(s, sourcetest.DiscardLog())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(context.Background()) })
	got := drain(t, mem, total)
	r.Stop()
	wg.Wait()
	if !slices.Equal(got, numbers(0, total)) {
		t.Fatalf("drained %d numbers, not 0..%d once each in order", len(got), total-1)
	}
	if m := s.FlumeMetrics(); m["EventAcceptedCount"] != fmt.Sprint(total) {
		t.Errorf("EventAcceptedCount %s", m["EventAcceptedCount"])
	}
}

func TestNetcatRepliesWithTheMemoryChannelsReason(t *testing.T) {
	mem := channel.NewMemory("c1", channel.MemoryOptions{Capacity: 1, TransactionCapacity: 1})
	defer mem.Close()
	p, err := NewChannelProcessor(config.FromMap("a1.sources.r1.", nil), []channel.Channel{mem}, sourcetest.DiscardLog())
	if err != nil {
		t.Fatal(err)
	}
	c := config.FromMap("a1.sources.r1.", map[string]string{"bind": "127.0.0.1", "port": "0"})
	c.Check(netcatType)
	src, err := newNetcatSource("r1", c, sourcetest.DiscardLog())
	if err != nil {
		t.Fatal(err)
	}
	s := src.(*Netcat)
	if err := s.Start(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	cl := dial(t, s)
	cl.send("fits\ndoes not\n")
	if r := cl.reply(); r != "OK\n" {
		t.Errorf("reply %q", r)
	}
	if r := cl.reply(); !strings.HasPrefix(r, "FAILED: commit 1 events on channel c1: ") || !strings.Contains(r, "capacity 1") {
		t.Errorf("reply %q does not give the channel's reason", r)
	}
}

func TestTaildirIntoAFullMemoryChannelLosesNothing(t *testing.T) {
	const lines = 2000
	mem, p := memoryProcessor(t, "c1")
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	newTaildir, _ := Lookup("taildir")
	c := config.FromMap("a1.sources.r1.", map[string]string{"filegroups": "g", "filegroups.g": dir + `/a\.log`,
		"batchSize": "20", "positionFile": filepath.Join(dir, "pos.json"), "rescanInterval": "20"})
	src, err := newTaildir("r1", c, sourcetest.DiscardLog())
	if err != nil {
		t.Fatal(err)
	}
	poll := sourcetest.Run(t, src.(Pollable), p)
	var got []string
	written := 0
	deadline := time.Now().Add(await.Limit)
	for len(got) < lines {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d lines arrived within %v", len(got), lines, await.Limit)
		}
		if written < lines && written-len(got) < 200 { // the writer keeps ahead of the taker
			appendNumberedLines(t, path, written, 200)
			written += 200
		}
		got = append(got, take(t, mem, 7)...)
		time.Sleep(time.Millisecond) // pacing: a taker slower than the source fills the channel
	}
	mark := time.Now()
	await.Never(t, "a line beyond the ones written",
		func() bool { got = append(got, take(t, mem, 20)...); return len(got) > lines },
		func() bool { return poll.PolledSince(mark.Add(100*time.Millisecond)) >= 3 })
	sourcetest.ExactlyOnce(t, got, lines)
	if src.(counter.Monitored).FlumeMetrics()["ChannelWriteFail"] == "0" {
		t.Error("the channel was never full; the test proves nothing")
	}
}

// appendNumberedLines appends lines from..from+n-1 to path in sourcetest's
// numbered format.
func appendNumberedLines(t *testing.T, path string, from, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b []byte
	for i := from; i < from+n; i++ {
		b = fmt.Appendf(b, "seq=%07d gen=000 %s\n", i, strings.Repeat("x", 70))
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}
