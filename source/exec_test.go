package source

// The exec source (FLUME.md §2.1) with real /bin/sh children: one event per
// stdout line, in order, terminators stripped, no headers; a channel that
// refuses never costs a line (reading pauses, the batch is retried, then
// everything arrives exactly once, in order); batchTimeout flushes a partial
// batch; stderr is drained (and logged with logStdErr); restart reruns the
// command after restartThrottle; Stop kills the whole process group, with
// SIGKILL when SIGTERM is ignored; over-long lines are cut at maxLineLength.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/source/internal/sourcetest"
)

// startExec builds an exec source from the snippet (with shell /bin/sh -c
// unless the snippet names one), with test-sized retry and kill timings, and
// starts it on a fake channel that refuses the first refuse puts (-1: all).
func startExec(t *testing.T, snippet string, log *slog.Logger, refuse int) (*Exec, *fakeChannel) {
	t.Helper()
	kv := sourcetest.Props(t, snippet)
	if _, ok := kv["shell"]; !ok {
		kv["shell"] = "/bin/sh -c"
	}
	if kv["shell"] == "none" {
		delete(kv, "shell")
	}
	c := config.FromMap("a1.sources.r1.", kv)
	if log == nil {
		log = sourcetest.DiscardLog()
	}
	c.Check(execType)
	src, err := newExecSource("r1", c, log)
	if ps := sourcetest.Problems(c); err != nil || len(ps) > 0 {
		t.Fatalf("newExecSource: %v %q", err, ps)
	}
	s := src.(*Exec)
	s.opts.retryMin, s.opts.retryMax = time.Millisecond, 4*time.Millisecond
	s.opts.killGrace = 200 * time.Millisecond
	ch := newFakeChannel("c1")
	ch.setRefuse(refuse)
	p, err := NewChannelProcessor(config.FromMap("a1.sources.r1.", nil), []channel.Channel{ch}, sourcetest.DiscardLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s, ch
}

func metric(s *Exec, name string) int {
	n, _ := strconv.Atoi(s.FlumeMetrics()[name])
	return n
}

func TestExecDeliversLinesInOrder(t *testing.T) {
	s, ch := startExec(t, `
		command = printf 'a\nb\r\nc\rd'
		batchSize = 2
	`, nil, 0)
	await.True(t, "4 lines", func() bool { return len(ch.bodies()) == 4 })
	if got := ch.bodies(); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("bodies %q", got)
	}
	for _, e := range ch.events() {
		if e.Headers != nil {
			t.Errorf("headers %v", e.Headers)
		}
	}
	if metric(s, "EventReceivedCount") != 4 || metric(s, "EventAcceptedCount") != 4 {
		t.Errorf("counters %v", s.FlumeMetrics())
	}
}

func TestExecWithoutShellSplitsTheCommandOnWhitespace(t *testing.T) {
	_, ch := startExec(t, "shell = none\ncommand = echo one   two", nil, 0)
	await.True(t, "a line", func() bool { return len(ch.bodies()) == 1 })
	if got := ch.bodies()[0]; got != "one two" {
		t.Errorf("body %q", got)
	}
}

func TestExecFullChannelLosesNoLine(t *testing.T) {
	s, ch := startExec(t, "command = seq 1 100\nbatchSize = 7", nil, 3)
	await.True(t, "100 lines", func() bool { return len(ch.bodies()) >= 100 })
	if got, want := ch.bodies(), numbers(1, 101); !slices.Equal(got, want) {
		t.Errorf("bodies %q, want 1..100 once each in order", got)
	}
	if metric(s, "ChannelWriteFail") != 3 || metric(s, "EventAcceptedCount") != 100 {
		t.Errorf("counters %v", s.FlumeMetrics())
	}
}

