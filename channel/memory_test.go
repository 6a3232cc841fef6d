// The memory channel passes the conformance suite (channeltest) and follows
// Flume's MemoryChannel where the suite leaves channels free: puts are checked
// against capacity and byteCapacity at Commit, which waits up to keep-alive for
// space and then fails with ErrFull naming the reason, leaving the transaction
// rolled back; an empty Take waits up to keep-alive and wakes as soon as a put
// commits, or at once when Quiesce said no put will come; a transaction that can never fit fails without waiting. Its keys
// are read from a Flume configuration: defaults as in Flume, but bad or
// non-positive numbers and transactionCapacity > capacity are reported as
// problems with file, line and key instead of being silently defaulted.
package channel_test

import (
	"errors"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"pgregory.net/rapid"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/channel/channeltest"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/clock"
	"github.com/flumed/flumed/internal/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemoryConformance(t *testing.T) {
	channeltest.Run(t, channeltest.Factory{
		New: func(t *testing.T, o channeltest.Options) channel.Channel {
			m := channel.NewMemory("c1", channel.MemoryOptions{
				Capacity: o.Capacity, TransactionCapacity: o.TransactionCapacity, KeepAlive: o.KeepAlive,
			})
			if o.Clock != nil {
				m.SetClock(o.Clock)
			}
			return m
		},
	})
}

