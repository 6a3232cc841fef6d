package agent

// /readyz says no, with the reason, before the agent starts, from the
// moment its stop begins (while the sinks drain), while a part is not
// running (it failed to start, or waits for a channel), and once every sink
// of a group has failed for longer than FailingAfter; a delivery that
// succeeds makes the group ready again. The failing time is measured on a
// fake clock: that duration is what the tests assert.

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/clock"
)

func TestAGroupWhoseEverySinkFailsIsNotReadyAfterTheThreshold(t *testing.T) {
	clk := clock.NewFake()
	f := &faults{}
	f.failDelivery.Store(true)
	opts := fastOptions(nil)
	opts.Clock = clk
	opts.FailingAfter = time.Minute
	opts.lookup = recordingRegistries(&recorder{}, f)
	a := agentFrom(t, reloadBase, opts)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	g := a.groups[0]
	await.True(t, "a failed delivery", func() bool {
		g.health.mu.Lock()
		defer g.health.mu.Unlock()
		return !g.health.since.IsZero()
	})
	clk.Advance(time.Minute)
	if ok, why := a.Ready(); !ok {
		t.Fatalf("not ready after exactly the threshold: %v", why)
	}
	clk.Advance(time.Second)
	ok, why := a.Ready()
	if ok || len(why) != 1 || why[0] != "sink group k1: every sink has failed for 1m1s" {
		t.Fatalf("ready %v, %q", ok, why)
	}
	f.failDelivery.Store(false)
	await.True(t, "ready again after a delivery", func() bool { ok, _ := a.Ready(); return ok })
}

func TestReadyzSaysStoppingWhileTheSinksDrain(t *testing.T) {
	hold := make(chan struct{})
	f := &faults{hold: hold}
	opts := fastOptions(nil)
	opts.DrainTimeout = 20 * time.Second
	opts.lookup = recordingRegistries(&recorder{}, f)
	a := agentFrom(t, strings.Replace(reloadBase, "batchSize = 10", "batchSize = 10\na1.sources.r1.totalEvents = 100", 1), opts)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	ch := a.channels[0].channel()
	await.True(t, "the source to finish", func() bool { return ch.Stats().PutSuccesses == 100 })
	srv, err := ServeMetrics("127.0.0.1:0", a, a.opts.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var stopped atomic.Bool
	done := make(chan error, 1)
	go func() { done <- a.Stop(context.Background()); stopped.Store(true) }()
	await.True(t, "readyz to say stopping", func() bool {
		resp, body := get(t, "GET", "http://"+srv.Addr()+"/readyz")
		return resp.StatusCode == 503 && body == "not ready: agent a1: stopping (sources stopped, sinks draining)\n"
	})
	if stopped.Load() {
		t.Fatal("the stop had ended: the drain was not seen")
	}
	close(hold)
	if err := await.Recv(t, "the stop", done); err != nil {
		t.Fatal(err)
	}
}

func TestReadyzNamesAComponentThatFailedToStart(t *testing.T) {
	retry := make(chan struct{})
	f := &faults{startFailures: map[string]*atomic.Int64{"k1": failTimes(1)}, retryHold: retry}
	opts := fastOptions(nil)
	opts.lookup = recordingRegistries(&recorder{}, f)
	a := agentFrom(t, reloadBase, opts)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	ok, why := a.Ready()
	if ok || len(why) != 1 || why[0] != "sink group k1: not running (1 failed starts)" {
		t.Errorf("ready %v, %q", ok, why)
	}
	close(retry)
	await.True(t, "ready once it started", func() bool { ok, _ := a.Ready(); return ok })
}
