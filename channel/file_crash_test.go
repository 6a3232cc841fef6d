// Crash test: the test binary runs itself as a child process that puts and
// takes concurrently on a file channel, printing every put before its commit
// ("p"), every put whose commit returned ("P"), every take before its commit
// ("t") and every take whose commit returned ("T"). The parent SIGKILLs it at
// a random moment, many times over the same directories, then drains what is
// left and checks the three invariants:
//
//   - no loss: every event whose put commit returned was taken by a commit
//     that returned, or is still there (or was in a take whose commit was
//     under way at a kill, and so may or may not have been committed);
//   - no committed take delivered again, before or after a restart;
//   - nothing phantom: every event ever delivered was put by a child, and
//     none is delivered twice by the final drain.
//
// TestFileCrashDedup runs the same with every putter an upstream sender: it
// puts with PutFrom (its own origin, numbers counting up), and each round
// starts by sending again the last 40 numbers it announced before the kill,
// as a sink resends its window after a crash. The same invariants then say
// the dedup table is exactly as durable as the events: a resent event that
// was committed is never put twice (it would be delivered again), and one
// that was not is put (or it would be lost).
package channel_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
)

const crashChildEnv = "FLUMED_FILE_CRASH_DIR"

func TestFileCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("the child of TestFileCrash: runs only when that test starts it")
	}
	round := os.Getenv("FLUMED_FILE_CRASH_ROUND")
	dedup := os.Getenv("FLUMED_FILE_CRASH_DEDUP") != ""
	o := fileOptions(dir)
	o.Capacity, o.TransactionCapacity = 1_000_000, 100
	o.SegmentSize = 1 << 20 // small segments: releases happen while we are killed
	ch, err := channel.OpenFile("crash", o, nil)
	if err != nil {
		fmt.Printf("@error open: %v\n", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	say := func(kind string, ids []string) {
		mu.Lock()
		defer mu.Unlock()
		// One write per line: the parent reads whole lines up to the kill.
		os.Stdout.WriteString("@" + kind + " " + strings.Join(ids, " ") + "\n")
	}
	say("ready", nil)
	// A taker that found the channel empty waits for the next put commit
	// rather than spinning on empty takes.
	committed := make(chan struct{}, 1)
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Add(2)
		go func() { // putter
			defer wg.Done()
			body := make([]byte, 200+g*300)
			origin := channel.OriginID{byte(g + 1)}
			n := 0
			if dedup {
				n, _ = strconv.Atoi(os.Getenv(fmt.Sprintf("FLUMED_FILE_CRASH_FROM_%d", g)))
			}
			for {
				k := 1 + rand.IntN(20)
				var ids []string
				var evs []channel.Event
				var seqs []uint64
				for range k {
					id := fmt.Sprintf("r%s-g%d-%d", round, g, n)
					if dedup {
						id = fmt.Sprintf("o%d-%d", g, n)
					}
					seqs = append(seqs, uint64(n))
					n++
					ids = append(ids, id)
					evs = append(evs, channel.Event{Headers: map[string]string{"id": id}, Body: body})
				}
				tx := ch.Begin()
				var err error
				if dedup {
					_, err = channel.PutFrom(tx, origin, seqs, evs)
				} else {
					err = tx.Put(evs...)
				}
				if err != nil {
					fmt.Printf("@error put: %v\n", err)
					os.Exit(2)
				}
				say("p", ids)
				if err := tx.Commit(); err != nil {
					fmt.Printf("@error commit put: %v\n", err)
					os.Exit(2)
				}
				say("P", ids)
				select {
				case committed <- struct{}{}:
				default: // a taker will find this one's events anyway
				}
			}
		}()
		go func() { // taker
			defer wg.Done()
			for {
				tx := ch.Begin()
				got, err := tx.Take(1 + rand.IntN(30))
				if err != nil {
					fmt.Printf("@error take: %v\n", err)
					os.Exit(2)
				}
				var ids []string
				for _, e := range got {
					ids = append(ids, e.Headers["id"])
				}
				if len(ids) > 0 && rand.IntN(5) == 0 {
					tx.Rollback()
					continue
				}
				say("t", ids)
				if err := tx.Commit(); err != nil {
					fmt.Printf("@error commit take: %v\n", err)
					os.Exit(2)
				}
				say("T", ids)
				if len(ids) == 0 {
					<-committed
				}
			}
		}()
	}
	wg.Wait()
}

