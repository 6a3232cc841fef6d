package sink

// BatchTaker is the shared take–deliver–commit step (FLUME.md §3.1): an empty
// take commits and returns BACKOFF; a delivered batch commits and returns
// READY; a failed delivery rolls back (events back at the head, in order) and
// returns the error; a channel failure rolls back and returns BACKOFF without
// an error, so it never drives failover. Flume's SinkCounter counts each step.
// The null sink is a BatchTaker with a no-op delivery and no counters.

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/counter"
)

func newTaker(ch channel.Channel, size int) (*BatchTaker, *counter.Sink) {
	cnt := &counter.Sink{}
	return &BatchTaker{Sink: "k1", Channel: ch, Size: size, Counter: cnt, Log: orDiscard(nil)}, cnt
}

func TestBatchTakerCountsLikeFlume(t *testing.T) {
	ch := newFakeChannel(nil)
	ch.put(numbered(15)...)
	b, cnt := newTaker(ch, 10)
	var got []string
	deliver := func(_ context.Context, es []channel.Event) error {
		for _, e := range es {
			got = append(got, string(e.Body))
		}
		return nil
	}
	for i, want := range []Status{Ready, Ready, Backoff} {
		if st, err := b.Process(context.Background(), deliver); st != want || err != nil {
			t.Fatalf("call %d = %v, %v; want %v", i, st, err, want)
		}
	}
	if len(got) != 15 || got[0] != "e0" || got[14] != "e14" {
		t.Fatalf("delivered %v", got)
	}
	m := cnt.FlumeMetrics()
	for k, v := range map[string]string{
		"BatchCompleteCount": "1", "BatchUnderflowCount": "1", "BatchEmptyCount": "1",
		"EventDrainAttemptCount": "15", "EventDrainSuccessCount": "15", "EventWriteFail": "0", "ChannelReadFail": "0",
	} {
		if m[k] != v {
			t.Errorf("%s = %s, want %s", k, m[k], v)
		}
	}
}

func TestBatchTakerDeliveryFailureRollsBackInOrder(t *testing.T) {
	ch := newFakeChannel(nil)
	ch.put(bodyEvents("a", "b", "c")...)
	b, cnt := newTaker(ch, 2)
	st, err := b.Process(context.Background(), func(context.Context, []channel.Event) error {
		return errors.New("peer reset")
	})
	if st != Backoff || err == nil {
		t.Fatalf("process = %v, %v; want an error", st, err)
	}
	if got := ch.bodies(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("channel = %v, want [a b c]", got)
	}
	if cnt.EventWriteFail.Load() != 1 || cnt.EventDrainSuccess.Load() != 0 || cnt.EventDrainAttempt.Load() != 2 {
		t.Fatalf("counters = %v", cnt.FlumeMetrics())
	}
}

func TestBatchTakerChannelFailuresAreBackoffNotErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		inject  func(*fakeChannel)
		deliver int // deliveries expected
	}{
		{"take fails", func(c *fakeChannel) { c.takeErr = channel.ErrClosed }, 0},
		{"commit fails after delivery", func(c *fakeChannel) { c.commitErr = errors.New("disk gone") }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := newFakeChannel(nil)
			ch.put(bodyEvents("a", "b")...)
			tc.inject(ch)
			b, cnt := newTaker(ch, 10)
			delivered := 0
			st, err := b.Process(context.Background(), func(context.Context, []channel.Event) error {
				delivered++
				return nil
			})
			if st != Backoff || err != nil {
				t.Fatalf("process = %v, %v; want BACKOFF and no error", st, err)
			}
			if delivered != tc.deliver || cnt.ChannelReadFail.Load() != 1 || cnt.EventDrainSuccess.Load() != 0 {
				t.Fatalf("delivered %d, counters %v", delivered, cnt.FlumeMetrics())
			}
			if got := ch.bodies(); !slices.Equal(got, []string{"a", "b"}) {
				t.Fatalf("channel = %v, want the events kept", got)
			}
		})
	}
}

func TestBatchTakerRollsBackWhenDeliveryPanics(t *testing.T) {
	ch := newFakeChannel(nil)
	ch.put(bodyEvents("a")...)
	b, _ := newTaker(ch, 10)
	func() {
		defer func() { _ = recover() }()
		_, _ = b.Process(context.Background(), func(context.Context, []channel.Event) error { panic("bug") })
	}()
	if got := ch.bodies(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("channel = %v, want the event back after the panic", got)
	}
}

func TestNullDrainsTheChannelInBatches(t *testing.T) {
	ch := newFakeChannel(&trace{})
	ch.put(numbered(250)...)
	s := NewNull("k1", 100, nil)
	if err := s.Start(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	for i, want := range []Status{Ready, Ready, Ready, Backoff} {
		if st, err := s.Process(context.Background()); st != want || err != nil {
			t.Fatalf("call %d = %v, %v; want %v", i, st, err, want)
		}
	}
	want := []string{"take 100", "commit", "take 100", "commit", "take 50", "commit", "take 0", "commit"}
	if got := ch.tr.list(); !slices.Equal(got, want) || ch.size() != 0 {
		t.Fatalf("ops = %v (left %d), want %v", got, ch.size(), want)
	}
}

func TestNullConfig(t *testing.T) {
	f, ok := Lookup("org.apache.flume.sink.NullSink")
	if !ok {
		t.Fatal("null sink class name not registered")
	}
	c := config.FromMap("a1.sinks.k1.", map[string]string{"batchSize": "500"})
	s, _ := f("k1", c, nil)
	c.Finish()
	if err := c.Problems().Err(); err != nil || s.(BatchSizer).BatchSize() != 500 {
		t.Fatalf("problems %v, batch %d", err, s.(BatchSizer).BatchSize())
	}
	c = config.FromMap("a1.sinks.k1.", map[string]string{"batchSize": "0"})
	f("k1", c, nil)
	if c.Problems().Err() == nil {
		t.Fatal("batchSize 0 accepted")
	}
}
