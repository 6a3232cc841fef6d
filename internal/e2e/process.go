package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProcOptions describe one flumed process: `flumed run -c <Configs...> -n
// <Agent> --metrics-addr 127.0.0.1:<MetricsPort>`.
type ProcOptions struct {
	Name    string   // names the output files and log lines: "agent", "collector1"
	Bin     string   // the flumed binary (Build)
	Configs []string // -c files, in order: later files override earlier ones
	Agent   string   // -n; empty runs the file's only agent
	Dir     string   // <Dir>/<Name>.out and .err keep stdout and stderr across restarts
	Env     []string // added to the test's environment (DEMO_DIR=...)
	// MetricsPort, when set, serves /metrics, /healthz and /readyz there.
	MetricsPort int
	// ReadyPort, when set, is a port the process listens on once it runs
	// (an avro source's): WaitReady dials it.
	ReadyPort int
	// Args are more flags for `flumed run`.
	Args []string
	// OnLine sees every complete output line, stream "stdout" or "stderr"
	// (the logger sink prints events to stdout, the log goes to stderr). It is
	// called from the output copiers, one goroutine per stream.
	OnLine func(stream, line string)
}

// Proc is one flumed process that can be killed and started again with the
// same command line. Its methods may be called from any goroutine.
type Proc struct {
	o ProcOptions

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current run has been reaped
	exitErr error
	starts  int
	outputs []*lineWriter
	orphans []int // children left behind by killed runs (exec source's commands)
}

// NewProc describes a process; Start runs it.
func NewProc(o ProcOptions) *Proc { return &Proc{o: o} }

// Name is the process's name.
func (p *Proc) Name() string { return p.o.Name }

// MetricsAddr is where the process serves /metrics ("" when it does not).
func (p *Proc) MetricsAddr() string {
	if p.o.MetricsPort == 0 {
		return ""
	}
	return Addr(p.o.MetricsPort)
}

// Args is the command line Start runs (without the binary).
func (p *Proc) Args() []string {
	args := []string{"run"}
	for _, c := range p.o.Configs {
		args = append(args, "-c", c)
	}
	if p.o.Agent != "" {
		args = append(args, "-n", p.o.Agent)
	}
	if p.o.MetricsPort != 0 {
		args = append(args, "--metrics-addr", p.MetricsAddr())
	}
	return append(args, p.o.Args...)
}

