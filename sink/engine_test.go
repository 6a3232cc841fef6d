package sink

// The engine is the one take–deliver–commit step (FLUME.md §3.1), here with
// a synchronous delivery as the logger, null and file_roll sinks have: an
// empty take commits and returns BACKOFF; a delivered batch commits and
// returns READY; a failed delivery rolls back (events back at the head, in
// order) and returns the error; a channel failure rolls back and returns
// BACKOFF without an error, so it never drives failover. Flume's SinkCounter
// counts each step. On a channel whose take commits each cost a sync, the
// runner delivers on while a committer commits in groups, holding at most
// Window(depth) batches uncommitted, and backs off only once all are
// committed. The null sink is the engine with a no-op delivery and no
// counters. (avro_pipeline_test.go has the engine with batches in flight.)

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/counter"
)

// taker is an engine at the synchronous sinks' depth whose delivery each
// Process call chooses.
type taker struct {
	eng     *Engine
	deliver DeliverFunc
}

func newTaker(ch channel.Channel, size int) (*taker, *counter.Sink) {
	cnt := &counter.Sink{}
	tk := &taker{}
	tk.eng = NewEngine(EngineOptions{Sink: "k1", Channel: ch, BatchSize: size, Depth: DefaultPipelineDepth, Counter: cnt},
		DeliverFunc(func(ctx context.Context, es []channel.Event) error { return tk.deliver(ctx, es) }))
	return tk, cnt
}

func (tk *taker) Process(ctx context.Context, deliver DeliverFunc) (Status, error) {
	tk.deliver = deliver
	return tk.eng.Process(ctx)
}

// Wait waits for the commits under way.
func (tk *taker) Wait() { _ = tk.eng.Settle(context.Background()) }

func TestTheEngineCountsLikeFlume(t *testing.T) {
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

func TestADeliveryFailureRollsBackInOrder(t *testing.T) {
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

func TestChannelFailuresAreBackoffNotErrors(t *testing.T) {
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

func TestTheEngineRollsBackWhenDeliveryPanics(t *testing.T) {
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
	if err := c.Problems().Err(); err != nil || s.(BatchSizer).BatchSize() != 500 {
		t.Fatalf("problems %v, batch %d", err, s.(BatchSizer).BatchSize())
	}
	c = config.FromMap("a1.sinks.k1.", map[string]string{"batchSize": "0"})
	f("k1", c, nil)
	if c.Problems().Err() == nil {
		t.Fatal("batchSize 0 accepted")
	}
}

// syncingChannel is a channel whose take commits each cost a sync, so the
// engine hands them to its committer.
type syncingChannel struct{ channel.Channel }

func (syncingChannel) SyncsTakeCommits() bool { return true }

func (c syncingChannel) CommitAll(txns []channel.Txn) []error {
	return channel.CommitAll(c.Channel, txns)
}

func TestTheRunnerDeliversOnWhileACommitSyncsUpToTheWindowAndBacksOffOnlyOnceAllAreCommitted(t *testing.T) {
	mem := newMemoryWith(t, 3000)
	ch := &gatedChannel{Channel: mem, open: make(chan struct{})}
	var opened sync.Once
	openGate := func() { opened.Do(func() { close(ch.open) }) }
	t.Cleanup(openGate)
	b, cnt := newTaker(ch, 10)
	var delivered atomic.Int64
	deliver := func(_ context.Context, es []channel.Event) error {
		delivered.Add(int64(len(es)))
		return nil
	}
	done := make(chan error, 1)
	go func() {
		for {
			st, err := b.Process(context.Background(), deliver)
			if err != nil || st == Backoff {
				done <- err
				return
			}
		}
	}()
	// The first commit is stuck: the runner goes on delivering until the
	// window is full, the group being committed and the batches delivered
	// behind it, and then waits for the commit.
	window := int64(Window(DefaultPipelineDepth))
	await.True(t, "the runner to wait for the stuck commit", b.eng.committer.waiting)
	if n := delivered.Load(); n != 10*window {
		t.Fatalf("with a commit stuck %d events were delivered, want the window's %d batches of 10", n, window)
	}
	if st := mem.Stats(); st.TakeSuccesses != 0 {
		t.Fatalf("%d events committed through a closed gate", st.TakeSuccesses)
	}
	openGate()
	if err := await.Recv(t, "the runner's Backoff", done); err != nil {
		t.Fatal(err)
	}
	if st := mem.Stats(); st.Size != 0 || st.TakeSuccesses != 3000 || cnt.EventDrainSuccess.Load() != 3000 {
		t.Fatalf("at Backoff: size %d, committed %d, drain successes %d; want 0, 3000, 3000",
			st.Size, st.TakeSuccesses, cnt.EventDrainSuccess.Load())
	}
}

func TestTheEngineBacksOffAfterACommitFailedBehindIt(t *testing.T) {
	fake := newFakeChannel(nil)
	fake.put(bodyEvents("a", "b")...)
	fake.commitErr = errors.New("disk gone")
	b, cnt := newTaker(syncingChannel{fake}, 10)
	var delivered []string
	deliver := func(_ context.Context, es []channel.Event) error {
		for _, e := range es {
			delivered = append(delivered, string(e.Body))
		}
		return nil
	}
	if st, err := b.Process(context.Background(), deliver); st != Ready || err != nil {
		t.Fatalf("first process = %v, %v; want Ready (its commit goes on behind it)", st, err)
	}
	b.Wait() // the commit failed: the events are back at the head
	if st, err := b.Process(context.Background(), deliver); st != Backoff || err != nil || len(delivered) != 2 {
		t.Fatalf("after the failed commit: %v, %v, delivered %v; want Backoff at once, as a synchronous commit", st, err, delivered)
	}
	if st, err := b.Process(context.Background(), deliver); st != Ready || err != nil {
		t.Fatalf("third process = %v, %v", st, err)
	}
	b.Wait()
	if !slices.Equal(delivered, []string{"a", "b", "a", "b"}) || fake.size() != 0 ||
		cnt.ChannelReadFail.Load() != 1 || cnt.EventDrainSuccess.Load() != 2 {
		t.Fatalf("delivered %v, left %d, counters %v", delivered, fake.size(), cnt.FlumeMetrics())
	}
}

func TestNullStopWaitsForTheCommitsUnderWay(t *testing.T) {
	mem := newMemoryWith(t, 10)
	ch := &gatedChannel{Channel: mem, open: make(chan struct{})}
	var opened sync.Once
	openGate := func() { opened.Do(func() { close(ch.open) }) }
	t.Cleanup(openGate)
	s := NewNull("k1", 10, nil)
	if err := s.Start(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	processed := make(chan Status, 1)
	go func() { st, _ := s.Process(context.Background()); processed <- st }()
	if st := await.Recv(t, "Process, with its commit stuck", processed); st != Ready {
		t.Fatalf("process = %v", st)
	}
	eng := s.eng // Stop clears it
	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	await.Never(t, "Stop returning with a commit under way", func() bool { return isClosed(stopped) }, eng.committer.waiting)
	openGate()
	await.Done(t, "Stop", stopped)
	if st := mem.Stats(); st.TakeSuccesses != 10 {
		t.Fatalf("after Stop %d events committed, want 10", st.TakeSuccesses)
	}
}
