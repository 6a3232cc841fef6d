package agent

// A reload builds the whole new configuration first and changes nothing when
// it has an error. Otherwise it touches only what changed: a channel whose
// keys did not change stays open (never closed and reopened); a sink group
// whose keys changed stops gracefully and a new one takes over the same
// channel, so every event put is taken exactly once; a removed or changed
// channel is drained by its old sinks after its sources stopped, then
// closed; a removed file channel says its data stays on disk. These tests run
// the real seq source, memory and file channels and null sinks, wrapped to
// record their lifecycle calls.

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/config"
)

// reloadBase is seq → memory → null, the source endless.
const reloadBase = `a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.sources.r1.batchSize = 10
a1.channels.c1.type = memory
a1.channels.c1.capacity = 1000
a1.channels.c1.keep-alive = 0
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
`

func parseAgent(t testing.TB, text string) *config.Agent {
	t.Helper()
	return config.Build(config.Options{}, config.Source{Name: "t.properties", Data: []byte(text)}).Agent("")
}

// startRecorded starts an agent on text with recorded lifecycles.
func startRecorded(t *testing.T, text string, log *logBuffer) (*Agent, *recorder) {
	t.Helper()
	rec := &recorder{}
	opts := fastOptions(nil)
	if log != nil {
		opts = fastOptions(slog.New(slog.NewTextHandler(log, nil)))
	}
	opts.lookup = recordingRegistries(rec, &faults{})
	a := agentFrom(t, text, opts)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	return a, rec
}

// since are the lifecycle calls recorded after the first n.
func since(rec *recorder, n int) []string { return rec.list()[n:] }

func reload(t *testing.T, a *Agent, text string) ReloadReport {
	t.Helper()
	rep, err := a.Reload(parseAgent(t, text))
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	return rep
}

func TestReloadingTheSameConfigurationChangesNothing(t *testing.T) {
	a, rec := startRecorded(t, reloadBase, nil)
	n := len(rec.list())
	// The same keys in another order and with other line numbers.
	lines := strings.Split(strings.TrimSpace(reloadBase), "\n")
	for i, j := 0, len(lines)-1; i < j; i, j = i+1, j-1 {
		lines[i], lines[j] = lines[j], lines[i]
	}
	rep := reload(t, a, "# moved\n"+strings.Join(lines, "\n")+"\n")
	if rep.Changed() || len(rep.Kept) != 3 {
		t.Fatalf("report %+v", rep)
	}
	if got := since(rec, n); len(got) != 0 {
		t.Fatalf("lifecycle calls %q", got)
	}
}

func TestAChangedBatchSizeRestartsOnlyThatSinkAndLosesNothing(t *testing.T) {
	a, rec := startRecorded(t, reloadBase, nil)
	ch := a.channels[0].channel()
	await.True(t, "events flowing", func() bool { return ch.Stats().TakeSuccesses > 100 })
	n := len(rec.list())
	rep := reload(t, a, reloadBase+"a1.sinks.k1.batchSize = 7\n")
	if want := []string{"sink group k1"}; !reflect.DeepEqual(rep.Stopped, want) || !reflect.DeepEqual(rep.Started, want) {
		t.Fatalf("report %+v", rep)
	}
	if rep.PutsPaused != 0 {
		t.Fatalf("puts paused %v though no source changed", rep.PutsPaused)
	}
	if got, want := since(rec, n), []string{"stop k1", "start k1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("lifecycle %q, want %q", got, want)
	}
	if a.channels[0].channel() != ch {
		t.Fatal("the channel was replaced")
	}
	taken := ch.Stats().TakeSuccesses
	await.True(t, "the new sink to take", func() bool { return ch.Stats().TakeSuccesses > taken+100 })
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := ch.Stats(); st.Size != 0 || st.TakeSuccesses != st.PutSuccesses {
		t.Fatalf("put %d, taken %d, left %d", st.PutSuccesses, st.TakeSuccesses, st.Size)
	}
}

func TestASinkAddedAndRemovedByReloadsStartsAndStops(t *testing.T) {
	a, rec := startRecorded(t, reloadBase, nil)
	two := strings.Replace(reloadBase, "a1.sinks = k1", "a1.sinks = k1 k2", 1) +
		"a1.sinks.k2.type = null\na1.sinks.k2.channel = c1\n"
	n := len(rec.list())
	rep := reload(t, a, two)
	if !reflect.DeepEqual(rep.Started, []string{"sink group k2"}) || len(rep.Stopped) != 0 {
		t.Fatalf("adding: report %+v", rep)
	}
	rep = reload(t, a, reloadBase)
	if !reflect.DeepEqual(rep.Stopped, []string{"sink group k2"}) || len(rep.Started) != 0 {
		t.Fatalf("removing: report %+v", rep)
	}
	if got, want := since(rec, n), []string{"start k2", "stop k2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("lifecycle %q, want %q", got, want)
	}
	if ok, down := a.Ready(); !ok {
		t.Fatalf("not ready after the reloads: %v", down)
	}
}

func TestABrokenConfigurationChangesNothingAndSaysWhy(t *testing.T) {
	a, rec := startRecorded(t, reloadBase, nil)
	n := len(rec.list())
	broken := strings.Replace(reloadBase, "a1.sinks.k1.type = null", "a1.sinks.k1.type = nul", 1) +
		"a1.channels.c1.capacityy = 5\n"
	_, err := a.Reload(parseAgent(t, broken))
	var ce *config.Error
	if !errors.As(err, &ce) || len(ce.Problems) != 2 {
		t.Fatalf("want both problems, got %v", err)
	}
	if got := since(rec, n); len(got) != 0 {
		t.Fatalf("lifecycle calls %q", got)
	}
	// The old configuration still runs, and a reload after the broken one
	// compares with it.
	if rep := reload(t, a, reloadBase); rep.Changed() {
		t.Fatalf("report %+v", rep)
	}
}