func TestExecStopsReadingWhileTheChannelRefuses(t *testing.T) {
	const lines = 50000 // ~290 kB: far more than the pipe and the reader buffer hold
	s, ch := startExec(t, fmt.Sprintf("command = seq 1 %d\nbatchSize = 10", lines), nil, -1)
	await.True(t, "several refusals", func() bool { return metric(s, "ChannelWriteFail") >= 5 })
	// While the batch is retried the reader is parked on one line.
	if got := metric(s, "EventReceivedCount"); got > 11 {
		t.Fatalf("read %d lines while the channel refused; want at most batchSize+1", got)
	}
	// Five more refused retries show the source alive and retrying.
	retried := metric(s, "ChannelWriteFail") + 5
	await.Never(t, "reading on while the channel refused", func() bool { return metric(s, "EventReceivedCount") > 11 },
		func() bool { return metric(s, "ChannelWriteFail") >= retried })
	ch.setRefuse(0)
	await.True(t, "every line", func() bool { return len(ch.bodies()) >= lines })
	if got := ch.bodies(); !slices.Equal(got, numbers(1, lines+1)) {
		t.Errorf("got %d lines, not 1..%d once each in order", len(got), lines)
	}
}

func TestExecBatchTimeoutFlushesAPartialBatch(t *testing.T) {
	_, ch := startExec(t, "command = echo one; exec sleep 30\nbatchSize = 100\nbatchTimeout = 50", nil, 0)
	await.True(t, "the line while the command still runs", func() bool { return len(ch.bodies()) == 1 })
}

func TestExecStopMakesALastAttemptForLinesAlreadyRead(t *testing.T) {
	s, ch := startExec(t, "command = echo last; exec sleep 30\nbatchSize = 100\nbatchTimeout = 3600000", nil, 0)
	await.True(t, "the line to be read", func() bool { return metric(s, "EventReceivedCount") == 1 })
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := ch.bodies(); !slices.Equal(got, []string{"last"}) {
		t.Errorf("bodies %q", got)
	}
}

func TestExecDrainsStderr(t *testing.T) {
	// 1 MB on stderr would block a child whose stderr nobody reads.
	_, ch := startExec(t, "command = head -c 1000000 /dev/zero >&2; echo done", nil, 0)
	await.True(t, "stdout after a flood of stderr", func() bool { return len(ch.bodies()) == 1 })

	log, buf := newTestLog()
	_, ch = startExec(t, "command = echo oops >&2; echo done\nlogStdErr = true", log, 0)
	await.True(t, "done", func() bool { return len(ch.bodies()) == 1 })
	await.True(t, "the stderr line in the log", func() bool { return strings.Contains(buf.String(), "oops") })
}

func TestExecRestartsAfterTheThrottle(t *testing.T) {
	_, ch := startExec(t, "command = echo x\nrestart = true\nrestartThrottle = 100", nil, 0)
	await.True(t, "three runs", func() bool { return len(ch.bodies()) >= 3 })
	ch.mu.Lock()
	at := slices.Clone(ch.commitAt)
	ch.mu.Unlock()
	for i := 1; i < 3; i++ {
		if gap := at[i].Sub(at[i-1]); gap < 100*time.Millisecond {
			t.Errorf("run %d came %v after the previous one, before restartThrottle", i+1, gap)
		}
	}
}

func TestExecWithoutRestartRunsOnce(t *testing.T) {
	s, ch := startExec(t, "command = echo x\nrestartThrottle = 1", nil, 0)
	await.True(t, "one run", func() bool { return len(ch.bodies()) == 1 })
	await.True(t, "the run loop to end", func() bool {
		select {
		case <-s.done:
			return true
		default:
			return false
		}
	})
	if got := len(ch.bodies()); got != 1 {
		t.Errorf("%d runs", got)
	}
}

// gone reports whether pid no longer runs (a zombie no one reaps counts as
// gone: it runs nothing).
func gone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] == "Z"
}