// crashLedger is what the parent learned from its children.
type crashLedger struct {
	announced map[string]bool // put, commit maybe under way
	acked     map[string]bool // put commit returned
	taken     map[string]bool // take commit returned
	inFlight  map[string]bool // take commit under way at a kill (or later confirmed)
	pending   map[string]bool // take announced in this round, not yet confirmed
	next      map[string]int  // dedup: per putter, the number after the last announced
}

func (l *crashLedger) line(t *testing.T, s string) {
	kind, rest, _ := strings.Cut(strings.TrimPrefix(s, "@"), " ")
	ids := strings.Fields(rest)
	switch kind {
	case "error":
		t.Fatalf("child failed: %s", rest)
	case "p":
		for _, id := range ids {
			l.announced[id] = true
			if g, n, ok := strings.Cut(id, "-"); ok && strings.HasPrefix(g, "o") {
				k, _ := strconv.Atoi(n)
				l.next[g] = max(l.next[g], k+1)
			}
		}
	case "P":
		for _, id := range ids {
			l.acked[id] = true
		}
	case "t":
		for _, id := range ids {
			if l.taken[id] {
				t.Fatalf("event %s delivered again after its take committed", id)
			}
			if !l.announced[id] {
				t.Fatalf("phantom event %s delivered", id)
			}
			l.pending[id] = true
		}
	case "T":
		for _, id := range ids {
			l.taken[id] = true
			delete(l.pending, id)
		}
	}
}

func TestFileCrash(t *testing.T) { crashRounds(t, false) }

func TestFileCrashDedup(t *testing.T) { crashRounds(t, true) }

func crashRounds(t *testing.T, dedup bool) {
	if testing.Short() {
		t.Skip("-short: the crash test starts many processes")
	}
	dir := t.TempDir()
	l := &crashLedger{announced: map[string]bool{}, acked: map[string]bool{}, taken: map[string]bool{},
		inFlight: map[string]bool{}, pending: map[string]bool{}, next: map[string]int{}}
	const rounds = 20
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFileCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("FLUMED_FILE_CRASH_ROUND=%d", round))
		if dedup {
			cmd.Env = append(cmd.Env, "FLUMED_FILE_CRASH_DEDUP=1")
			for g := range 3 {
				cmd.Env = append(cmd.Env, fmt.Sprintf("FLUMED_FILE_CRASH_FROM_%d=%d", g, max(l.next[fmt.Sprintf("o%d", g)]-40, 0)))
			}
		}
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "@") {
					lines <- sc.Text()
				}
			}
			close(lines)
		}()
		ready := false
		kill := time.After(10 * time.Second) // a safety net: the kill below comes much sooner
		for s := range lines {
			if !ready {
				if !strings.HasPrefix(s, "@ready") {
					t.Fatalf("child round %d: %s", round, s)
				}
				ready = true
				kill = time.After(time.Duration(30+rand.IntN(250)) * time.Millisecond)
				continue
			}
			l.line(t, s)
			select {
			case <-kill:
				cmd.Process.Signal(syscall.SIGKILL)
				kill = nil
			default:
			}
		}
		if kill != nil { // the child ended on its own
			t.Fatalf("child round %d exited before the kill: %v", round, cmd.Wait())
		}
		cmd.Wait()
		// Takes whose commit was under way may or may not have committed.
		for id := range l.pending {
			l.inFlight[id] = true
		}
		clear(l.pending)
	}

	o := fileOptions(dir)
	o.Capacity, o.TransactionCapacity = 1_000_000, 100
	ch := openFile(t, o)
	defer ch.Close()
	drained := map[string]bool{}
	for {
		got := fileTake(t, ch, 100)
		if len(got) == 0 {
			break
		}
		for _, e := range got {
			id := e.Headers["id"]
			switch {
			case drained[id]:
				t.Fatalf("event %s delivered twice by the drain", id)
			case l.taken[id]:
				t.Fatalf("event %s delivered again after its take committed", id)
			case !l.announced[id]:
				t.Fatalf("phantom event %s", id)
			}
			drained[id] = true
		}
	}
	lost := 0
	for id := range l.acked {
		if !l.taken[id] && !drained[id] && !l.inFlight[id] {
			if lost < 10 {
				t.Errorf("acknowledged event %s lost", id)
			}
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d acknowledged events lost", lost)
	}
	if st := ch.Stats(); st.Size != 0 {
		t.Errorf("size after the drain: %d", st.Size)
	}
	t.Logf("%d rounds: %d events acknowledged, %d taken by committed takes, %d drained at the end, %d takes under way at kills",
		rounds, len(l.acked), len(l.taken), len(drained), len(l.inFlight))
}
