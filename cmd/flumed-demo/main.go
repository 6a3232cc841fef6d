// Command flumed-demo runs the seed's failover exercise on one machine and
// narrates it (`make demo`): three flumed processes started from testdata/failover as
// written — an agent tailing app.log into a file channel with a failover sink
// group, and two collectors printing what they receive — a writer appending
// numbered lines to app.log, and a SIGKILL or a restart at each step. At the
// end it prints where every line landed and how long failover and failback
// took. Its last step repeats the agent's crash with the taildir source, to
// show what exec's `tail -F` does on a restart and taildir does not.
//
// It uses 127.0.0.1:52020 and :52021 (the configurations' ports) and a fresh
// directory under $TMPDIR, removed at the end unless -keep is given. It never
// touches anything else: the processes it starts are killed when it exits.
// Its pauses pace the story told to a person watching; the assertions of the
// same steps, which wait on evidence, are internal/e2e's tests.
//
// It is a tool beside flumed, built on the end-to-end harness (internal/e2e):
// nothing imports it, and flumed itself never imports that harness.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/flumed/flumed/internal/e2e"
)

func main() {
	keep := flag.Bool("keep", false, "keep the demo directory (logs, channels, app.log) at the end")
	flag.Parse()
	d, err := newDemo()
	if err == nil {
		// Ctrl-C ends the demo cleanly: the processes are killed below.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		d.ctx = ctx
		err = d.run()
	}
	if d != nil {
		d.close()
		if *keep || err != nil {
			fmt.Printf("\nThe demo's files are in %s (agent.err, collector1.out, app.log, ...).\n", d.dir)
		} else {
			os.RemoveAll(d.dir)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo: %v\n", err)
		os.Exit(1)
	}
}

// run is the exercise, step by step.
func (d *demo) run() error {
	d.say("The seed's failover exercise, with flumed. Working directory: %s", d.dir)
	d.say("Building flumed ...")
	bin, err := e2e.Build(filepath.Join(d.dir, "bin"))
	if err != nil {
		return err
	}
	if err := d.setup(bin); err != nil {
		return err
	}
	steps := []func() error{d.step1, d.step2, d.step3, d.step4, d.step5, d.step6, d.step7, d.step8}
	for _, s := range steps {
		if err := d.ctx.Err(); err != nil {
			return errors.New("interrupted")
		}
		if err := s(); err != nil {
			return err
		}
	}
	return d.report()
}

// portsFree checks that the configurations' ports can be used.
func portsFree(ports ...int) error {
	for _, p := range ports {
		l, err := net.Listen("tcp", e2e.Addr(p))
		if err != nil {
			return fmt.Errorf("port %d is in use (the exercise's collectors listen on 52020 and 52021): %w", p, err)
		}
		l.Close()
	}
	return nil
}

// elapsed is the time since the demo started, for the narration.
func (d *demo) elapsed() string {
	return fmt.Sprintf("%6.1fs", time.Since(d.start).Seconds())
}
