package agent

// With the file channel, what a stop could not drain stays on disk: the
// channel closes (checkpointing) after the sinks stop, and the next agent on
// the same directories delivers it.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
)

func TestUndrainedEventsOfAFileChannelAreDeliveredAfterARestart(t *testing.T) {
	dir := t.TempDir()
	text := fmt.Sprintf(`a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.sources.r1.totalEvents = 120
a1.sources.r1.batchSize = 40
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = %s/checkpoint
a1.channels.c1.dataDirs = %s/data
a1.channels.c1.minimumRequiredSpace = 1048576
a1.channels.c1.keep-alive = 0
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k1.batchSize = 50
`, dir, dir)

	// First run: the sink's next hop is down, so nothing drains.
	f := &faults{}
	f.failDelivery.Store(true)
	rec := &recorder{}
	opts := fastOptions(nil)
	opts.DrainTimeout = 100 * time.Millisecond
	opts.lookup = recordingRegistries(rec, f)
	a := agentFrom(t, text, opts)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	ch := a.channels[0].channel()
	await.True(t, "the source to finish", func() bool { return ch.Stats().PutSuccesses == 120 })
	if err := a.Stop(context.Background()); err == nil {
		t.Fatal("the drain reported success although the sink could not deliver")
	}
	if got := rec.list(); got[len(got)-1] != "close c1 (size 120)" {
		t.Fatalf("lifecycle %q", got)
	}

	// Second run, the source already done (totalEvents 0): the sink works,
	// but is held until the reopened size has been read, so what is read is
	// what the restart found, not what the sink left of it.
	hold := make(chan struct{})
	opts = fastOptions(nil)
	opts.lookup = recordingRegistries(&recorder{}, &faults{hold: hold})
	b := agentFrom(t, text+"a1.sources.r1.totalEvents = 0\n", opts)
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	ch = b.channels[0].channel()
	if size := ch.Stats().Size; size != 120 {
		t.Errorf("reopened with %d events, want 120", size)
	}
	close(hold)
	await.True(t, "the backlog to drain", func() bool { return ch.Stats().Size == 0 })
	if err := b.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := ch.Stats(); st.TakeSuccesses != 120 {
		t.Fatalf("delivered %d after the restart, want 120", st.TakeSuccesses)
	}
}
