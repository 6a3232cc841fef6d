package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/flumed/flumed/internal/e2e"
)

// demo is the running exercise: processes, the writer, and what watches them.
type demo struct {
	ctx   context.Context
	dir   string // DEMO_DIR
	conf  string // testdata/failover
	start time.Time

	agent, taildir, c1, c2 *e2e.Proc
	w                      *e2e.Writer
	ledger                 *e2e.Ledger
	acc1, acc2             *e2e.CounterWatch // the collectors' accepted events
	stopWatch              context.CancelFunc
	wg                     sync.WaitGroup

	mu      sync.Mutex
	samples int  // collector lines echoed so far
	echoLog bool // echo the agent's failover log lines

	phases   []phase // which lines each step wrote
	bothDead int     // lines written when both collectors were killed
	results  []string
}

// phase is a step of the exercise and the lines written during it.
type phase struct {
	name      string
	from, end int // lines from..end-1 (end set when the next phase starts)
}

func newDemo() (*demo, error) {
	root, err := e2e.RepoRoot()
	if err != nil {
		return nil, err
	}
	if err := portsFree(52020, 52021); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "flumed-demo-")
	if err != nil {
		return nil, err
	}
	return &demo{ctx: context.Background(), dir: dir, conf: filepath.Join(root, "testdata", "failover"),
		start: time.Now(), ledger: e2e.NewLedger()}, nil
}

// setup describes the three processes and starts the watches and the writer
// (which writes nothing until step 1).
func (d *demo) setup(bin string) error {
	ports, err := e2e.FreePorts(4)
	if err != nil {
		return err
	}
	env := []string{"DEMO_DIR=" + d.dir}
	proc := func(name, conf string, metrics, ready int, hook func(string, string)) *e2e.Proc {
		return e2e.NewProc(e2e.ProcOptions{Name: name, Bin: bin, Configs: []string{filepath.Join(d.conf, conf)},
			Agent: "a1", Dir: d.dir, Env: env, MetricsPort: metrics, ReadyPort: ready, OnLine: hook})
	}
	d.c1 = proc("collector1", "collector1.properties", ports[0], 52020, d.collectorHook("collector1"))
	d.c2 = proc("collector2", "collector2.properties", ports[1], 52021, d.collectorHook("collector2"))
	d.agent = proc("agent", "agent.properties", ports[2], 0, d.agentHook)
	d.taildir = proc("agent-taildir", "agent-taildir.properties", ports[3], 0, d.agentHook)

	d.w = &e2e.Writer{Path: filepath.Join(d.dir, "app.log"), Every: 100 * time.Millisecond, PerTick: 2}
	if err := d.w.Open(); err != nil {
		return err
	}
	d.acc1 = &e2e.CounterWatch{Proc: d.c1, Component: "SOURCE.r1", Attr: "EventAcceptedCount"}
	d.acc2 = &e2e.CounterWatch{Proc: d.c2, Component: "SOURCE.r1", Attr: "EventAcceptedCount"}
	ctx, cancel := context.WithCancel(context.Background())
	d.stopWatch = cancel
	for _, w := range []*e2e.CounterWatch{d.acc1, d.acc2} {
		d.wg.Go(func() { w.Run(ctx, 10*time.Millisecond) })
	}
	return nil
}

// collectorHook records the events a collector's logger sink prints, and
// echoes the first few so the reader sees Flume's format.
func (d *demo) collectorHook(name string) func(stream, line string) {
	record := e2e.LoggerHook(d.ledger, name, e2e.ParseEvent)
	return func(stream, line string) {
		record(stream, line)
		if stream != "stdout" || !strings.Contains(line, "Event: ") {
			return
		}
		d.mu.Lock()
		echo := d.samples < 3
		d.samples++
		d.mu.Unlock()
		if echo {
			fmt.Printf("           %s| %s\n", name, line)
		}
	}
}

// agentHook echoes the failover processor's log lines: they show the
// penalty schedule as it happens.
func (d *demo) agentHook(stream, line string) {
	if stream != "stderr" {
		return
	}
	d.mu.Lock()
	echo := d.echoLog
	d.mu.Unlock()
	for _, s := range []string{"sink failed", "still failing", "sink recovered"} {
		if echo && strings.Contains(line, s) {
			fmt.Printf("           agent log| %s\n", line)
			return
		}
	}
}

// close kills everything the demo started.
func (d *demo) close() {
	if d.w != nil {
		_ = d.w.Stop()
	}
	for _, p := range []*e2e.Proc{d.agent, d.taildir, d.c1, d.c2} {
		if p != nil {
			_ = p.Close()
		}
	}
	if d.stopWatch != nil {
		d.stopWatch()
		d.wg.Wait()
	}
}

// say prints a line of narration.
func (d *demo) say(format string, args ...any) {
	fmt.Printf("[%s] %s\n", d.elapsed(), fmt.Sprintf(format, args...))
}

// note prints an indented explanation.
func (d *demo) note(format string, args ...any) {
	fmt.Printf("           %s\n", fmt.Sprintf(format, args...))
}

// heading starts a step: the lines written from now on belong to it.
func (d *demo) heading(name, title string) {
	n := d.w.Written() + 1
	if len(d.phases) > 0 {
		d.phases[len(d.phases)-1].end = n
	}
	d.phases = append(d.phases, phase{name: name, from: n})
	fmt.Printf("\n[%s] ==> %s: %s\n", d.elapsed(), strings.ToUpper(name), title)
}

// startProc starts p and waits until it is ready.
func (d *demo) startProc(p *e2e.Proc) error {
	if err := p.Start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		return err
	}
	d.say("%s is up (pid %d): flumed %s", p.Name(), p.Pid(), strings.Join(p.Args(), " "))
	return nil
}

// kill SIGKILLs p.
func (d *demo) kill(p *e2e.Proc) error {
	pid := p.Pid()
	if err := p.Kill(); err != nil {
		return err
	}
	d.say("kill -9 %d   (%s)", pid, p.Name())
	return nil
}

// channelSize is the agent's channel's size, or -1 when it does not answer.
func (d *demo) channelSize(p *e2e.Proc) int64 {
	m, err := p.Metrics(d.ctx)
	if err != nil {
		return -1
	}
	return m.Int("CHANNEL.c1", "ChannelSize")
}

// status prints one line: what each collector printed, and what the agent holds.
func (d *demo) status(agent *e2e.Proc) {
	held := "down"
	if n := d.channelSize(agent); n >= 0 {
		held = fmt.Sprint(n)
	}
	d.say("   app.log %5d lines | collector1 printed %5d | collector2 printed %5d | agent channel holds %s",
		d.w.Written(), d.ledger.Total("collector1"), d.ledger.Total("collector2"), held)
}

// watch prints the status every second for dur, or until done holds.
func (d *demo) watch(agent *e2e.Proc, dur time.Duration, done func() bool) error {
	end := time.Now().Add(dur)
	for time.Now().Before(end) {
		select {
		case <-d.ctx.Done():
			return d.ctx.Err()
		case <-time.After(time.Second):
		}
		d.status(agent)
		if done != nil && done() {
			return nil
		}
	}
	return nil
}

// result remembers a line for the final report.
func (d *demo) result(format string, args ...any) {
	d.results = append(d.results, fmt.Sprintf(format, args...))
}
