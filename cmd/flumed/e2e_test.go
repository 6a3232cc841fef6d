package main

// End to end, with the real flumed binary that TestMain builds: a seq source
// numbers its events 0, 1, 2, … and a file_roll sink writes one number per
// line, so a run is checked by reading the rolled files back.
//
//   - seq → memory channel → file_roll and seq → file channel → file_roll
//     deliver every number 0..N-1 exactly once and in order (one source, one
//     sink); files are read in the order the sink created them, across runs.
//   - SIGTERM, sent while the channel still holds a backlog, drains it: the
//     process exits 0, logs that no event was left, every number is in the
//     files, and a file channel reopened afterwards is empty.
//   - A file channel keeps what it accepted across SIGKILL: with a sink that
//     cannot deliver (an avro sink to a closed port), then a working sink
//     killed mid-drain, then a restart that drains the rest, every number
//     arrives, and the only duplicates are the batches the sink had written
//     and not yet committed at the kill: at most sink.Window(depth) batches
//     (README, "Delivery and duplicates").
//   - A bad configuration exits 78 and starts nothing; `flumed run` refuses
//     every configuration of testdata/config/broken with exactly the words
//     of `flumed config check`.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/sink"
)

// syncBuffer is a bytes.Buffer the process writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// agentProcess is one running `flumed run`, its monitoring server on a port
// the kernel chose.
type agentProcess struct {
	cmd     *exec.Cmd
	stderr  *syncBuffer
	exited  chan struct{}
	waitErr error
	metrics string // the /metrics URL
}

var listening = regexp.MustCompile(`monitoring server listening addr=(\S+)`)

// startAgent runs flumed on the configuration text and waits until its
// monitoring server answers. The process is killed when the test ends.
func startAgent(t *testing.T, config string) *agentProcess {
	t.Helper()
	return startAgentFile(t, writeConfig(t, config))
}

// startAgentFile is startAgent on a configuration file, with more flags.
func startAgentFile(t *testing.T, cfg string, flags ...string) *agentProcess {
	t.Helper()
	p := &agentProcess{stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(flumed, append([]string{"run", "-c", cfg, "--metrics-addr", "127.0.0.1:0", "--drain-timeout", "30s"}, flags...)...)
	p.cmd.Stdout = io.Discard
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	await.True(t, "the monitoring server to listen", func() bool {
		if m := listening.FindStringSubmatch(p.stderr.String()); m != nil {
			p.metrics = "http://" + m[1] + "/metrics"
			return true
		}
		select {
		case <-p.exited:
			t.Fatalf("flumed exited at start: %v\n%s", p.waitErr, p.stderr)
		default:
		}
		return false
	})
	return p
}

// counter reads one of Flume's counters ("CHANNEL.c1", "ChannelSize");
// ok is false while the component does not report yet.
func (p *agentProcess) counter(t *testing.T, component, name string) (int64, bool) {
	t.Helper()
	resp, err := http.Get(p.metrics)
	if err != nil {
		t.Fatalf("GET %s: %v\n%s", p.metrics, err, p.stderr)
	}
	defer resp.Body.Close()
	var m map[string]map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("metrics: %v", err)
	}
	v, ok := m[component][name]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%s %s = %q, not a number", component, name, v)
	}
	return n, true
}

// waitCounter waits until a counter equals want.
func (p *agentProcess) waitCounter(t *testing.T, component, name string, want int64) {
	t.Helper()
	await.NoError(t, fmt.Sprintf("%s %s to be %d", component, name, want), func() error {
		if got, ok := p.counter(t, component, name); !ok || got != want {
			return fmt.Errorf("it is %d (reported: %v)", got, ok)
		}
		return nil
	})
}

// stop sends sig and returns the exit code (-1 when killed by a signal).
func (p *agentProcess) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	await.Done(t, fmt.Sprintf("the exit after %v", sig), p.exited)
	return p.cmd.ProcessState.ExitCode()
}

// rolledNumbers reads the numbers the file_roll sink wrote into dir, file by
// file in the order they were created (start time, then file number).
func rolledNumbers(t *testing.T, dir string) []int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	type file struct {
		series, index int64
		name          string
	}
	var files []file
	for _, e := range entries {
		series, index, ok := strings.Cut(e.Name(), "-")
		s, err1 := strconv.ParseInt(series, 10, 64)
		i, err2 := strconv.ParseInt(index, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("unexpected file %s in the sink directory", e.Name())
		}
		files = append(files, file{s, i, e.Name()})
	}
	sort.Slice(files, func(a, b int) bool {
		if files[a].series != files[b].series {
			return files[a].series < files[b].series
		}
		return files[a].index < files[b].index
	})
	var out []int64
	defer func() { t.Logf("%d numbers in %d files", len(out), len(files)) }()
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			n, err := strconv.ParseInt(sc.Text(), 10, 64)
			if err != nil {
				t.Fatalf("%s: line %q is not a number", f.name, sc.Text())
			}
			out = append(out, n)
		}
	}
	return out
}

