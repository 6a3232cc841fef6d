package agent

// A running agent starts channels, then sinks (with their runners), then
// sources, each in configuration order; it stops sources first, lets the
// sinks drain the channels until empty (or the drain timeout, or an abort),
// then stops the sinks and closes the channels. A part that fails to start is
// retried with backoff by the supervisor, and what depends on a channel waits
// until it is open. These tests run the real seq source, memory channel and
// null/logger sinks, wrapped to record their lifecycle calls.

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
)

// twoSinks is seq → memory → two null sinks, each in its own runner.
const twoSinks = `a1.sources = r1
a1.channels = c1
a1.sinks = k1 k2
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.sources.r1.totalEvents = 500
a1.sources.r1.batchSize = 50
a1.channels.c1.type = memory
a1.channels.c1.capacity = 1000
a1.channels.c1.keep-alive = 0
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k2.type = null
a1.sinks.k2.channel = c1
`

func TestStartAndStopFollowFlumesOrder(t *testing.T) {
	rec := &recorder{}
	opts := fastOptions(nil)
	opts.lookup = recordingRegistries(rec, &faults{})
	a := agentFrom(t, twoSinks, opts)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	await.True(t, "every event taken", func() bool {
		return a.channels[0].channel().Stats().TakeSuccesses == 500
	})
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"open c1", "start k1", "start k2", "start r1", "stop r1", "stop k2", "stop k1", "close c1 (size 0)"}
	if got := rec.list(); !reflect.DeepEqual(got, want) {
		t.Fatalf("lifecycle\n got %q\nwant %q", got, want)
	}
}

func TestStopDrainsTheChannelBeforeClosingIt(t *testing.T) {
	// The sink is held until the stop begins, so the events it drains are
	// drained by the stop, whatever the machine's speed; it is slow too, so
	// the drain takes a while.
	rec := &recorder{}
	hold := make(chan struct{})
	var release sync.Once
	f := &faults{slowSink: 2 * time.Millisecond, hold: hold, onSourceStop: func() { release.Do(func() { close(hold) }) }}
	opts := fastOptions(nil)
	opts.DrainTimeout = 20 * time.Second // generous: the machine may be busy
	opts.lookup = recordingRegistries(rec, f)
	text := strings.NewReplacer("totalEvents = 500", "totalEvents = 150", "a1.sinks = k1 k2", "a1.sinks = k1").Replace(twoSinks) +
		"a1.sinks.k1.batchSize = 1\n"
	text = strings.Replace(text, "a1.sinks.k2.type = null\na1.sinks.k2.channel = c1\n", "", 1)
	a := agentFrom(t, text, opts)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	ch := a.channels[0].channel()
	await.True(t, "the source to finish", func() bool { return ch.Stats().PutSuccesses == 150 })
	if size := ch.Stats().Size; size != 150 {
		t.Fatalf("the sink took %d events before the stop: the test would prove less", 150-size)
	}
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := ch.Stats(); st.Size != 0 || st.TakeSuccesses != 150 {
		t.Fatalf("after stop: size %d, taken %d", st.Size, st.TakeSuccesses)
	}
	got := rec.list()
	if got[len(got)-1] != "close c1 (size 0)" {
		t.Fatalf("lifecycle %q", got)
	}
}

func TestStoppingWithAnEmptyMemoryChannelDoesNotWaitOutItsKeepAlive(t *testing.T) {
	// The sink's take waits keep-alive on an empty memory channel; once the
	// sources have stopped no put can end that wait, so the agent tells the
	// channel, and the take (and the stop) return at once.
	const keepAlive = 30 * time.Second
	opts := fastOptions(nil) // the real registries: the memory channel itself
	opts.DrainTimeout = time.Minute
	text := strings.NewReplacer("keep-alive = 0", "keep-alive = 30", "totalEvents = 500", "totalEvents = 20").Replace(twoSinks)
	a := agentFrom(t, text, opts)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	ch := a.channels[0].channel()
	await.True(t, "every event taken", func() bool { return ch.Stats().TakeSuccesses == 20 })
	done := make(chan error, 1)
	go func() { done <- a.Stop(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(keepAlive / 2):
		t.Errorf("stop still waiting after %s: the sinks' empty takes were not woken", keepAlive/2)
		<-done
	}
	if st := ch.Stats(); st.TakeSuccesses != 20 || st.Size != 0 {
		t.Fatalf("after stop: %+v", st)
	}
}

func TestTheDrainEndsAtItsTimeoutAndEventsStayInTheChannel(t *testing.T) {
	f := &faults{}
	f.failDelivery.Store(true)
	opts := fastOptions(nil)
	opts.DrainTimeout = 100 * time.Millisecond
	opts.lookup = recordingRegistries(&recorder{}, f)
	text := strings.Replace(twoSinks, "totalEvents = 500", "totalEvents = 100", 1)
	a := agentFrom(t, text, opts)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	ch := a.channels[0].channel()
	await.True(t, "the source to finish", func() bool { return ch.Stats().PutSuccesses == 100 })
	start := time.Now()
	err := a.Stop(context.Background())
	if err == nil {
		t.Fatal("Stop reported no error although the channel was not drained")
	}
	// Generous for a busy machine, and still far from the drain that an
	// ignored timeout would be (it never ends: nothing can be delivered).
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("stop took %v with a 100 ms drain timeout", took)
	}
	if size := ch.Stats().Size; size != 100 {
		t.Fatalf("%d events left, want all 100 kept", size)
	}
}

