package main

// `flumed run` and `flumed config check`, run for real: TestMain builds the
// binary once. A bad configuration exits 78 with every problem listed and
// nothing started; a good one runs, serves Flume's JSON metrics, prints the
// logger sink's events on stdout, and stops cleanly on SIGTERM after
// draining the channel.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
)

var flumed string // the binary under test

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flumed-run-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	flumed = filepath.Join(dir, "flumed")
	build := exec.Command("go", "build", "-o", flumed, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build flumed:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "agent.properties")
	if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// runToEnd runs flumed with args and returns its exit code and output.
func runToEnd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(flumed, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatal(err)
	return 0, "", ""
}

const badConfig = `a1.sources = r1
a1.channels = c1 c2
a1.sinks = k1 k2
a1.sinkgroups = g1
a1.sources.r1.type = seqq
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.transactionCapacity = 10
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k1.batchSize = 50
a1.sinks.k2.type = logger
a1.sinks.k2.channel = c3
a1.sinks.k2.password = hunter2
a1.sinkgroups.g1.sinks = k1 k2
a1.sinkgroups.g1.processor.type = failover
a1.sinkgroups.g1.processor.priority.maxpenality = 10000
`

func TestABadConfigurationExits78ListingEveryProblem(t *testing.T) {
	cfg := writeConfig(t, badConfig)
	for _, args := range [][]string{{"run", "-c", cfg}, {"config", "check", "-f", cfg, "-n", "a1"}} {
		code, stdout, stderr := runToEnd(t, args...)
		if code != 78 {
			t.Fatalf("%v: exit %d, want 78\n%s", args, code, stderr)
		}
		want := []string{
			cfg + `:2: a1.channels.c2: channel c2 is not used by any source or sink`,
			cfg + `:5: a1.sources.r1.type: unknown source type "seqq" (did you mean seq?)`,
			cfg + `:11: a1.sinks.k1.batchSize: batch size 50 is above channel c1's transactionCapacity 10`,
			cfg + `:13: a1.sinks.k2.channel: unknown channel c3 (not listed in a1.channels); did you mean c1?`,
			cfg + `:14: a1.sinks.k2.password: unknown key`,
			"flumed: ",
		}
		for _, w := range want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: stderr lacks %q:\n%s", args, w, stderr)
			}
		}
		if strings.Contains(stderr, "hunter2") || stdout != "" {
			t.Errorf("%v: secret echoed or output on stdout:\n%s\n%s", args, stdout, stderr)
		}
	}
}

func TestTheSeedsMaxpenalityTypoIsCaught(t *testing.T) {
	// The seed's agent with null sinks in place of its avro sinks, line
	// numbers kept, so only the typo is wrong.
	seed, err := os.ReadFile("../../testdata/config/seed-failover.properties")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(seed), "\n")
	for i, l := range lines {
		switch {
		case strings.HasSuffix(l, "type = avro"):
			lines[i] = strings.Replace(l, "avro", "null", 1)
		case strings.Contains(l, ".hostname") || strings.Contains(l, ".port"):
			lines[i] = "# " + l
		}
	}
	cfg := writeConfig(t, strings.Join(lines, "\n"))
	code, _, stderr := runToEnd(t, "config", "check", "-c", cfg)
	want := cfg + ":32: a1.sinkgroups.g1.processor.priority.maxpenality: unknown key (did you mean maxpenalty?)\nflumed: 1 configuration error(s); nothing started\n"
	if code != 78 || !strings.HasSuffix(stderr, want) {
		t.Fatalf("exit %d, want 78 and %q:\n%s", code, want, stderr)
	}
}

