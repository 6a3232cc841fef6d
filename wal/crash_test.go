package wal

// The crash contract: a process SIGKILLed at any moment, while appending,
// syncing, rolling to a new segment (sealing the last), releasing or
// truncating, leaves a directory that Open repairs into
// a log holding every record acknowledged (Sync returned nil) and not
// released, intact and at its index, and nothing that was never written.
//
// The test binary re-executes itself as the child (TestMain dispatches on
// crashChildEnv). The child appends batches of payloadFor(index), syncs, and
// prints "ack <last index>" after each Sync and "releasing <index>" before
// each Release or TruncateFront (a kill inside may or may not release); the
// parent kills it at a random moment after its first acknowledgement (so a
// slow start on a busy machine does not use the round up), reopens the
// directory and checks. Several rounds run on the same directory, each child resuming where
// the previous one died.

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const crashChildEnv = "FLUMED_WAL_CRASH_CHILD"

// crashPayload is payloadFor, except that every 40th record is 256 KiB, so
// that a kill often lands inside a large write(2) and leaves a torn tail.
func crashPayload(i uint64) []byte {
	if i%40 != 0 {
		return payloadFor(i)
	}
	b := make([]byte, 256<<10)
	for j := range b {
		b[j] = byte(i + uint64(j)*13)
	}
	return b
}

func crashChild() {
	dir := os.Getenv(crashChildEnv)
	seed, _ := strconv.ParseUint(os.Getenv(crashChildEnv+"_SEED"), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 1))
	l, err := Open(dir, Options{SegmentSize: 16 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	for n := 0; ; n++ {
		next := l.LastIndex() + 1
		ps := make([][]byte, 1+rng.IntN(20))
		for i := range ps {
			ps[i] = crashPayload(next + uint64(i))
		}
		if _, _, err := l.Append(ps...); err != nil {
			fmt.Fprintln(os.Stderr, "child append:", err)
			os.Exit(2)
		}
		if err := l.Sync(); err != nil {
			fmt.Fprintln(os.Stderr, "child sync:", err)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stdout, "ack %d\n", l.LastIndex())
		if n%25 == 24 {
			last := l.LastIndex()
			rel := last + 1 - min(last, uint64(rng.IntN(300)))
			// Announce it first: if the kill lands inside Release, the
			// parent must allow for it having taken effect.
			fmt.Fprintf(os.Stdout, "releasing %d\n", rel)
			release := l.Release
			if n%50 == 49 {
				release = l.TruncateFront
			}
			if err := release(rel); err != nil {
				fmt.Fprintln(os.Stderr, "child release:", err)
				os.Exit(2)
			}
		}
	}
}

func TestSIGKILLedWriterLosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	var acked, released uint64
	for round := 0; round < 8; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s_SEED=%d", crashChildEnv, rng.Uint64()))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAt := time.Duration(50+rng.IntN(350)) * time.Millisecond
		var timer *time.Timer
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 2 {
				continue
			}
			v, _ := strconv.ParseUint(f[1], 10, 64)
			switch f[0] {
			case "ack":
				acked = max(acked, v)
				if timer == nil {
					timer = time.AfterFunc(killAt, func() { cmd.Process.Signal(syscall.SIGKILL) })
				}
			case "releasing":
				released = max(released, v)
			}
		}
		if timer != nil {
			timer.Stop()
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: child ended on its own (%v) instead of being killed", round, err)
		}

		l, err := Open(dir, Options{SegmentSize: 16 << 10})
		if err != nil {
			t.Fatalf("round %d: open after SIGKILL: %v", round, err)
		}
		intact, corrupt := scanWith(t, l, crashPayload)
		if len(corrupt) > 0 {
			t.Fatalf("round %d: a SIGKILL left damaged records: %v", round, corrupt)
		}
		if l.LastIndex() < acked {
			t.Fatalf("round %d: LastIndex %d, but %d was acknowledged", round, l.LastIndex(), acked)
		}
		for i := max(released, 1); i <= acked; i++ {
			if !intact[i] {
				t.Fatalf("round %d: acknowledged record %d (released up to %d) is gone; first %d", round, i, released, l.FirstIndex())
			}
		}
		t.Logf("round %d: killed after %v: acked %d, released %d, log %d..%d, repair: %s",
			round, killAt, acked, released, l.FirstIndex(), l.LastIndex(), l.Recovered())
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if acked == 0 {
		t.Fatal("no child ever acknowledged a record: the test proved nothing")
	}
}
