package e2e

// Taildir through crashes and rotations: an application appends numbered
// lines to logs/app.log and rotates it by renaming (app.log → app.log.N, then
// a new app.log), sometimes writing a few more lines into the renamed file
// before it reopens, as applications do after logrotate's "create". A flumed
// agent tails app.log (the pattern matches only the current name, Flume's
// usual configuration) into a file channel drained by a file_roll sink. The
// agent is SIGKILLed repeatedly, and the log is sometimes rotated while it is
// down, so the restarted agent must find the renamed file by its inode and
// fingerprint and finish it. At the end every line is in the sink's output,
// and the duplicates per kill are at most one batch at the channel's input
// and the sink's window at its output: the source's batch committed to the
// channel whose position was not yet synced, and the sink's batches written
// and not yet committed (sink.Window(depth) of them, README's "Delivery and
// duplicates").
//
// A file that leaves the pattern before any agent has taken it up cannot be
// read by anyone: nothing says it was ever app.log. So app.log is renamed
// only once the agent's position journal names its inode with an identity a
// restart can check (a fingerprint or a creation time): the application's
// own rotations wait for that, none happens while the agent is down, and the
// test waits for it before a kill after which it rotates. "The agent is up"
// is not enough: a rotation lands unseen until the agent's next directory
// scan, and a kill in between followed by a rotation while down (or a second
// rotation while the agent lags) renames a file nobody saw.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/sink"
)

// rotatingLog is the application: numbered lines (EventBody, from 1),
// rotation by rename.
type rotatingLog struct {
	dir     string
	journal string // the agent's position journal

	mu   sync.Mutex
	f    *os.File
	seq  int
	gen  int
	late *os.File // the renamed file, still written until the next tick
	held bool     // the test is killing the agent: no rotation of the application's own
	seen map[uint64]bool
}

func (r *rotatingLog) path() string { return filepath.Join(r.dir, "app.log") }

func (r *rotatingLog) open() error {
	f, err := os.OpenFile(r.path(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	r.f = f
	return err
}

// write appends n lines in one write; a renamed file still open gets them
// instead (the application has not reopened yet), once.
func (r *rotatingLog) write(n int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for range n {
		r.seq++
		b.WriteString(EventBody(r.seq))
		b.WriteByte('\n')
	}
	if r.late != nil {
		_, err := r.late.WriteString(b.String())
		r.late.Close()
		r.late = nil
		return err
	}
	_, err := r.f.WriteString(b.String())
	return err
}

// rotate renames app.log and starts a new one; with late, the next write
// still goes to the renamed file.
func (r *rotatingLog) rotate(late bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rotateLocked(late)
}

func (r *rotatingLog) rotateLocked(late bool) error {
	r.gen++
	if err := os.Rename(r.path(), fmt.Sprintf("%s.%d", r.path(), r.gen)); err != nil {
		return err
	}
	if late {
		r.late = r.f
	} else {
		r.f.Close()
	}
	return r.open()
}

// rotateIfTaken is the application's own rotation: it happens only when
// the test does not hold rotations and an agent has taken up app.log. The
// check and the rename are one step under the lock, so a rotation cannot
// slip in after the test decided to kill.
func (r *rotatingLog) rotateIfTaken(late bool) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held || !r.takenLocked() {
		return false, nil
	}
	return true, r.rotateLocked(late)
}

// hold stops (or allows again) the application's own rotations; a rotation
// in progress has finished when it returns.
func (r *rotatingLog) hold(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.held = on
}

// taken reports whether an agent has taken up the current app.log.
func (r *rotatingLog) taken() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.takenLocked()
}

// takenLocked reads the agent's position journal (one "crc json" line per
// record, flumed's documented format) for the inode of the current app.log
// with a fingerprint or a creation time: what a restart finds a renamed file
// by. Files are never deleted here, so an inode seen once stays ours.
func (r *rotatingLog) takenLocked() bool {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(r.f.Fd()), &st); err != nil {
		return false
	}
	if r.seen[st.Ino] {
		return true
	}
	data, err := os.ReadFile(r.journal)
	if err != nil {
		return false
	}
	if r.seen == nil {
		r.seen = make(map[uint64]bool)
	}
	for _, line := range strings.Split(string(data), "\n") {
		_, body, ok := strings.Cut(line, " ")
		var rec struct {
			Inode uint64 `json:"inode"`
			FPN   int    `json:"fpn"`
			Birth int64  `json:"birth"`
		}
		if ok && json.Unmarshal([]byte(body), &rec) == nil && rec.Inode != 0 && (rec.FPN > 0 || rec.Birth != 0) {
			r.seen[rec.Inode] = true
		}
	}
	return r.seen[st.Ino]
}

func (r *rotatingLog) written() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}

func (r *rotatingLog) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.f.Close()
	if r.late != nil {
		r.late.Close()
	}
}

