package main

// Reloads, with the real flumed binary:
//
//   - 50 SIGHUPs alternate two configurations while a seq source fills a
//     memory channel: one adds a second sink, the other removes it and sets
//     the first sink's batch size back. The channel is never reopened (its
//     StartTime stays), every reload lets events flow, and after SIGTERM
//     every number the source put arrived, duplicates only from batches in
//     flight at a sink's stop (sink.Window batches per stopped sink).
//   - A configuration file changed on disk is reloaded without a signal; a
//     broken one is rejected with every problem logged and the old one keeps
//     running; a deleted one is an error in the log, not a stop.
//   - SIGHUP no longer ends the process (it used to: exit 129, and a memory
//     channel's acknowledged events were lost).

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/sink"
)

// writeFileAtomically replaces path by text through a rename, as editors and
// configuration management do, so the agent never reads half a file.
func writeFileAtomically(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// reloadConfigs are the two configurations the test alternates: seq →
// memory → k1 (file_roll, batch 10); and the same with k1 at batch 20 and
// a second file_roll sink k2 (batch 10) on the same channel.
func reloadConfigs(n int, out1, out2 string) (one, two string) {
	base := fmt.Sprintf(`a1.sources = r1
a1.channels = c1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.sources.r1.totalEvents = %d
a1.sources.r1.batchSize = 100
a1.channels.c1.type = memory
a1.channels.c1.capacity = 5000
a1.channels.c1.transactionCapacity = 100
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = %s
a1.sinks.k1.sink.rollInterval = 0
`, n, out1)
	one = base + "a1.sinks = k1\na1.sinks.k1.sink.batchSize = 10\n"
	two = base + fmt.Sprintf(`a1.sinks = k1 k2
a1.sinks.k1.sink.batchSize = 20
a1.sinks.k2.type = file_roll
a1.sinks.k2.channel = c1
a1.sinks.k2.sink.directory = %s
a1.sinks.k2.sink.rollInterval = 0
a1.sinks.k2.sink.batchSize = 10
`, out2)
	return one, two
}

func TestFiftyReloadsWhileEventsFlowLoseNothing(t *testing.T) {
	const (
		n       = 60000
		reloads = 50
	)
	dir := t.TempDir()
	out1, out2 := filepath.Join(dir, "out1"), filepath.Join(dir, "out2")
	for _, d := range []string{out1, out2} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	one, two := reloadConfigs(n, out1, out2)
	cfg := filepath.Join(dir, "agent.properties")
	writeFileAtomically(t, cfg, one)
	// Only SIGHUP reloads here, so the reloads can be counted.
	p := startAgentFile(t, cfg, "--no-reload-conf")
	startTime, _ := p.counter(t, "CHANNEL.c1", "StartTime")

	for i := 1; i <= reloads; i++ {
		next := two
		if i%2 == 0 {
			next = one
		}
		writeFileAtomically(t, cfg, next)
		taken, _ := p.counter(t, "CHANNEL.c1", "EventTakeSuccessCount")
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		await.True(t, fmt.Sprintf("reload %d", i), func() bool {
			return strings.Count(p.stderr.String(), "configuration reloaded") == i
		})
		await.True(t, fmt.Sprintf("events taken after reload %d", i), func() bool {
			now, _ := p.counter(t, "CHANNEL.c1", "EventTakeSuccessCount")
			return now > taken
		})
		if st, _ := p.counter(t, "CHANNEL.c1", "StartTime"); st != startTime {
			t.Fatalf("reload %d reopened the channel (StartTime %d, was %d)", i, st, startTime)
		}
	}
	accepted, _ := p.counter(t, "SOURCE.r1", "EventAcceptedCount")
	if accepted >= n {
		t.Errorf("the source had finished before the last reload: the reloads were not under load")
	}
	t.Logf("%d of %d events accepted at the last reload", accepted, n)
	p.waitCounter(t, "SOURCE.r1", "EventAcceptedCount", n)
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, p.stderr)
	}
	if s := p.stderr.String(); !strings.Contains(s, "events_left_in_channels=0") || strings.Contains(s, "rejected") {
		t.Fatalf("log:\n%s", s)
	}

	// Every stop of a sink may repeat its window of batches in flight: k1
	// stops at every reload (batch 10 or 20), k2 at every second one.
	w := sink.Window(sink.DefaultPipelineDepth)
	maxDup := reloads/2*w*10 + reloads/2*(w*20+w*10)
	seen := make([]int, n)
	got := append(rolledNumbers(t, out1), rolledNumbers(t, out2)...)
	dups := 0
	for _, v := range got {
		if v < 0 || v >= n {
			t.Fatalf("number %d was never sent", v)
		}
		if seen[v]++; seen[v] > 1 {
			dups++
		}
	}
	var missing []int
	for v, c := range seen {
		if c == 0 {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d numbers lost, the first %v", len(missing), missing[:min(10, len(missing))])
	}
	if dups > maxDup {
		t.Fatalf("%d numbers delivered twice, more than the %d in flight at the sinks' stops", dups, maxDup)
	}
	t.Logf("%d reloads, %d events, %d delivered twice (bound %d)", reloads, n, dups, maxDup)
}

