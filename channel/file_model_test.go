// A model test of the file channel (pgregory.net/rapid): random sequences of
// puts, takes, commits, rollbacks, concurrent open transactions, clean
// restarts and crashes (the process state dropped without a Close, as SIGKILL
// does) are run against a plain in-memory model, which says exactly what every
// Take must return and what Size must be:
//
//   - committed puts join the tail; rolled-back takes return to the head, in
//     their order, ahead of everything newer;
//   - a restart (clean or crash) keeps every committed event not taken and
//     committed, and every event of a take still open, now in commit order;
//   - staged puts vanish at a restart; nothing else does, nothing reappears.
package channel_test

import (
	"os"
	"slices"
	"strconv"
	"testing"

	"pgregory.net/rapid"

	"github.com/flumed/flumed/channel"
)

// modelEvent is an event the model knows by its id (also its "id" header).
type modelEvent struct {
	id  int
	seq int // commit order, what a restart sorts by
}

// modelTxn is an open transaction in both worlds.
type modelTxn struct {
	tx     channel.Txn
	puts   []int        // staged event ids
	taken  []modelEvent // taken, in order
	taking bool
}

type fileModel struct {
	dir     string
	opts    channel.FileOptions
	ch      *channel.File
	queue   []modelEvent // takeable, head first
	open    []*modelTxn
	nextID  int
	nextSeq int
	bodies  map[int]channel.Event
}

func (m *fileModel) event(t *rapid.T, id int) channel.Event {
	e := channel.Event{Headers: map[string]string{"id": strconv.Itoa(id)}}
	for k, v := range rapid.MapOfN(rapid.StringN(0, 4, 8), rapid.StringN(0, 4, 8), 0, 2).Draw(t, "headers") {
		if k != "id" {
			e.Headers[k] = v
		}
	}
	e.Body = rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(t, "body")
	m.bodies[id] = e
	return e
}

// held is what Size must be: queued plus taken by open transactions.
func (m *fileModel) held() int {
	n := len(m.queue)
	for _, o := range m.open {
		n += len(o.taken)
	}
	return n
}

func (m *fileModel) restart(t *rapid.T, crash bool) {
	if crash {
		m.ch.Crash()
	} else if err := m.ch.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	for _, o := range m.open {
		m.queue = append(m.queue, o.taken...)
	}
	m.open = nil
	slices.SortFunc(m.queue, func(a, b modelEvent) int { return a.seq - b.seq })
	ch, err := channel.OpenFile("model", m.opts, nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	m.ch = ch
}

func (m *fileModel) pick(t *rapid.T, want func(*modelTxn) bool) (*modelTxn, int) {
	var cands []int
	for i, o := range m.open {
		if want(o) {
			cands = append(cands, i)
		}
	}
	if len(cands) == 0 {
		t.Skip("no such open transaction")
	}
	i := rapid.SampledFrom(cands).Draw(t, "txn")
	return m.open[i], i
}

func (m *fileModel) end(i int) { m.open = slices.Delete(m.open, i, i+1) }

func TestFileModel(t *testing.T) {
	base := t.TempDir()
	rapid.Check(t, func(t *rapid.T) {
		dir, err := os.MkdirTemp(base, "run")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		m := &fileModel{dir: dir, opts: fileOptions(dir), bodies: map[int]channel.Event{}}
		m.opts.Capacity, m.opts.TransactionCapacity, m.opts.KeepAlive = 1000, 20, 0
		m.opts.SegmentSize = 1 << 20
		m.ch, err = channel.OpenFile("model", m.opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { m.ch.Close() }()

		t.Repeat(map[string]func(*rapid.T){
			"begin": func(t *rapid.T) {
				if len(m.open) >= 3 {
					t.Skip("enough open transactions")
				}
				m.open = append(m.open, &modelTxn{tx: m.ch.Begin(), taking: rapid.Bool().Draw(t, "taking")})
			},
			"put": func(t *rapid.T) {
				o, _ := m.pick(t, func(o *modelTxn) bool { return !o.taking && len(o.puts) < 20 })
				n := rapid.IntRange(1, 20-len(o.puts)).Draw(t, "n")
				var evs []channel.Event
				for range n {
					evs = append(evs, m.event(t, m.nextID))
					o.puts = append(o.puts, m.nextID)
					m.nextID++
				}
				if err := o.tx.Put(evs...); err != nil {
					t.Fatalf("put: %v", err)
				}
			},
			"take": func(t *rapid.T) {
				o, _ := m.pick(t, func(o *modelTxn) bool { return o.taking && len(o.taken) < 20 })
				n := rapid.IntRange(1, 20-len(o.taken)).Draw(t, "n")
				got, err := o.tx.Take(n)
				if err != nil {
					t.Fatalf("take %d: %v", n, err)
				}
				want := m.queue[:min(n, len(m.queue))]
				if len(got) != len(want) {
					t.Fatalf("take %d: got %d events, model has %d", n, len(got), len(want))
				}
				for i, e := range got {
					if id, _ := strconv.Atoi(e.Headers["id"]); id != want[i].id {
						t.Fatalf("take %d: event %d is id %d, model says %d", n, i, id, want[i].id)
					}
					if !sameFileEvent(e, m.bodies[want[i].id]) {
						t.Fatalf("event %d changed: got %+v want %+v", want[i].id, e, m.bodies[want[i].id])
					}
				}
				o.taken = append(o.taken, want...)
				m.queue = slices.Clone(m.queue[len(want):])
			},
			"commit": func(t *rapid.T) {
				o, i := m.pick(t, func(*modelTxn) bool { return true })
				if err := o.tx.Commit(); err != nil {
					t.Fatalf("commit: %v", err)
				}
				for _, id := range o.puts {
					m.queue = append(m.queue, modelEvent{id: id, seq: m.nextSeq})
					m.nextSeq++
				}
				m.end(i)
			},
			"rollback": func(t *rapid.T) {
				o, i := m.pick(t, func(*modelTxn) bool { return true })
				if err := o.tx.Rollback(); err != nil {
					t.Fatalf("rollback: %v", err)
				}
				m.queue = append(slices.Clone(o.taken), m.queue...)
				m.end(i)
			},
			"restart": func(t *rapid.T) { m.restart(t, false) },
			"crash":   func(t *rapid.T) { m.restart(t, true) },
			"": func(t *rapid.T) {
				if got, want := m.ch.Stats().Size, int64(m.held()); got != want {
					t.Fatalf("Size %d, model holds %d", got, want)
				}
			},
		})
	})
}

// sameFileEvent compares events byte for byte, nil and empty maps and bodies
// being equal.
func sameFileEvent(a, b channel.Event) bool {
	if len(a.Headers) != len(b.Headers) || string(a.Body) != string(b.Body) {
		return false
	}
	for k, v := range a.Headers {
		if w, ok := b.Headers[k]; !ok || w != v {
			return false
		}
	}
	return true
}