func TestTaildirLosesNothingThroughKillsAndRotations(t *testing.T) {
	const (
		kills     = 6
		srcBatch  = 100
		sinkBatch = 100
	)
	c := newCluster(t)
	port := c.ports(1)[0]
	logs := c.path("logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := c.config("agent.properties",
		"a1.sources = r1",
		"a1.channels = c1",
		"a1.sinks = k1",
		"a1.sources.r1.type = TAILDIR",
		"a1.sources.r1.channels = c1",
		"a1.sources.r1.filegroups = g",
		// A backslash escapes in .properties: the value is app\.log.
		"a1.sources.r1.filegroups.g = "+logs+`/app\\.log`,
		"a1.sources.r1.positionFile = "+c.path("taildir_position.json"),
		fmt.Sprintf("a1.sources.r1.batchSize = %d", srcBatch),
		"a1.sources.r1.backoffSleepIncrement = 20",
		"a1.sources.r1.maxBackoffSleep = 100",
		"a1.channels.c1.type = file",
		"a1.channels.c1.checkpointDir = "+c.path("channel", "checkpoint"),
		"a1.channels.c1.dataDirs = "+c.path("channel", "data"),
		"a1.channels.c1.transactionCapacity = 1000",
		"a1.channels.c1.minimumRequiredSpace = 10485760",
		"a1.sinks.k1.type = file_roll",
		"a1.sinks.k1.channel = c1",
		"a1.sinks.k1.sink.directory = "+c.path("out"),
		"a1.sinks.k1.sink.rollInterval = 0",
		fmt.Sprintf("a1.sinks.k1.sink.batchSize = %d", sinkBatch),
	)
	app := &rotatingLog{dir: logs, journal: c.path("taildir_position.json.journal")}
	if err := app.open(); err != nil {
		t.Fatal(err)
	}
	defer app.close()
	agent := c.proc(ProcOptions{Name: "agent", Configs: []string{conf}, MetricsPort: port})
	c.start(agent)

	l := NewLedger()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	r := &RollReader{Dir: c.path("out"), Collector: "out", Ledger: l, Parse: ParseEvent}
	wg.Go(func() { _ = r.Run(ctx, 50*time.Millisecond) })
	// The application: 25 lines every 2 ms, a rotation every 150 ticks (put
	// off while the test holds rotations or no agent has taken up app.log).
	writerDone := make(chan error, 1)
	writerCtx, stopWriter := context.WithCancel(ctx)
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		due, late := false, false
		for i := 1; ; i++ {
			select {
			case <-writerCtx.Done():
				writerDone <- nil
				return
			case <-tick.C:
			}
			if err := app.write(25); err != nil {
				writerDone <- err
				return
			}
			if i%150 == 0 {
				due, late = true, i%300 == 0
			}
			if due {
				done, err := app.rotateIfTaken(late)
				if err != nil {
					writerDone <- err
					return
				}
				due = !done
			}
		}
	})
	defer func() { stopWriter(); cancel(); wg.Wait() }()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	for k := 1; k <= kills; k++ {
		// Not a wait: the random moment of the kill is what is simulated.
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		app.hold(true)
		rotateWhileDown := k%2 == 0
		if rotateWhileDown {
			// Only a file an agent has taken up can be finished after it left
			// the pattern.
			await.True(t, "the agent to take up app.log", throttle(lookEvery, app.taken))
		}
		c.kill(agent)
		t.Logf("kill %d: %d lines written, %d in the output", k, app.written(), l.Total("out"))
		if rotateWhileDown {
			// Rotate while the agent is down: the renamed file leaves the
			// pattern before the agent has finished it.
			if err := app.rotate(k%4 == 0); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond) // the simulated time down
		c.start(agent)
		app.hold(false)
	}
	time.Sleep(300 * time.Millisecond) // not a wait: the application writes on after the last restart
	stopWriter()
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	total := app.written()
	waitMoving(t, "every line in the output", total, func() int { return total - len(l.Tally(1, total).Missing) })
	// The sink has written out all it took: late duplicates would be in the
	// output now, and a last poll reads them.
	c.idle(agent)
	if err := r.Poll(); err != nil {
		t.Fatal(err)
	}
	got := l.Tally(1, total)
	window := sink.Window(sink.DefaultPipelineDepth) // file_roll's
	bound := kills * (srcBatch + window*sinkBatch)
	t.Logf("%d lines through %d kills and %d rotations: %s", total, kills, app.gen, got)
	if len(got.Missing) != 0 || got.Foreign != 0 || got.Duplicates > bound {
		t.Errorf("want nothing missing or foreign and at most %d duplicates (%d kills × (%d + %d × %d)): %s",
			bound, kills, srcBatch, window, sinkBatch, got)
	}
	if g := l.GarbageLines(); len(g) != 0 {
		t.Errorf("lines that are not events in the output: %q", g)
	}
}