// checkDelivered checks that got holds 0..n-1 in order, where a number may
// come again only as part of a re-delivered run (it is below the next new
// number), with at most maxDup such repeats in all.
func checkDelivered(t *testing.T, got []int64, n int64, maxDup int) {
	t.Helper()
	var next int64
	dups := 0
	for i, v := range got {
		switch {
		case v == next:
			next++
		case v >= 0 && v < next:
			dups++
		default:
			t.Fatalf("line %d holds %d; expected %d next (a gap or a number never sent)", i+1, v, next)
		}
	}
	if next != n {
		t.Fatalf("numbers 0..%d delivered, want 0..%d: %d lost", next-1, n-1, n-next)
	}
	if dups > maxDup {
		t.Fatalf("%d numbers delivered twice, more than %d", dups, maxDup)
	}
	if dups > 0 {
		t.Logf("%d numbers delivered twice (written, their take not yet committed at the kill)", dups)
	}
}

func pipelineConfig(channel string, n, sourceBatch int, dir string, sinkBatch int) string {
	return fmt.Sprintf(`a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.sources.r1.totalEvents = %d
a1.sources.r1.batchSize = %d
%s
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = %s
a1.sinks.k1.sink.rollInterval = 1
a1.sinks.k1.sink.batchSize = %d
`, n, sourceBatch, channel, dir, sinkBatch)
}

func memoryChannel(capacity, txn int) string {
	return fmt.Sprintf("a1.channels.c1.type = memory\na1.channels.c1.capacity = %d\na1.channels.c1.transactionCapacity = %d\n", capacity, txn)
}

func fileChannel(dir string, capacity, txn int) string {
	return fmt.Sprintf(`a1.channels.c1.type = file
a1.channels.c1.checkpointDir = %s
a1.channels.c1.dataDirs = %s
a1.channels.c1.capacity = %d
a1.channels.c1.transactionCapacity = %d
a1.channels.c1.minimumRequiredSpace = 1048576
`, filepath.Join(dir, "checkpoint"), filepath.Join(dir, "data"), capacity, txn)
}

// runAndDrainOnSIGTERM runs a seq → channel → file_roll agent, sends SIGTERM
// as soon as the source has put all n events (the sink, fsyncing every small
// batch, is far behind), and checks the drain delivered them all.
func runAndDrainOnSIGTERM(t *testing.T, channel, out string, n int) {
	t.Helper()
	p := startAgent(t, pipelineConfig(channel, n, 1000, out, 10))
	p.waitCounter(t, "SOURCE.r1", "EventAcceptedCount", int64(n))
	backlog, _ := p.counter(t, "CHANNEL.c1", "ChannelSize")
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0\n%s", code, p.stderr)
	}
	t.Logf("SIGTERM with %d of %d events still in the channel", backlog, n)
	if backlog == 0 {
		t.Errorf("the channel was already empty at SIGTERM: the drain was not exercised")
	}
	if !strings.Contains(p.stderr.String(), "events_left_in_channels=0") {
		t.Errorf("the agent did not report an empty channel at stop:\n%s", p.stderr)
	}
	checkDelivered(t, rolledNumbers(t, out), int64(n), 0)
}

func TestSeqThroughTheMemoryChannelArrivesExactlyOnceAndSIGTERMDrainsIt(t *testing.T) {
	const n = 10000
	out := filepath.Join(t.TempDir(), "out")
	runAndDrainOnSIGTERM(t, memoryChannel(n, 1000), out, n)
}

func TestSeqThroughTheFileChannelArrivesExactlyOnceAndSIGTERMDrainsIt(t *testing.T) {
	const n = 10000
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	runAndDrainOnSIGTERM(t, fileChannel(dir, n, 1000), out, n)

	// The channel reopened without a source holds nothing, so nothing more
	// is written.
	p := startAgent(t, "a1.channels = c1\na1.sinks = k1\n"+fileChannel(dir, n, 1000)+
		"a1.sinks.k1.type = file_roll\na1.sinks.k1.channel = c1\na1.sinks.k1.sink.directory = "+out+"\n")
	p.waitCounter(t, "CHANNEL.c1", "ChannelSize", 0)
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("reopened agent: exit %d\n%s", code, p.stderr)
	}
	checkDelivered(t, rolledNumbers(t, out), n, 0)
}