func TestAChangedFileReloadsABrokenOneIsRejectedAndADeletedOneIsLogged(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	good := "a1.channels = c1\na1.sinks = k1\na1.channels.c1.type = memory\n" +
		"a1.sinks.k1.type = file_roll\na1.sinks.k1.channel = c1\na1.sinks.k1.sink.directory = " + out + "\n"
	cfg := filepath.Join(dir, "agent.properties")
	writeFileAtomically(t, cfg, good)
	p := startAgentFile(t, cfg)
	has := func(what string) func() bool {
		return func() bool { return strings.Contains(p.stderr.String(), what) }
	}

	// A broken file: both problems are logged, nothing changes.
	writeFileAtomically(t, cfg, good+"a1.sinks.k1.sink.batchSize = many\na1.channels.c1.capacityy = 5\n")
	await.True(t, "the rejection", has("reload rejected; the running configuration stays"))
	for _, want := range []string{"a1.sinks.k1.sink.batchSize", "a1.channels.c1.capacityy"} {
		if !strings.Contains(p.stderr.String(), want) {
			t.Errorf("the log does not name %s:\n%s", want, p.stderr)
		}
	}

	// A good change: the channel's capacity, so it is replaced.
	writeFileAtomically(t, cfg, good+"a1.channels.c1.capacity = 500\n")
	await.True(t, "the reload", has("configuration reloaded"))
	p.waitCounter(t, "CHANNEL.c1", "ChannelCapacity", 500)

	// Deleted: an error, and the agent keeps running.
	if err := os.Remove(cfg); err != nil {
		t.Fatal(err)
	}
	await.True(t, "the error", has("configuration file unreadable; the running configuration stays"))
	p.waitCounter(t, "CHANNEL.c1", "ChannelCapacity", 500)

	// SIGHUP with the file gone: rejected, still running.
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	await.True(t, "the second rejection", func() bool {
		return strings.Count(p.stderr.String(), "reload rejected") == 2
	})
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, p.stderr)
	}
}

func TestPrometheusIsServedAtMetricsWhenChosen(t *testing.T) {
	cfg := writeConfig(t, "a1.channels = c1\na1.sinks = k1\na1.channels.c1.type = memory\na1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n")
	p := startAgentFile(t, cfg, "--metrics-format", "prometheus")
	for path, want := range map[string]string{
		"":      `flumed_channel_size{name="c1",type="memory"} 0`,
		".json": `"CHANNEL.c1":{`,
	} {
		resp, err := http.Get(p.metrics + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), want) {
			t.Errorf("GET /metrics%s has no %s:\n%s", path, want, body)
		}
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestLogFileAndConfigWarningsThroughTheStructuredLogger(t *testing.T) {
	// A key set twice is a warning; the agent runs.
	cfg := writeConfig(t, "a1.channels = c1\na1.sinks = k1\na1.channels.c1.type = memory\n"+
		"a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\na1.sinks.k1.channel = c1\n")
	logFile := filepath.Join(t.TempDir(), "flumed.log")
	cmd := exec.Command(flumed, "run", "-c", cfg, "--log-format", "json", "--log-file", logFile)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()
	read := func() string { b, _ := os.ReadFile(logFile); return string(b) }
	await.True(t, "the agent started", func() bool { return strings.Contains(read(), `"msg":"agent started"`) })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := await.Recv(t, "the exit", exited); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if stderr.String() != "" {
		t.Errorf("stderr is not empty with --log-file:\n%s", stderr)
	}
	var warned bool
	for _, line := range strings.Split(strings.TrimSpace(read()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		if m["level"] == "WARN" && strings.Contains(fmt.Sprint(m["msg"]), "a1.sinks.k1.channel: set again") {
			warned = true
		}
		if d, ok := m["timeout"]; ok && fmt.Sprint(d) != "5s" {
			t.Errorf("drain timeout logged as %v, want \"5s\"", d)
		}
	}
	if !warned {
		t.Errorf("no structured warning for the key set twice:\n%s", read())
	}
}
