package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flumed/flumed/internal/await"
)

// flumed is the binary under test, built once by TestMain.
var flumed string

// TestMain builds ./cmd/flumed once for every test of the package. A build
// failure fails the package: these tests never skip for want of a binary.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flumed-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	flumed, err = Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is the flumed processes of one test: they are SIGKILLed when the
// test ends (with the end of their logs printed if it failed), and their
// files live in the test's temporary directory.
type cluster struct {
	t     *testing.T
	dir   string
	procs []*Proc
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir()}
	t.Cleanup(func() {
		if t.Failed() {
			c.postMortem()
		}
		for _, p := range c.procs {
			if err := p.Close(); err != nil {
				t.Errorf("close %s: %v", p.Name(), err)
			}
		}
	})
	return c
}

// postMortem logs what a failed test needs: each process's last log lines
// and metrics. Processes still running are sent SIGQUIT, so their goroutine
// dumps land in <name>.err; with FLUMED_E2E_KEEP=dir the test's directory
// (configs, logs, channels, outputs) is copied there to be read afterwards.
func (c *cluster) postMortem() {
	for _, p := range c.procs {
		c.t.Logf("%s stderr (last lines):\n%s", p.Name(), p.Tail("stderr", 30))
		if !p.Running() {
			continue
		}
		if m, err := p.Metrics(context.Background()); err == nil {
			c.t.Logf("%s metrics: %v", p.Name(), m)
		}
		_ = p.Quit(5 * time.Second)
	}
	keep := os.Getenv("FLUMED_E2E_KEEP")
	if keep == "" {
		return
	}
	dst := filepath.Join(keep, c.t.Name()+"-"+time.Now().Format("150405"))
	if err := os.CopyFS(dst, os.DirFS(c.dir)); err != nil {
		c.t.Logf("keep %s: %v", dst, err)
		return
	}
	c.t.Logf("the test's files are kept in %s", dst)
}

// path is a path inside the test's directory.
func (c *cluster) path(elem ...string) string {
	return filepath.Join(append([]string{c.dir}, elem...)...)
}

// config writes a properties file made of lines and returns its path.
func (c *cluster) config(name string, lines ...string) string {
	c.t.Helper()
	p := c.path(name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// ports returns n free ports.
func (c *cluster) ports(n int) []int {
	c.t.Helper()
	ps, err := FreePorts(n)
	if err != nil {
		c.t.Fatal(err)
	}
	return ps
}

// proc describes a process of the cluster without starting it.
func (c *cluster) proc(o ProcOptions) *Proc {
	o.Bin, o.Dir = flumed, c.dir
	p := NewProc(o)
	c.procs = append(c.procs, p)
	return p
}

// start starts p and waits until it is ready.
func (c *cluster) start(p *Proc) {
	c.t.Helper()
	if err := p.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.ready(p)
}

// ready waits until p serves its metrics and its ready port.
func (c *cluster) ready(p *Proc) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), await.Limit)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		c.t.Fatal(err)
	}
}

// kill SIGKILLs p.
func (c *cluster) kill(p *Proc) {
	c.t.Helper()
	if err := p.Kill(); err != nil {
		c.t.Fatal(err)
	}
}

// metric waits until cond holds for the value of component's attr in p's
// /metrics and returns that value, failing the test with the last value
// seen after await.Limit.
func (c *cluster) metric(p *Proc, component, attr, what string, cond func(int64) bool) int64 {
	c.t.Helper()
	var last int64
	await.NoError(c.t, what, throttle(lookEvery, func() error {
		m, err := p.Metrics(context.Background())
		if err != nil {
			return err
		}
		last = m.Int(component, attr)
		if !cond(last) {
			return fmt.Errorf("%s %s.%s is %d", p.Name(), component, attr, last)
		}
		return nil
	}))
	return last
}

// read returns the value of component's attr in p's /metrics now.
func (c *cluster) read(p *Proc, component, attr string) int64 {
	c.t.Helper()
	return c.metric(p, component, attr, "read "+component+"."+attr, func(int64) bool { return true })
}

// idle waits for proof that p's sink k1 has delivered and committed
// everything it took from channel c1: the channel is empty (ChannelSize
// counts an event until its take commits, so every take has committed, after
// its batch was written), and the sink has since found it empty again (its
// BatchEmptyCount went up: it came round once more and there was nothing
// left). What a test checks after idle, such as the duplicates in an
// output, has then had every chance to show. Counters start again with a
// process: p must stay up meanwhile.
func (c *cluster) idle(p *Proc) {
	c.t.Helper()
	empties := int64(-1)
	await.NoError(c.t, p.Name()+"'s sink to find its empty channel empty again", throttle(lookEvery, func() error {
		m, err := p.Metrics(context.Background())
		if err != nil {
			return err
		}
		size, e := m.Int("CHANNEL.c1", "ChannelSize"), m.Int("SINK.k1", "BatchEmptyCount")
		switch {
		case size != 0:
			empties = -1
			return fmt.Errorf("%s's channel holds %d events", p.Name(), size)
		case empties < 0:
			empties = e
			return fmt.Errorf("%s's channel is empty; its sink has not looked again", p.Name())
		case e <= empties:
			return fmt.Errorf("%s's sink found the channel empty %d times, none since it was seen empty", p.Name(), e)
		}
		return nil
	}))
}

// lookEvery is how often a wait looks at a process's /metrics or a big
// ledger: await looks every few milliseconds, and each of these looks is an
// HTTP request to a process under test, or a walk that holds the ledger
// from its readers.
const lookEvery = 20 * time.Millisecond

// throttle returns f, called at most once per d: in between, its last
// answer is given again.
func throttle[T any](d time.Duration, f func() T) func() T {
	var last T
	var at time.Time
	return func() T {
		if now := time.Now(); at.IsZero() || now.Sub(at) >= d {
			last, at = f(), now
		}
		return last
	}
}

// waitMoving waits until count reaches want. It fails only when count stands
// still for await.Limit: on a busy machine a big drain may take long, but
// one that stopped is stuck.
func waitMoving(t *testing.T, what string, want int, count func() int) {
	t.Helper()
	look := throttle(lookEvery, count)
	for n := look(); n < want; n = look() {
		await.True(t, fmt.Sprintf("%s: %d of %d, and no more since", what, n, want), func() bool { return look() != n })
	}
}

// seqSender is the config of the sender every chain test starts with: a seq
// source of total events in batches of batch, a memory channel, and an avro
// sink to port; extra lines are added to it.
func (c *cluster) seqSender(total, batch, port int, extra ...string) string {
	return c.config("sender.properties", append([]string{
		"a1.sources = r1", "a1.channels = c1", "a1.sinks = k1",
		"a1.sources.r1.type = seq", fmt.Sprintf("a1.sources.r1.totalEvents = %d", total),
		fmt.Sprintf("a1.sources.r1.batchSize = %d", batch),
		"a1.sources.r1.backoffSleepIncrement = 50", "a1.sources.r1.maxBackoffSleep = 200",
		"a1.sources.r1.channels = c1",
		"a1.channels.c1.type = memory", "a1.channels.c1.capacity = 10000",
		fmt.Sprintf("a1.channels.c1.transactionCapacity = %d", batch),
		"a1.sinks.k1.type = avro", "a1.sinks.k1.channel = c1", "a1.sinks.k1.hostname = 127.0.0.1",
		fmt.Sprintf("a1.sinks.k1.port = %d", port), fmt.Sprintf("a1.sinks.k1.batch-size = %d", batch),
		"a1.sinks.k1.connect-timeout = 2000", "a1.sinks.k1.request-timeout = 5000",
	}, extra...)...)
}
