package e2e

// The exec source's limit, made plain: an agent running `tail -F -n +1` that
// is killed and restarted reads the whole log again (with plain `tail -F` it
// would re-read the last ten lines and skip whatever was written while it was
// down); exec cannot know where it stopped. A taildir source on the same log
// keeps its position in a synced journal and resumes: after the same kill it
// reads every line written while it was down and repeats at most one batch.
// The testdata/failover configurations, README and demo rely on both facts.
// Besides, the exercise's configuration files must be accepted as written.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/flumed/flumed/internal/await"
)

func TestExecRereadsWhereTaildirResumes(t *testing.T) {
	const before, whileDown, batch = 100, 50, 20
	c := newCluster(t)
	p := c.ports(2)
	w := &Writer{Path: c.path("app.log")}
	if err := w.Open(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := w.Write(before); err != nil {
		t.Fatal(err)
	}

	// Each agent writes what it reads to its own file_roll directory, read
	// into its own ledger.
	readers := map[string]*RollReader{}
	agent := func(name string, port int, source ...string) *Proc {
		d := c.path(name)
		lines := append([]string{
			"a1.sources = r1",
			"a1.channels = c1",
			"a1.sinks = k1",
			"a1.sources.r1.channels = c1",
			fmt.Sprintf("a1.sources.r1.batchSize = %d", batch),
			fileChannel("c1", d),
			"a1.sinks.k1.type = file_roll",
			"a1.sinks.k1.channel = c1",
			"a1.sinks.k1.sink.directory = " + d + "/out",
			"a1.sinks.k1.sink.rollInterval = 0",
		}, source...)
		readers[name] = &RollReader{Dir: d + "/out", Collector: name, Ledger: NewLedger(), Parse: ParseEvent}
		return c.proc(ProcOptions{Name: name, Configs: []string{c.config(name+".properties", lines...)}, MetricsPort: port})
	}
	ex := agent("exec", p[0],
		"a1.sources.r1.type = exec",
		"a1.sources.r1.command = tail -F -n +1 "+w.Path,
		"a1.sources.r1.batchTimeout = 100")
	td := agent("taildir", p[1],
		"a1.sources.r1.type = TAILDIR",
		"a1.sources.r1.filegroups = f1",
		"a1.sources.r1.filegroups.f1 = "+w.Path,
		"a1.sources.r1.positionFile = "+c.path("taildir", "position.json"),
		"a1.sources.r1.backoffSleepIncrement = 50",
		"a1.sources.r1.maxBackoffSleep = 200")

	// delivered waits until a's output holds every line written so far.
	delivered := func(a *Proc) Tally {
		t.Helper()
		r := readers[a.Name()]
		var got Tally
		await.NoError(t, a.Name()+" to deliver every line", throttle(lookEvery, func() error {
			if err := r.Poll(); err != nil {
				return err
			}
			if got = r.Ledger.Tally(1, w.Written()); len(got.Missing) != 0 {
				return fmt.Errorf("%s", got)
			}
			return nil
		}))
		return got
	}
	for _, a := range []*Proc{ex, td} {
		c.start(a)
		delivered(a)
		// Kill only once the sink has committed every take (it has found its
		// channel empty again), so the duplicates counted are the source's
		// alone: a sink's batches written and not yet committed would come
		// again too (README, "Delivery and duplicates").
		c.idle(a)
		c.kill(a)
	}
	if err := w.Write(whileDown); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*Proc{ex, td} {
		c.start(a)
		delivered(a)
	}
	// Anything more they would send is in their outputs once their sinks
	// have written out all they took.
	c.idle(ex)
	c.idle(td)
	exT, tdT := delivered(ex), delivered(td)
	t.Logf("exec: %s", exT)
	t.Logf("taildir: %s", tdT)
	if exT.Duplicates != before {
		t.Errorf("exec with tail -F -n +1: %d duplicates after the restart, want the %d lines read before it", exT.Duplicates, before)
	}
	if tdT.Duplicates > batch {
		t.Errorf("taildir: want at most one batch (%d) read again: %s", batch, tdT)
	}
}

func TestTheExercisesConfigurationsAreAcceptedAsWritten(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "testdata", "failover", "*.properties"))
	if err != nil || len(files) < 3 {
		t.Fatalf("testdata/failover holds %d configurations (%v), want at least 3", len(files), err)
	}
	for _, f := range files {
		cmd := exec.Command(flumed, "config", "check", "-c", f, "-n", "a1")
		cmd.Env = append(os.Environ(), "DEMO_DIR="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("flumed config check -c %s: %v\n%s", filepath.Base(f), err, out)
		}
	}
}