func TestAnAbortCutsTheDrainShort(t *testing.T) {
	f := &faults{}
	f.failDelivery.Store(true)
	opts := fastOptions(nil)
	opts.DrainTimeout = time.Minute
	opts.lookup = recordingRegistries(&recorder{}, f)
	a := agentFrom(t, twoSinks, opts)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	ch := a.channels[0].channel()
	await.True(t, "the source to finish", func() bool { return ch.Stats().PutSuccesses == 500 })
	ctx, abort := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, abort)
	start := time.Now()
	if err := a.Stop(ctx); err == nil {
		t.Fatal("an aborted drain reported no error")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("an aborted stop took %v", took)
	}
	if size := ch.Stats().Size; size != 500 {
		t.Fatalf("%d events left, want all 500 kept", size)
	}
}

func TestAChannelThatFailsToOpenIsRetriedAndItsDependentsWait(t *testing.T) {
	// The open that succeeds is held until the agent has been looked at, so
	// what is seen is the agent after its first attempts, however slow the
	// machine (the failed retries run meanwhile).
	rec := &recorder{}
	retry := make(chan struct{})
	f := &faults{openFailures: map[string]*atomic.Int64{"c1": failTimes(2)}, retryHold: retry}
	var logs logBuffer
	log, _ := NewLogger(&logs, LogOptions{Level: "debug"})
	opts := fastOptions(log)
	opts.lookup = recordingRegistries(rec, f)
	a := agentFrom(t, twoSinks, opts)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if ok, down := a.Ready(); ok || len(down) != 4 {
		t.Errorf("ready %v with %v down, want the channel and its three dependents down", ok, down)
	}
	close(retry)
	await.True(t, "the agent to be ready", func() bool { ok, _ := a.Ready(); return ok })
	await.True(t, "every event taken", func() bool {
		return a.channels[0].channel().Stats().TakeSuccesses == 500
	})
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := rec.list()
	want := []string{"open c1 failed", "open c1 failed", "open c1"}
	if !reflect.DeepEqual(got[:3], want) {
		t.Fatalf("lifecycle %q", got)
	}
	for _, w := range []string{"waiting for its channels to open", "start failed; retrying", "scripted open failure"} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, logs.String())
		}
	}
}

func TestASinkThatFailsToStartIsRestartedWithBackoff(t *testing.T) {
	rec := &recorder{}
	f := &faults{startFailures: map[string]*atomic.Int64{"k1": failTimes(3)}}
	opts := fastOptions(nil)
	opts.RestartMin, opts.RestartMax = 20*time.Millisecond, 80*time.Millisecond
	opts.lookup = recordingRegistries(rec, f)
	a := agentFrom(t, twoSinks, opts)
	start := time.Now()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	await.True(t, "the agent to be ready", func() bool { ok, _ := a.Ready(); return ok })
	// Three failures: 20 ms, then 40, then 80 (capped) before the attempts.
	if took := time.Since(start); took < 140*time.Millisecond {
		t.Errorf("ready after %v: the supervisor did not back off", took)
	}
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	var k1 []string
	for _, e := range rec.list() {
		if strings.HasSuffix(e, "k1") || strings.HasSuffix(e, "k1 failed") {
			k1 = append(k1, e)
		}
	}
	want := []string{"start k1 failed", "start k1 failed", "start k1 failed", "start k1", "stop k1"}
	if !reflect.DeepEqual(k1, want) {
		t.Fatalf("k1 lifecycle %q, want %q", k1, want)
	}
}

func TestASinkThatPanicsInStartIsRetriedNotFatal(t *testing.T) {
	// k2's retry is held until Start has returned, so the first attempts are
	// recorded in start order however slow the machine.
	rec := &recorder{}
	retry := make(chan struct{})
	f := &faults{startPanics: map[string]*atomic.Int64{"k2": failTimes(1)}, retryHold: retry}
	opts := fastOptions(nil)
	opts.lookup = recordingRegistries(rec, f)
	a := agentFrom(t, twoSinks, opts)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	close(retry)
	await.True(t, "the agent to be ready", func() bool { ok, _ := a.Ready(); return ok })
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := rec.list()
	if !reflect.DeepEqual(got[:4], []string{"open c1", "start k1", "start k2 panicked", "start r1"}) {
		t.Fatalf("lifecycle %q", got)
	}
}

func TestLoggerSinkLinesGoToTheEventWriter(t *testing.T) {
	var out syncBuffer
	opts := fastOptions(nil)
	opts.EventOut = &out
	text := strings.NewReplacer("totalEvents = 500", "totalEvents = 3", "a1.sinks = k1 k2", "a1.sinks = k1", "k1.type = null", "k1.type = logger").Replace(twoSinks)
	text = strings.Replace(text, "a1.sinks.k2.type = null\na1.sinks.k2.channel = c1\n", "", 1)
	a := agentFrom(t, text, opts)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	await.True(t, "three event lines", func() bool { return strings.Count(out.String(), "\n") == 3 })
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "Event: { headers:{} body: 30                                              0 }\n"
	if !strings.HasPrefix(out.String(), want) {
		t.Fatalf("first line %q, want %q", out.String(), want)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
