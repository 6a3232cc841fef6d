package sink

// The sinks and processors against the real memory channel, driven by the
// runner as the agent drives them: every event put is delivered exactly once,
// in order, and Drain ends with the channel empty. A failing sink in a
// failover group loses nothing: its rolled-back batches go to the next sink.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/fsutil"
)

func newMemoryWith(t *testing.T, n int) *channel.Memory {
	t.Helper()
	ch := channel.NewMemory("c1", channel.MemoryOptions{Capacity: 10000, TransactionCapacity: 1000})
	t.Cleanup(func() { _ = ch.Close() })
	fillNumbered(t, ch, n)
	return ch
}

// fillNumbered commits e0…e(n-1) to ch, 1000 per transaction.
func fillNumbered(t *testing.T, ch channel.Channel, n int) {
	t.Helper()
	events := numbered(n)
	for i := 0; i < n; i += 1000 {
		txn := ch.Begin()
		if err := txn.Put(events[i:min(i+1000, n)]...); err != nil {
			t.Fatal(err)
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// drain starts the sinks on ch, runs p until the channel is empty, and stops.
func drain(t *testing.T, ch channel.Channel, p Processor) {
	t.Helper()
	for _, s := range p.Sinks() {
		if err := s.Start(context.Background(), ch); err != nil {
			t.Fatal(err)
		}
	}
	empty := func() bool { return ch.Stats().Size == 0 }
	r := NewRunner("g1", p, RunnerOptions{BackoffStep: time.Millisecond, ErrorSleep: time.Millisecond, Empty: empty}, nil)
	r.Start(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Drain(ctx); err != nil {
		t.Fatalf("Drain = %v (left %d)", err, ch.Stats().Size)
	}
	for _, s := range p.Sinks() {
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
	}
}

func wantLines(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "e%d\n", i)
	}
	return b.String()
}

// readAll concatenates the files of dir in name order.
func readAll(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

func TestNullDrainsAMemoryChannel(t *testing.T) {
	ch := newMemoryWith(t, 2500)
	drain(t, ch, NewDefault(NewNull("k1", 300, nil)))
	if st := ch.Stats(); st.Size != 0 || st.TakeSuccesses != 2500 {
		t.Fatalf("stats = %+v, want all 2500 taken", st)
	}
}

func TestFileRollWritesEveryEventOfAMemoryChannelOnce(t *testing.T) {
	ch := newMemoryWith(t, 2500)
	dir := t.TempDir()
	s := NewFileRoll("k1", FileRollOptions{Directory: dir, BatchSize: 1000, Serializer: SerializerOptions{AppendNewline: true}}, nil)
	drain(t, ch, NewDefault(s))
	if got := readAll(t, dir); got != wantLines(2500) {
		t.Fatalf("files hold %d bytes, want the 2500 bodies in order", len(got))
	}
	if m := s.FlumeMetrics(); m["EventDrainSuccessCount"] != "2500" || m["BatchCompleteCount"] != "2" || m["BatchUnderflowCount"] != "1" {
		t.Fatalf("metrics = %v", m)
	}
}

func TestLoggerPrintsEveryEventOfAMemoryChannel(t *testing.T) {
	ch := newMemoryWith(t, 5)
	var out bytes.Buffer
	drain(t, ch, NewDefault(NewLogger("k1", LoggerOptions{Out: &out}, nil)))
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines:\n%s", len(lines), out.String())
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, "Event: { headers:{} body: 65 ") || !strings.HasSuffix(l, fmt.Sprintf("e%d }", i)) {
			t.Fatalf("line %d = %q", i, l)
		}
	}
}

func TestFailoverToASecondFileRollLosesNothing(t *testing.T) {
	ch := newMemoryWith(t, 2500)
	dir1, dir2 := t.TempDir(), t.TempDir()
	k1 := NewFileRoll("k1", FileRollOptions{Directory: dir1, BatchSize: 100, Serializer: SerializerOptions{AppendNewline: true}}, nil)
	faults := fsutil.NewFaulty(nil)
	k1.fsys = faults
	k2 := NewFileRoll("k2", FileRollOptions{Directory: dir2, BatchSize: 100, Serializer: SerializerOptions{AppendNewline: true}}, nil)
	// k1's disk fills after 1000 bytes: it delivers some batches, fails one
	// halfway, and k2 takes the rest, starting with the rolled-back batch.
	faults.FailWrites(1000, syscall.ENOSPC)
	f, err := NewFailover("g1", []Sink{k1, k2}, FailoverOptions{Priorities: map[string]int{"k1": 10, "k2": 5}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	drain(t, ch, f)
	got1, got2 := readAll(t, dir1), readAll(t, dir2)
	if got1 == "" || got2 == "" || got1+got2 != wantLines(2500) {
		t.Fatalf("k1 wrote %d bytes, k2 %d; together they must be the 2500 bodies in order", len(got1), len(got2))
	}
}