// Start runs the process. Its output is appended to <Dir>/<Name>.out/.err
// after a line marking the start.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !closed(p.done) {
		return fmt.Errorf("%s: already running (pid %d)", p.o.Name, p.cmd.Process.Pid)
	}
	p.starts++
	cmd := exec.Command(p.o.Bin, p.Args()...)
	cmd.Env = append(os.Environ(), p.o.Env...)
	// If the test binary dies, its flumed processes die with it rather than
	// holding ports and directories for the next run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var outs []*lineWriter
	for _, stream := range []string{"stdout", "stderr"} {
		ext := map[string]string{"stdout": ".out", "stderr": ".err"}[stream]
		f, err := os.OpenFile(filepath.Join(p.o.Dir, p.o.Name+ext), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			closeAll(outs)
			return fmt.Errorf("%s: output file: %w", p.o.Name, err)
		}
		fmt.Fprintf(f, "=== start %d at %s: flumed %s\n", p.starts, time.Now().Format(time.RFC3339Nano), strings.Join(p.Args(), " "))
		outs = append(outs, &lineWriter{f: f, stream: stream, hook: p.o.OnLine})
	}
	cmd.Stdout, cmd.Stderr = outs[0], outs[1]
	if err := cmd.Start(); err != nil {
		closeAll(outs)
		return fmt.Errorf("%s: start: %w", p.o.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.exitErr, p.outputs = cmd, done, nil, outs
	go func() {
		err := cmd.Wait()
		for _, o := range outs {
			o.finish()
		}
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// Pid is the current run's process id (0 before the first Start).
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running says whether the current run has not exited.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !closed(p.done)
}

// Exited returns the current run's exit error once it has exited on its own
// or been stopped, and ok=false while it runs.
func (p *Proc) Exited() (err error, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || !closed(p.done) {
		return nil, false
	}
	return p.exitErr, true
}

// Kill SIGKILLs the process and waits until it is reaped. Children it
// started (an exec source's command runs in its own process group) survive,
// as they would a real crash; they are remembered and killed by Close.
func (p *Proc) Kill() error {
	return p.signal(syscall.SIGKILL, 10*time.Second)
}

// Terminate sends SIGTERM (a graceful stop: sources stop, sinks drain) and
// waits up to timeout, then SIGKILLs.
func (p *Proc) Terminate(timeout time.Duration) error {
	if err := p.signal(syscall.SIGTERM, timeout); err != nil {
		return p.Kill()
	}
	return nil
}

func (p *Proc) signal(sig syscall.Signal, wait time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || closed(done) {
		return nil
	}
	kids := children(cmd.Process.Pid)
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: %s: %w", p.o.Name, sig, err)
	}
	select {
	case <-done:
	case <-time.After(wait):
		return fmt.Errorf("%s: still running %s after %s", p.o.Name, wait, sig)
	}
	p.mu.Lock()
	p.orphans = append(p.orphans, kids...)
	p.mu.Unlock()
	return nil
}

// Quit sends SIGQUIT, which makes a Go program print every goroutine's
// stack to stderr (and so to <Dir>/<Name>.err) and exit: for post-mortems.
func (p *Proc) Quit(wait time.Duration) error {
	return p.signal(syscall.SIGQUIT, wait)
}

// Restart kills the process (SIGKILL) if it runs and starts it again.
func (p *Proc) Restart() error {
	if err := p.Kill(); err != nil {
		return err
	}
	return p.Start()
}

// Close SIGKILLs the process and whatever children it left behind.
func (p *Proc) Close() error {
	err := p.Kill()
	p.mu.Lock()
	orphans := p.orphans
	p.orphans = nil
	p.mu.Unlock()
	for _, pid := range orphans {
		// Only a process that is still the orphan we saw: its parent is now
		// init (or a subreaper), never our own test process.
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return err
}

// WaitReady waits until the process serves /metrics (when MetricsPort is
// set) and accepts connections on ReadyPort (when set). It fails at once if
// the process exits, quoting the end of its stderr.
func (p *Proc) WaitReady(ctx context.Context) error {
	for {
		if err, ok := p.Exited(); ok {
			return fmt.Errorf("%s exited (%v) before it was ready:\n%s", p.o.Name, err, p.Tail("stderr", 20))
		}
		ready := true
		if p.o.MetricsPort != 0 {
			if _, err := p.Metrics(ctx); err != nil {
				ready = false
			}
		}
		if ready && p.o.ReadyPort != 0 {
			c, err := net.DialTimeout("tcp", Addr(p.o.ReadyPort), 200*time.Millisecond)
			if err != nil {
				ready = false
			} else {
				c.Close()
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w\n%s", p.o.Name, ctx.Err(), p.Tail("stderr", 20))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Metrics fetches Flume's monitoring JSON from /metrics.
func (p *Proc) Metrics(ctx context.Context) (Metrics, error) {
	if p.o.MetricsPort == 0 {
		return nil, fmt.Errorf("%s: no metrics port", p.o.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.MetricsAddr()+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := metricsClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: /metrics: %s", p.o.Name, resp.Status)
	}
	var m Metrics
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: /metrics: %w", p.o.Name, err)
	}
	return m, nil
}

// Tail returns the last n lines of a stream's output file ("stdout" or
// "stderr"), across restarts, for failure messages.
func (p *Proc) Tail(stream string, n int) string {
	ext := ".out"
	if stream == "stderr" {
		ext = ".err"
	}
	b, err := os.ReadFile(filepath.Join(p.o.Dir, p.o.Name+ext))
	if err != nil {
		return fmt.Sprintf("(no %s: %v)", stream, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + p.o.Name + "| " + strings.Join(lines, "\n  "+p.o.Name+"| ")
}

// metricsClient keeps no idle connections: a killed process's port may be
// reused by its restart, and a test ends with no client goroutines left.
var metricsClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// Metrics is Flume's monitoring JSON: "<TYPE>.<name>" → attribute → value,
// every value a string.
type Metrics map[string]map[string]string

// Int returns a counter as an integer, or -1 when the component or the
// attribute is missing or not a number.
func (m Metrics) Int(component, attr string) int64 {
	v, ok := m[component][attr]
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// lineWriter copies one output stream to its file and hands complete lines
// to the hook.
type lineWriter struct {
	f      *os.File
	stream string
	hook   func(stream, line string)
	buf    []byte // an incomplete last line
}

// Write is called by os/exec's copier goroutine only.
func (w *lineWriter) Write(b []byte) (int, error) {
	_, _ = w.f.Write(b)
	if w.hook == nil {
		return len(b), nil
	}
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.hook(w.stream, string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(b), nil
}

// finish runs after the process was reaped and its output copied.
func (w *lineWriter) finish() {
	if w.hook != nil && len(w.buf) > 0 {
		w.hook(w.stream, string(w.buf))
	}
	w.buf = nil
	w.f.Close()
}

func closeAll(ws []*lineWriter) {
	for _, w := range ws {
		w.f.Close()
	}
}

func closed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// children lists the direct children of pid (Linux: /proc/<pid>/task/*/children).
func children(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// alive says whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}
