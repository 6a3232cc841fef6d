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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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

// metric polls p's /metrics until cond holds for the value of component's
// attr, or fails the test after timeout; it returns the last value.
func (c *cluster) metric(p *Proc, component, attr string, timeout time.Duration, what string, cond func(int64) bool) int64 {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	last := int64(-1)
	for {
		if m, err := p.Metrics(context.Background()); err == nil {
			last = m.Int(component, attr)
			if cond(last) {
				return last
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: %s %s.%s is %d after %s", what, p.Name(), component, attr, last, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