func TestAChangedChannelIsDrainedByItsOldSinkThenReplaced(t *testing.T) {
	a, rec := startRecorded(t, reloadBase, nil)
	old := a.channels[0].channel()
	await.True(t, "events flowing", func() bool { return old.Stats().TakeSuccesses > 100 })
	n := len(rec.list())
	rep := reload(t, a, strings.Replace(reloadBase, "capacity = 1000", "capacity = 2000", 1))
	if len(rep.Kept) != 0 || len(rep.Started) != 3 || len(rep.Stopped) != 3 {
		t.Fatalf("report %+v", rep)
	}
	got := since(rec, n)
	if len(got) != 6 || got[0] != "stop r1" || got[1] != "stop k1" || got[2] != "close c1 (size 0)" ||
		got[3] != "open c1" || got[4] != "start k1" || got[5] != "start r1" {
		t.Fatalf("lifecycle %q", got)
	}
	if st := old.Stats(); st.TakeSuccesses != st.PutSuccesses {
		t.Fatalf("the old channel: put %d, taken %d", st.PutSuccesses, st.TakeSuccesses)
	}
}

func TestARemovedFileChannelSaysItsDataStaysOnDisk(t *testing.T) {
	dir := t.TempDir()
	withFile := strings.NewReplacer("a1.channels = c1", "a1.channels = c1 f1", "a1.sinks = k1", "a1.sinks = k1 k2").Replace(reloadBase) +
		"a1.sinks.k2.type = null\na1.sinks.k2.channel = f1\n" +
		"a1.channels.f1.type = file\n" +
		"a1.channels.f1.checkpointDir = " + filepath.Join(dir, "cp") + "\n" +
		"a1.channels.f1.dataDirs = " + filepath.Join(dir, "data") + "\n"
	log := &logBuffer{}
	a, rec := startRecorded(t, withFile, log)
	n := len(rec.list())
	rep := reload(t, a, reloadBase)
	if !reflect.DeepEqual(rep.Stopped, []string{"sink group k2", "channel f1"}) {
		t.Fatalf("report %+v", rep)
	}
	if got := since(rec, n); !reflect.DeepEqual(got, []string{"stop k2", "close f1 (size 0)"}) {
		t.Fatalf("lifecycle %q", got)
	}
	if !strings.Contains(log.String(), "file channel removed; its data stays on disk") {
		t.Fatalf("log:\n%s", log)
	}
}

func TestAReloadAfterStopFails(t *testing.T) {
	a, _ := startRecorded(t, reloadBase, nil)
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reload(parseAgent(t, reloadBase)); err == nil {
		t.Fatal("a reload of a stopped agent succeeded")
	}
}

func TestAStopDuringAReloadWaitsForItThenDrains(t *testing.T) {
	// The reload replaces the channel, so its old sink must drain it, slowly:
	// the stop comes in the middle of that drain.
	rec := &recorder{}
	opts := fastOptions(nil)
	opts.DrainTimeout = 20 * time.Second // generous: the machine may be busy
	opts.lookup = recordingRegistries(rec, &faults{slowSink: 2 * time.Millisecond})
	text := strings.Replace(reloadBase, "a1.sources.r1.batchSize = 10", "a1.sources.r1.batchSize = 10\na1.sources.r1.totalEvents = 300", 1) +
		"a1.sinks.k1.batchSize = 1\n"
	a := agentFrom(t, text, opts)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	old := a.channels[0].channel()
	await.True(t, "the source to finish", func() bool { return old.Stats().PutSuccesses == 300 })
	reloaded := make(chan error, 1)
	go func() {
		_, err := a.Reload(parseAgent(t, strings.Replace(text, "capacity = 1000", "capacity = 2000", 1)))
		reloaded <- err
	}()
	await.True(t, "the reload to stop the source", func() bool { return slices.Contains(rec.list(), "stop r1") })
	stopped := make(chan error, 1)
	go func() { stopped <- a.Stop(context.Background()) }()
	if err := await.Recv(t, "the reload", reloaded); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
		t.Fatal("the stop returned before the reload")
	default:
	}
	if err := await.Recv(t, "the stop", stopped); err != nil {
		t.Fatal(err)
	}
	if st := old.Stats(); st.TakeSuccesses != 300 || st.Size != 0 {
		t.Fatalf("the old channel: taken %d, left %d", st.TakeSuccesses, st.Size)
	}
	got := rec.list()
	if got[len(got)-1] != "close c1 (size 0)" {
		t.Fatalf("lifecycle %q", got)
	}
}

func TestConcurrentReloadsRunOneAtATime(t *testing.T) {
	a, _ := startRecorded(t, reloadBase, nil)
	two := strings.Replace(reloadBase, "a1.sinks = k1", "a1.sinks = k1 k2", 1) +
		"a1.sinks.k2.type = null\na1.sinks.k2.channel = c1\n"
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			text := reloadBase
			if i%2 == 1 {
				text = two
			}
			_, err := a.Reload(parseAgent(t, text))
			errs <- err
		}()
	}
	for range 8 {
		if err := await.Recv(t, "a reload", errs); err != nil {
			t.Fatal(err)
		}
	}
	// Whichever came last, the agent runs it whole.
	_, groups, _ := a.parts()
	a.mu.Lock()
	units := len(a.stages[stageSinks].units)
	a.mu.Unlock()
	if units != len(groups) || (len(groups) != 1 && len(groups) != 2) {
		t.Fatalf("%d sink groups, %d supervised", len(groups), units)
	}
	if ok, down := a.Ready(); !ok {
		t.Fatalf("not ready: %v", down)
	}
}