func TestExecStopKillsTheProcessGroup(t *testing.T) {
	s, ch := startExec(t, "command = sleep 300 & echo $!; wait\nbatchSize = 1", nil, 0)
	await.True(t, "the grandchild's pid", func() bool { return len(ch.bodies()) == 1 })
	pid, err := strconv.Atoi(ch.bodies()[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	await.True(t, "the grandchild to die", func() bool { return gone(pid) })
}

func TestExecStopKillsAChildThatIgnoresSIGTERM(t *testing.T) {
	log, buf := newTestLog()
	s, ch := startExec(t, "command = trap '' TERM; echo $$; sleep 300; sleep 300\nbatchSize = 1", log, 0)
	await.True(t, "the child's pid", func() bool { return len(ch.bodies()) == 1 })
	pid, _ := strconv.Atoi(ch.bodies()[0])
	start := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < s.opts.killGrace {
		t.Errorf("Stop took %v, less than the grace period: was SIGTERM really ignored?", took)
	}
	if !gone(pid) {
		t.Error("the child survived Stop")
	}
	if !strings.Contains(buf.String(), "ignored SIGTERM") {
		t.Errorf("no log of the SIGKILL:\n%s", buf)
	}
}

func TestExecCutsLinesAtMaxLineLength(t *testing.T) {
	s, ch := startExec(t, "command = printf '0123456789abcdefghijXYZ\\n0123456789\\n'\nmaxLineLength = 10", nil, 0)
	await.True(t, "4 events", func() bool { return len(ch.bodies()) == 4 })
	if got := ch.bodies(); !slices.Equal(got, []string{"0123456789", "abcdefghij", "XYZ", "0123456789"}) {
		t.Errorf("bodies %q", got)
	}
	if s.SplitLines() != 2 {
		t.Errorf("SplitLines() = %d, want 2", s.SplitLines())
	}
}

func TestExecStartFailsForAMissingCommand(t *testing.T) {
	c := config.FromMap("a1.sources.r1.", map[string]string{"command": "/nonexistent/tool -f"})
	c.Check(execType)
	src, err := newExecSource("r1", c, sourcetest.DiscardLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background(), &recordingPutter{}); err == nil {
		t.Error("Start succeeded")
	}
	_ = src.Stop()
}

func TestExecConfiguration(t *testing.T) {
	c := config.FromMap("a1.sources.r1.", map[string]string{"command": "tail -F /var/log/x", "shell": "/bin/bash -c"})
	c.Check(execType)
	src, err := newExecSource("r1", c, sourcetest.DiscardLog())
	if err != nil {
		t.Fatal(err)
	}
	o := src.(*Exec).opts
	if !slices.Equal(o.argv, []string{"/bin/bash", "-c", "tail -F /var/log/x"}) {
		t.Errorf("argv %q", o.argv)
	}
	if o.batchSize != 20 || o.batchTimeout != 3*time.Second || o.restartThrottle != 10*time.Second ||
		o.restart || o.logStdErr || o.maxLineLength != 1<<20 {
		t.Errorf("defaults %+v", o)
	}
	for snippet, want := range map[string]string{
		`batchSize = 5`:                  "command: required key is missing",
		"command = x\nbatchSize = 0":     "batchSize: must be positive",
		"command = x\nbatchTimeout = 0":  "batchTimeout: must be positive",
		"command = x\ncharset = UTF-16":  "unsupported charset",
		"command = x\nmaxLineLength = 0": "maxLineLength: must be positive",
		"command = x\nrestart = yes":     "not a boolean",
		"command = x\nlogStderr = true":  "logStderr: unknown key (did you mean logStdErr?)",
	} {
		c := config.FromMap("a1.sources.r1.", sourcetest.Props(t, snippet))
		c.Check(execType)
		_, _ = newExecSource("r1", c, sourcetest.DiscardLog())
		if p := strings.Join(sourcetest.Problems(c), "\n"); !strings.Contains(p, want) {
			t.Errorf("%q: problems %q do not mention %q", snippet, p, want)
		}
	}
}