func TestTheFileChannelDeliversEverythingAfterSIGKILLsWithDuplicatesBoundedByTheSinksWindow(t *testing.T) {
	const (
		n         = 3000
		sinkBatch = 10
	)
	// file_roll runs its engine at the default depth: a kill repeats at
	// most the window's batches, written and not yet committed.
	maxDup := sink.Window(sink.DefaultPipelineDepth) * sinkBatch
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	channel := fileChannel(dir, n, 1000)

	// 1. The only sink forwards to a port nobody listens on: every event
	// stays in the channel until the agent is killed.
	closed := freePort(t)
	p := startAgent(t, fmt.Sprintf(`a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.sources.r1.totalEvents = %d
a1.sources.r1.batchSize = 100
%s
a1.sinks.k1.type = avro
a1.sinks.k1.channel = c1
a1.sinks.k1.hostname = 127.0.0.1
a1.sinks.k1.port = %d
a1.sinks.k1.batch-size = %d
a1.sinks.k1.connect-timeout = 1000
`, n, channel, closed, sinkBatch))
	p.waitCounter(t, "SOURCE.r1", "EventAcceptedCount", n)
	p.waitCounter(t, "CHANNEL.c1", "ChannelSize", n)
	p.stop(t, syscall.SIGKILL)

	// 2. A working sink, killed while it drains.
	drain := "a1.channels = c1\na1.sinks = k1\n" + channel + fmt.Sprintf(
		"a1.sinks.k1.type = file_roll\na1.sinks.k1.channel = c1\na1.sinks.k1.sink.directory = %s\na1.sinks.k1.sink.batchSize = %d\n", out, sinkBatch)
	p = startAgent(t, drain)
	await.True(t, "a file written after the restart", func() bool {
		entries, _ := os.ReadDir(out)
		return len(entries) > 0
	})
	p.stop(t, syscall.SIGKILL)
	t.Logf("killed with %d of %d numbers written", len(rolledNumbers(t, out)), n)

	// 3. A restart drains the rest.
	p = startAgent(t, drain)
	p.waitCounter(t, "CHANNEL.c1", "ChannelSize", 0)
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, p.stderr)
	}
	checkDelivered(t, rolledNumbers(t, out), n, maxDup)
}

func TestABadConfigurationExits78AndStartsNothing(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	// Everything is runnable but the sink's batch, which no transaction of
	// the channel could hold.
	cfg := writeConfig(t, pipelineConfig(memoryChannel(1000, 10), 100, 10, out, 11))
	code, stdout, stderr := runToEnd(t, "run", "-c", cfg, "--metrics-addr", "127.0.0.1:0")
	want := cfg + ":16: a1.sinks.k1.sink.batchSize: batch size 11 is above channel c1's transactionCapacity 10\n" +
		"flumed: 1 configuration error(s); nothing started\n"
	if code != 78 || stdout != "" || stderr != want {
		t.Fatalf("exit %d, stdout %q, stderr\n%s\nwant exit 78 and stderr\n%s", code, stdout, stderr, want)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("the sink directory was created (%v): something started", err)
	}
}

func TestRunRefusesEveryBrokenConfigWithTheWordsOfConfigCheck(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(repoRoot, "testdata/config/broken/*.properties"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no broken configurations: %v", err)
	}
	for _, p := range paths {
		rel, _ := filepath.Rel(repoRoot, p)
		c := readBrokenCase(t, filepath.ToSlash(rel))
		_, _, _, checkErr := c.check(t)

		ctx, cancel := context.WithTimeout(context.Background(), await.Limit)
		cmd := exec.CommandContext(ctx, flumed, append([]string{"run", "-c", c.config}, c.args...)...)
		cmd.Dir = repoRoot
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		_ = cmd.Run()
		cancel()
		code := cmd.ProcessState.ExitCode()
		if code != 78 || stdout.Len() > 0 || stderr.String() != checkErr {
			t.Errorf("run -c %s: exit %d, stdout %q, stderr\n%s\nwant exit 78 and the stderr of config check\n%s",
				c.config, code, stdout.String(), stderr.String(), checkErr)
		}
	}
}
