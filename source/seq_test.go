package source

// The seq source (FLUME.md §2.6): bodies are the decimal counter from 0, no
// headers; a refused batch is offered again with the same numbers; after
// totalEvents only Backoff; Flume's counters (EventAcceptedCount, and
// AppendBatchAcceptedCount only for batchSize > 1, ChannelWriteFail).

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/source/internal/sourcetest"
)

func newTestSeq(t *testing.T, snippet string) (*Seq, *fakeChannel) {
	t.Helper()
	c := config.FromMap("a1.sources.r1.", sourcetest.Props(t, snippet))
	c.Check(seqType)
	src, err := newSeqSource("r1", c, sourcetest.DiscardLog())
	if ps := sourcetest.Problems(c); err != nil || len(ps) > 0 {
		t.Fatalf("newSeqSource: %v %q", err, ps)
	}
	ch := newFakeChannel("c1")
	pc := config.FromMap("a1.sources.r1.", nil)
	p, err := NewChannelProcessor(pc, []channel.Channel{ch}, sourcetest.DiscardLog())
	if err != nil {
		t.Fatal(err)
	}
	s := src.(*Seq)
	if err := s.Start(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s, ch
}

func numbers(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

func process(t *testing.T, s *Seq) Status {
	t.Helper()
	st, err := s.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestSeqOneByOne(t *testing.T) {
	s, ch := newTestSeq(t, `totalEvents = 3`)
	for i := range 3 {
		if st := process(t, s); st != Ready {
			t.Fatalf("call %d: %v", i, st)
		}
	}
	if st := process(t, s); st != Backoff {
		t.Errorf("after totalEvents: %v, want Backoff", st)
	}
	if got := ch.bodies(); !slices.Equal(got, numbers(0, 3)) {
		t.Errorf("bodies %q", got)
	}
	for _, e := range ch.events() {
		if len(e.Headers) != 0 {
			t.Errorf("headers %v", e.Headers)
		}
	}
	m := s.FlumeMetrics()
	if m["EventAcceptedCount"] != "3" || m["AppendBatchAcceptedCount"] != "0" || m["ChannelWriteFail"] != "0" {
		t.Errorf("counters %v", m)
	}
}

func TestSeqBatchesCutAtTotalEvents(t *testing.T) {
	s, ch := newTestSeq(t, "batchSize = 3\ntotalEvents = 7")
	got := []Status{process(t, s), process(t, s), process(t, s), process(t, s)}
	if want := []Status{Ready, Ready, Backoff, Backoff}; !slices.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	if b := ch.bodies(); !slices.Equal(b, numbers(0, 7)) {
		t.Errorf("bodies %q", b)
	}
	m := s.FlumeMetrics()
	if m["EventAcceptedCount"] != "7" || m["AppendBatchAcceptedCount"] != "3" {
		t.Errorf("counters %v", m)
	}
}

func TestSeqRetriesTheSameNumbersAfterARefusal(t *testing.T) {
	s, ch := newTestSeq(t, "batchSize = 2\ntotalEvents = 4")
	ch.setRefuse(2)
	if st := process(t, s); st != Backoff {
		t.Errorf("refused batch: %v, want Backoff", st)
	}
	process(t, s)
	for process(t, s) == Ready {
	}
	if b := ch.bodies(); !slices.Equal(b, numbers(0, 4)) {
		t.Errorf("bodies %q, want each number once in order", b)
	}
	m := s.FlumeMetrics()
	if m["ChannelWriteFail"] != "2" || m["EventAcceptedCount"] != "4" {
		t.Errorf("counters %v", m)
	}
}

func TestSeqUnderTheRunnerDeliversExactlyTotalEvents(t *testing.T) {
	s, ch := newTestSeq(t, "batchSize = 10\ntotalEvents = 1000\nbackoffSleepIncrement = 1\nmaxBackoffSleep = 2")
	ch.setRefuse(5)
	r := NewRunner(s, sourcetest.DiscardLog())
	go r.Run(context.Background())
	await.True(t, "1000 events", func() bool { return len(ch.bodies()) == 1000 })
	r.Stop()
	if b := ch.bodies(); !slices.Equal(b, numbers(0, 1000)) {
		t.Errorf("got %d events, not 0..999 in order", len(b))
	}
}

func TestSeqConfiguration(t *testing.T) {
	s, _ := newTestSeq(t, ``)
	if inc, max := s.Backoff(); inc != time.Second || max != 5*time.Second || s.BatchSize() != 1 {
		t.Errorf("defaults: %v %v batch %d", inc, max, s.BatchSize())
	}
	for snippet, want := range map[string]string{
		`batchSize = 0`:               "batchSize: must be positive",
		`totalEvents = -1`:            "totalEvents: must not be negative",
		`maxBackoffSleep = 10`:        "maxBackoffSleep: must be at least backoffSleepIncrement",
		`backoffSleepIncrement = abc`: "not an integer",
		`batchsize = 5`:               "batchsize: unknown key (did you mean batchSize?)",
	} {
		c := config.FromMap("a1.sources.r1.", sourcetest.Props(t, snippet))
		c.Check(seqType)
		_, _ = newSeqSource("r1", c, sourcetest.DiscardLog())
		if p := strings.Join(sourcetest.Problems(c), "\n"); !strings.Contains(p, want) {
			t.Errorf("%s: problems %q do not mention %q", snippet, p, want)
		}
	}
}