func TestConfigCheckAcceptsTheBundledExample(t *testing.T) {
	code, stdout, stderr := runToEnd(t, "config", "check", "-c", "../../testdata/example/agent.properties")
	if code != 0 || !strings.Contains(stdout, "agent a1: configuration OK") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestAMissingFileOrAgentExits78(t *testing.T) {
	if code, _, stderr := runToEnd(t, "run", "-c", filepath.Join(t.TempDir(), "none.properties")); code != 78 {
		t.Errorf("missing file: exit %d\n%s", code, stderr)
	}
	cfg := writeConfig(t, "a1.channels = c1\na1.channels.c1.type = memory\na1.sinks = k1\na1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n")
	code, _, stderr := runToEnd(t, "run", "-c", cfg, "-n", "a2")
	if code != 78 || !strings.Contains(stderr, "no agent a2 in the configuration (it defines a1") {
		t.Errorf("unknown agent: exit %d\n%s", code, stderr)
	}
}

// getMetrics reads Flume's JSON metrics of the agent serving them on port.
func getMetrics(port int) (map[string]map[string]string, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var m map[string]map[string]string
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("metrics %s: %w", body, err)
	}
	return m, nil
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestAGoodAgentRunsServesMetricsAndStopsOnSIGTERM(t *testing.T) {
	cfg := writeConfig(t, `a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = 200
a1.sources.r1.batchSize = 20
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 1000
a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
`)
	port := freePort(t)
	// Flume's own flags, as an existing start script passes them.
	cmd := exec.Command(flumed, "agent", "--conf", t.TempDir(), "-f", cfg, "--name", "a1", "--no-reload-conf",
		"-Dflume.root.logger=INFO,console", "-Dflume.monitoring.type=http", fmt.Sprintf("-Dflume.monitoring.port=%d", port))
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	var metrics map[string]map[string]string
	await.NoError(t, "metrics with 200 accepted events", func() error {
		var err error
		if metrics, err = getMetrics(port); err != nil {
			return err
		}
		if got := metrics["SOURCE.r1"]["EventAcceptedCount"]; got != "200" {
			return fmt.Errorf("%s accepted", got)
		}
		return nil
	})
	if metrics["CHANNEL.c1"]["ChannelCapacity"] != "1000" || metrics["SINK.k1"] != nil {
		t.Errorf("metrics %v (the logger sink has no counters in Flume)", metrics)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := await.Recv(t, "the exit after SIGTERM", exited); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
	}
	if n := strings.Count(stdout.String(), "Event: { headers:{} body: "); n != 200 {
		t.Errorf("%d event lines on stdout, want 200 (drained before exit)", n)
	}
	for _, w := range []string{"stopping", "agent stopped"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
		}
	}
}

func TestLaterFilesOverrideEarlierOnesWhetherGivenWithCOrF(t *testing.T) {
	base := writeConfig(t, `a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.transactionCapacity = 10
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
`)
	override := writeConfig(t, "a1.channels.c1.transactionCapacity = 100\n")
	// The null sink's default batch of 100 fits only once the override wins.
	if code, _, stderr := runToEnd(t, "config", "check", "-c", base, "-f", override); code != 0 {
		t.Errorf("base then override: exit %d\n%s", code, stderr)
	}
	code, _, stderr := runToEnd(t, "config", "check", "-f", override, "-c", base)
	if code != 78 || !strings.Contains(stderr, "the default batch size 100 is above channel c1's transactionCapacity 10") {
		t.Errorf("override then base: exit %d\n%s", code, stderr)
	}
}

func TestADirectoryGivenWithCIsFlumesConfDirAndIgnored(t *testing.T) {
	code, stdout, stderr := runToEnd(t, "config", "check", "-c", t.TempDir(), "-f", "../../testdata/example/agent.properties")
	if code != 0 || !strings.Contains(stderr, "is a directory: taken as Flume's --conf directory and ignored") || !strings.Contains(stdout, "configuration OK") {
		t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestASecondSignalStopsAtOnceEvenWhenASinkIsStuck(t *testing.T) {
	cfg := writeConfig(t, `a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
`)
	// Nobody reads stdout: once the pipe is full the logger sink blocks in
	// its write, so the drain cannot finish while the channel holds more
	// than the pipe does (a few hundred lines).
	const stuck = 5000
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var stderr syncBuffer
	port := freePort(t)
	cmd := exec.Command(flumed, "run", "-c", cfg, "--drain-timeout", "1m", "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", port))
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	holding := func() error {
		m, err := getMetrics(port)
		if err != nil {
			return err
		}
		if n, _ := strconv.Atoi(m["CHANNEL.c1"]["ChannelSize"]); n < stuck {
			return fmt.Errorf("the channel holds %d events", n)
		}
		return nil
	}
	await.NoError(t, fmt.Sprintf("the channel to hold %d events", stuck), holding)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The agent in its drain, still holding what its sink cannot deliver, is
	// the proof that the first signal did not stop it.
	await.Never(t, "an exit on the first signal although the sink could not drain",
		func() bool { return len(exited) > 0 },
		func() bool { return strings.Contains(stderr.String(), "draining channels") && holding() == nil })
	// Not a wait: the operator's second signal comes later than the same
	// signal delivered twice at once (repeatWindow after the first was seen).
	time.Sleep(2 * repeatWindow)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	await.Recv(t, "the exit after the second signal", exited)
	if !strings.Contains(stderr.String(), "second signal: stopping at once") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}

func TestADirectoryGivenWithFIsReportedAsGivenWithF(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runToEnd(t, "config", "check", "-f", dir, "-f", "../../testdata/example/agent.properties")
	if code != 0 || !strings.Contains(stderr, "-f "+dir+" is a directory") || strings.Contains(stderr, "-c "+dir) {
		t.Errorf("exit %d\n%s", code, stderr)
	}
}