func TestMemoryConfig(t *testing.T) {
	unlimited := func() { // the byteCapacity default depends on GOMEMLIMIT
		old := debug.SetMemoryLimit(math.MaxInt64)
		t.Cleanup(func() { debug.SetMemoryLimit(old) })
	}
	cases := []struct {
		name     string
		keys     map[string]string
		want     channel.MemoryOptions
		problems []string // substrings, one per expected error, in line order
	}{
		{"no keys give Flume's defaults", map[string]string{},
			channel.MemoryOptions{Capacity: 100, TransactionCapacity: 100, KeepAlive: 3 * time.Second, ByteCapacityBufferPercentage: 20}, nil},
		{"every key is read", map[string]string{
			"capacity": "10000", "transactionCapacity": "500", "keep-alive": "1",
			"byteCapacity": "800000", "byteCapacityBufferPercentage": "10"},
			channel.MemoryOptions{Capacity: 10000, TransactionCapacity: 500, KeepAlive: time.Second, ByteCapacity: 800000, ByteCapacityBufferPercentage: 10}, nil},
		{"keep-alive 0 means do not wait and byteCapacity 0 means unlimited", map[string]string{"keep-alive": "0", "byteCapacity": "0"},
			channel.MemoryOptions{Capacity: 100, TransactionCapacity: 100, ByteCapacityBufferPercentage: 20}, nil},
		{"a bad number is a problem and the default is kept", map[string]string{"capacity": "1e6", "transactionCapacity": "ten"},
			channel.MemoryOptions{Capacity: 100, TransactionCapacity: 100, KeepAlive: 3 * time.Second, ByteCapacityBufferPercentage: 20},
			[]string{`capacity: not an integer: "1e6"`, `transactionCapacity: not an integer: "ten"`}},
		{"a capacity of zero or less is a problem", map[string]string{"capacity": "0", "transactionCapacity": "-5"},
			channel.MemoryOptions{Capacity: 100, TransactionCapacity: 100, KeepAlive: 3 * time.Second, ByteCapacityBufferPercentage: 20},
			[]string{"capacity: must be a positive number of events, not 0", "transactionCapacity: must be a positive number of events, not -5"}},
		{"transactionCapacity above capacity is a problem", map[string]string{"capacity": "50", "transactionCapacity": "60"},
			channel.MemoryOptions{Capacity: 50, TransactionCapacity: 50, KeepAlive: 3 * time.Second, ByteCapacityBufferPercentage: 20},
			[]string{"transactionCapacity: 60 is more than capacity 50"}},
		{"a small capacity with the default transactionCapacity is a problem, as in Flume", map[string]string{"capacity": "10"},
			channel.MemoryOptions{Capacity: 10, TransactionCapacity: 10, KeepAlive: 3 * time.Second, ByteCapacityBufferPercentage: 20},
			[]string{"transactionCapacity: 100 is more than capacity 10"}},
		{"negative keep-alive and byteCapacity and an out of range percentage are problems",
			map[string]string{"byteCapacity": "-1", "byteCapacityBufferPercentage": "100", "keep-alive": "-3"},
			channel.MemoryOptions{Capacity: 100, TransactionCapacity: 100, KeepAlive: 3 * time.Second, ByteCapacityBufferPercentage: 20},
			[]string{"byteCapacity: must be zero (unlimited) or more bytes, not -1",
				"byteCapacityBufferPercentage: must be between 0 and 99, not 100", "keep-alive: must be zero or more seconds, not -3"}},
		{"a byteCapacity the buffer leaves nothing of is a problem", map[string]string{"byteCapacity": "1"},
			channel.MemoryOptions{Capacity: 100, TransactionCapacity: 100, KeepAlive: 3 * time.Second, ByteCapacityBufferPercentage: 20},
			[]string{"byteCapacity: 1 leaves no bytes after byteCapacityBufferPercentage 20"}},
		{"a misspelt key is reported with a suggestion", map[string]string{"transactionCapactiy": "10"},
			channel.MemoryOptions{Capacity: 100, TransactionCapacity: 100, KeepAlive: 3 * time.Second, ByteCapacityBufferPercentage: 20},
			[]string{"a1.channels.c1.transactionCapactiy: unknown key (did you mean transactionCapacity?)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			unlimited()
			ctx := config.FromMap("a1.channels.c1.", c.keys)
			factory, ok := channel.Lookup("memory")
			if !ok {
				t.Fatal(`"memory" is not registered`)
			}
			spec, err := factory("c1", ctx)
			if err != nil {
				t.Fatalf("factory: %v", err)
			}
			var got []string
			for _, p := range ctx.Problems().Errors() {
				got = append(got, p.String())
			}
			if len(got) != len(c.problems) {
				t.Fatalf("problems:\n%s\nwant %d: %q", strings.Join(got, "\n"), len(c.problems), c.problems)
			}
			for i, want := range c.problems {
				if !strings.Contains(got[i], want) || !strings.HasPrefix(got[i], "<inline>:") {
					t.Errorf("problem %d: %q, want it to contain %q with file and line", i, got[i], want)
				}
			}
			if spec.TransactionCapacity() != c.want.TransactionCapacity {
				t.Errorf("TransactionCapacity() = %d, want %d", spec.TransactionCapacity(), c.want.TransactionCapacity)
			}
			ch, err := spec.Open("c1", nil)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer ch.Close()
			if got := ch.(*channel.Memory).Options(); got != c.want {
				t.Errorf("options %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestMemoryLookup(t *testing.T) {
	for _, name := range []string{"memory", "MEMORY", "Memory", "org.apache.flume.channel.MemoryChannel"} {
		if _, ok := channel.Lookup(name); !ok {
			t.Errorf("Lookup(%q) found nothing", name)
		}
	}
	found := false
	for _, typ := range channel.Registry().Types() {
		found = found || typ == "memory"
		if strings.Contains(typ, ".") {
			t.Errorf("Registry().Types() lists a class name: %q", typ)
		}
	}
	if !found {
		t.Errorf("Registry().Types() = %q, want memory among them", channel.Registry().Types())
	}
}

func TestMemoryByteCapacityDefaultFollowsGoMemoryLimit(t *testing.T) {
	old := debug.SetMemoryLimit(1 << 30)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	if got, want := channel.DefaultMemoryOptions().ByteCapacity, int64(1<<30)/10*8; got != want {
		t.Errorf("with GOMEMLIMIT=1GiB byteCapacity defaults to %d, want 80%% = %d", got, want)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	if got := channel.DefaultMemoryOptions().ByteCapacity; got != 0 {
		t.Errorf("without a memory limit byteCapacity defaults to %d, want 0 (unlimited)", got)
	}
}

func TestNewMemoryOptions(t *testing.T) {
	t.Run("zero options mean Flume's capacities and no waiting", func(t *testing.T) {
		m := channel.NewMemory("c1", channel.MemoryOptions{})
		defer m.Close()
		want := channel.MemoryOptions{Capacity: 100, TransactionCapacity: 100}
		if got := m.Options(); got != want {
			t.Errorf("options %+v, want %+v", got, want)
		}
	})
	t.Run("a zero transactionCapacity is capped by a small capacity", func(t *testing.T) {
		m := channel.NewMemory("c1", channel.MemoryOptions{Capacity: 5})
		defer m.Close()
		if got := m.Options().TransactionCapacity; got != 5 {
			t.Errorf("transactionCapacity %d, want 5", got)
		}
	})
	t.Run("invalid options panic with the reason", func(t *testing.T) {
		defer func() {
			r := recover()
			if r == nil || !strings.Contains(r.(string), "transactionCapacity 10 is more than capacity 5") {
				t.Errorf("recovered %v", r)
			}
		}()
		channel.NewMemory("c1", channel.MemoryOptions{Capacity: 5, TransactionCapacity: 10})
	})
}

// body returns an event with an n-byte body.
func body(n int) channel.Event { return channel.Event{Body: make([]byte, n)} }

func commitPut(ch channel.Channel, events ...channel.Event) error {
	tx := ch.Begin()
	if err := tx.Put(events...); err != nil {
		return err
	}
	return tx.Commit()
}

func TestMemoryByteCapacity(t *testing.T) {
	// 1000 bytes less a 20% buffer: 800 usable body bytes.
	opts := channel.MemoryOptions{Capacity: 100, TransactionCapacity: 10, ByteCapacity: 1000, ByteCapacityBufferPercentage: 20}

	t.Run("body bytes are held until their take commits", func(t *testing.T) {
		m := channel.NewMemory("c1", opts)
		defer m.Close()
		for i := range 8 {
			if err := commitPut(m, body(100)); err != nil {
				t.Fatalf("put %d: %v", i, err)
			}
		}
		err := commitPut(m, body(1))
		if !errors.Is(err, channel.ErrFull) || !strings.Contains(err.Error(), "byteCapacity") {
			t.Fatalf("put past byteCapacity: %v, want ErrFull naming byteCapacity", err)
		}
		tx := m.Begin()
		if _, err := tx.Take(2); err != nil {
			t.Fatal(err)
		}
		if err := commitPut(m, body(1)); !errors.Is(err, channel.ErrFull) {
			t.Fatalf("put while a take is open: %v, want ErrFull", err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := commitPut(m, body(200)); err != nil {
			t.Fatalf("put after 200 bytes were taken: %v", err)
		}
		if err := commitPut(m, body(1)); !errors.Is(err, channel.ErrFull) {
			t.Fatalf("put past byteCapacity again: %v, want ErrFull", err)
		}
	})

	t.Run("headers and empty bodies do not count", func(t *testing.T) {
		m := channel.NewMemory("c1", opts)
		defer m.Close()
		if err := commitPut(m, body(800)); err != nil {
			t.Fatal(err)
		}
		big := channel.Event{Headers: map[string]string{"h": strings.Repeat("x", 4096)}}
		if err := commitPut(m, big, big, big); err != nil {
			t.Fatalf("header-only events: %v", err)
		}
	})

	t.Run("a transaction larger than byteCapacity fails without waiting", func(t *testing.T) {
		o := opts
		o.KeepAlive = time.Minute
		m := channel.NewMemory("c1", o)
		defer m.Close()
		err := commitPut(m, body(500), body(301))
		if !errors.Is(err, channel.ErrFull) || !strings.Contains(err.Error(), "801 body bytes exceed") {
			t.Fatalf("oversized transaction: %v", err)
		}
	})
}

func TestMemoryKeepAlive(t *testing.T) {
	// A fake clock decides when keep-alive passes, and its waiters show that
	// a take is waiting rather than not yet started.
	type result struct {
		events []channel.Event
		err    error
	}
	takeAsync := func(m *channel.Memory) chan result {
		done := make(chan result, 1)
		go func() {
			tx := m.Begin()
			events, err := tx.Take(5)
			if err == nil {
				err = tx.Commit()
			}
			done <- result{events, err}
		}()
		return done
	}
	waiting := func(t *testing.T, clk *clock.Fake, done chan result) {
		t.Helper()
		await.True(t, "the take to wait or return", func() bool { return clk.Waiters() > 0 || len(done) > 0 })
		if len(done) > 0 {
			r := <-done
			t.Fatalf("the take on an empty channel returned at once: %d events, %v", len(r.events), r.err)
		}
	}

	t.Run("an empty take waits keep-alive", func(t *testing.T) {
		const keepAlive = 60 * time.Millisecond
		m := channel.NewMemory("c1", channel.MemoryOptions{KeepAlive: keepAlive})
		defer m.Close()
		clk := clock.NewFake()
		m.SetClock(clk)
		done := takeAsync(m)
		waiting(t, clk, done)
		clk.Advance(keepAlive - time.Nanosecond)
		if len(done) > 0 {
			t.Fatal("the empty take returned before keep-alive passed")
		}
		clk.Advance(time.Nanosecond)
		if r := await.Recv(t, "the empty take to return once keep-alive passed", done); r.err != nil || len(r.events) != 0 {
			t.Fatalf("empty take: %d events, %v (keep-alive %s)", len(r.events), r.err, keepAlive)
		}
	})

	t.Run("a waiting take wakes as soon as a put commits", func(t *testing.T) {
		m := channel.NewMemory("c1", channel.MemoryOptions{KeepAlive: time.Minute})
		defer m.Close()
		clk := clock.NewFake() // keep-alive never passes: only the put can wake the take
		m.SetClock(clk)
		done := takeAsync(m)
		waiting(t, clk, done)
		if err := commitPut(m, channel.Event{Body: []byte("wake")}); err != nil {
			t.Fatal(err)
		}
		r := await.Recv(t, "the take to wake when a put committed", done)
		if r.err != nil || len(r.events) != 1 || string(r.events[0].Body) != "wake" {
			t.Fatalf("woken take: %d events, %v", len(r.events), r.err)
		}
	})

	t.Run("quiesce wakes a waiting take and later takes on an empty queue do not wait", func(t *testing.T) {
		m := channel.NewMemory("c1", channel.MemoryOptions{KeepAlive: time.Hour})
		defer m.Close()
		clk := clock.NewFake() // keep-alive never passes: only Quiesce can wake the take
		m.SetClock(clk)
		done := takeAsync(m)
		waiting(t, clk, done)
		m.Quiesce()
		if r := await.Recv(t, "a take waiting on an empty queue to wake on Quiesce", done); r.err != nil || len(r.events) != 0 {
			t.Fatalf("take woken by quiesce: %d events, %v", len(r.events), r.err)
		}
		// Later takes: nothing at once when empty, queued events as before,
		// and a put still works.
		if got, err := m.Begin().Take(1); err != nil || len(got) != 0 {
			t.Fatalf("take after quiesce: %d events, %v", len(got), err)
		}
		if err := commitPut(m, channel.Event{Body: []byte("late")}); err != nil {
			t.Fatal(err)
		}
		tx := m.Begin()
		got, err := tx.Take(5)
		if err != nil || len(got) != 1 || string(got[0].Body) != "late" {
			t.Fatalf("take of a queued event after quiesce: %d events, %v", len(got), err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		m.Quiesce() // idempotent
		if st := m.Stats(); st.Size != 0 || st.TakeSuccesses != 1 {
			t.Fatalf("stats after quiesce: %+v", st)
		}
	})

	t.Run("WakeTakers wakes a waiting take empty and later takes wait as before", func(t *testing.T) {
		m := channel.NewMemory("c1", channel.MemoryOptions{KeepAlive: time.Hour})
		defer m.Close()
		clk := clock.NewFake() // keep-alive never passes: only WakeTakers can wake the take
		m.SetClock(clk)
		done := takeAsync(m)
		waiting(t, clk, done)
		m.WakeTakers()
		if r := await.Recv(t, "a take waiting on an empty queue to wake on WakeTakers", done); r.err != nil || len(r.events) != 0 {
			t.Fatalf("take woken by WakeTakers: %d events, %v", len(r.events), r.err)
		}
		// Unlike Quiesce, the next take waits again, and a put wakes it.
		done = takeAsync(m)
		waiting(t, clk, done)
		if err := commitPut(m, channel.Event{Body: []byte("after")}); err != nil {
			t.Fatal(err)
		}
		if r := await.Recv(t, "the next take to wait for the put", done); r.err != nil || len(r.events) != 1 {
			t.Fatalf("take after WakeTakers: %d events, %v", len(r.events), r.err)
		}
	})

	t.Run("a commit refused for capacity says so and leaves the transaction rolled back", func(t *testing.T) {
		m := channel.NewMemory("c1", channel.MemoryOptions{Capacity: 2, TransactionCapacity: 2, KeepAlive: 30 * time.Millisecond})
		defer m.Close()
		if err := commitPut(m, body(1), body(1)); err != nil {
			t.Fatal(err)
		}
		tx := m.Begin()
		if err := tx.Put(body(1)); err != nil {
			t.Fatalf("put is checked at commit, not at put: %v", err)
		}
		err := tx.Commit()
		if !errors.Is(err, channel.ErrFull) || !strings.Contains(err.Error(), "capacity 2 reached") {
			t.Fatalf("commit into a full channel: %v", err)
		}
		if err := tx.Rollback(); !errors.Is(err, channel.ErrTxnDone) {
			t.Errorf("rollback after a failed commit: %v, want ErrTxnDone", err)
		}
		if st := m.Stats(); st.Size != 2 || st.PutSuccesses != 2 || st.PutAttempts != 3 {
			t.Errorf("stats after a refused commit: %+v", st)
		}
	})
}

// TestMemoryModel drives the channel with random puts, takes, commits and
// rollbacks, several take transactions open at once, against a plain slice:
// the queue's ring must wrap, grow and shrink without reordering anything.
func TestMemoryModel(t *testing.T) {
	const capacity, txCap = 300, 50
	rapid.Check(t, func(rt *rapid.T) {
		m := channel.NewMemory("c1", channel.MemoryOptions{Capacity: capacity, TransactionCapacity: txCap})
		defer m.Close()
		type openTake struct {
			tx   channel.Txn
			seqs []int
		}
		var (
			queue []int // takeable events, head first
			held  int   // committed and not take-committed
			takes []openTake
			next  int
		)
		pick := func(rt *rapid.T) int { return rapid.IntRange(0, len(takes)-1).Draw(rt, "txn") }
		rt.Repeat(map[string]func(*rapid.T){
			"put": func(rt *rapid.T) {
				n := rapid.IntRange(1, txCap).Draw(rt, "n")
				commit := rapid.Bool().Draw(rt, "commit")
				tx := m.Begin()
				var seqs []int
				for range n {
					if err := tx.Put(channel.Event{Body: []byte(strconv.Itoa(next))}); err != nil {
						rt.Fatalf("put: %v", err)
					}
					seqs = append(seqs, next)
					next++
				}
				if !commit {
					if err := tx.Rollback(); err != nil {
						rt.Fatalf("rollback put: %v", err)
					}
					return
				}
				err := tx.Commit()
				if held+n > capacity {
					if !errors.Is(err, channel.ErrFull) {
						rt.Fatalf("commit of %d with %d held: %v, want ErrFull", n, held, err)
					}
					return
				}
				if err != nil {
					rt.Fatalf("commit put: %v", err)
				}
				queue = append(queue, seqs...)
				held += n
			},
			"take": func(rt *rapid.T) {
				if len(takes) == 4 {
					return
				}
				n := rapid.IntRange(1, txCap).Draw(rt, "n")
				tx := m.Begin()
				got, err := tx.Take(n)
				if err != nil {
					rt.Fatalf("take: %v", err)
				}
				k := min(n, len(queue))
				want := append([]int(nil), queue[:k]...)
				queue = queue[k:]
				if len(got) != k {
					rt.Fatalf("took %d events, want %d", len(got), k)
				}
				for i, e := range got {
					if string(e.Body) != strconv.Itoa(want[i]) {
						rt.Fatalf("take %d: got event %s, want %d", i, e.Body, want[i])
					}
				}
				takes = append(takes, openTake{tx, want})
			},
			"commit take": func(rt *rapid.T) {
				if len(takes) == 0 {
					return
				}
				i := pick(rt)
				if err := takes[i].tx.Commit(); err != nil {
					rt.Fatalf("commit take: %v", err)
				}
				held -= len(takes[i].seqs)
				takes = append(takes[:i], takes[i+1:]...)
			},
			"rollback take": func(rt *rapid.T) {
				if len(takes) == 0 {
					return
				}
				i := pick(rt)
				if err := takes[i].tx.Rollback(); err != nil {
					rt.Fatalf("rollback take: %v", err)
				}
				queue = append(append([]int(nil), takes[i].seqs...), queue...)
				takes = append(takes[:i], takes[i+1:]...)
			},
			"": func(rt *rapid.T) {
				if size := m.Stats().Size; size != int64(held) {
					rt.Fatalf("size %d, want %d", size, held)
				}
			},
		})
	})
}
