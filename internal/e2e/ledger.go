package e2e

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Arrival is one event seen at one collector.
type Arrival struct {
	Seq int
	At  time.Time // when the harness first saw it (polling: a few ms late)
}

// Ledger records which numbered events arrived at which collector, how many
// times, and when. It is safe for concurrent use.
type Ledger struct {
	mu      sync.Mutex
	at      map[string][]Arrival // collector → arrivals in the order seen
	count   map[string]map[int]int
	all     map[int]int         // seq → arrivals over all collectors
	first   map[int]string      // seq → the collector it reached first
	garbage map[string][]string // lines that are not numbered events
	changed chan struct{}       // closed and replaced at every Record
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{
		at:      map[string][]Arrival{},
		count:   map[string]map[int]int{},
		all:     map[int]int{},
		first:   map[int]string{},
		garbage: map[string][]string{},
		changed: make(chan struct{}),
	}
}

// Record notes that seq arrived at collector at time at.
func (l *Ledger) Record(collector string, seq int, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.at[collector] = append(l.at[collector], Arrival{Seq: seq, At: at})
	if l.count[collector] == nil {
		l.count[collector] = map[int]int{}
	}
	l.count[collector][seq]++
	if l.all[seq] == 0 {
		l.first[seq] = collector
	}
	l.all[seq]++
	close(l.changed)
	l.changed = make(chan struct{})
}

// Garbage notes an output line that is not a numbered event. A correct run
// has none: a torn or foreign line is a bug.
func (l *Ledger) Garbage(collector, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.garbage[collector] = append(l.garbage[collector], line)
}

// GarbageLines returns the lines Garbage noted, per collector.
func (l *Ledger) GarbageLines() map[string][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]string{}
	for k, v := range l.garbage {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// Total is how many events arrived at collector, duplicates included.
func (l *Ledger) Total(collector string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.at[collector])
}

// Has says whether seq arrived at collector at least once.
func (l *Ledger) Has(collector string, seq int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count[collector][seq] > 0
}

// Times is how many times seq arrived, over all collectors.
func (l *Ledger) Times(seq int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all[seq]
}

// Where returns the collector seq reached first ("" if none yet) and how
// many times it arrived over all collectors.
func (l *Ledger) Where(seq int) (first string, times int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first[seq], l.all[seq]
}

// Distinct is how many different events arrived, over all collectors.
func (l *Ledger) Distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.all)
}

// First returns the first arrival at collector, seen at or after since,
// whose number satisfies match (nil: any).
func (l *Ledger) First(collector string, since time.Time, match func(seq int) bool) (Arrival, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.at[collector] {
		if !a.At.Before(since) && (match == nil || match(a.Seq)) {
			return a, true
		}
	}
	return Arrival{}, false
}

// Arrivals returns collector's arrivals whose number satisfies match.
func (l *Ledger) Arrivals(collector string, match func(seq int) bool) []Arrival {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Arrival
	for _, a := range l.at[collector] {
		if match == nil || match(a.Seq) {
			out = append(out, a)
		}
	}
	return out
}

// Wait blocks until cond (called with the ledger unlocked) holds, or ctx
// ends. cond is checked again when the ledger changes, at most every 10 ms
// (a costly cond must not starve the readers recording arrivals), and at
// least every 50 ms.
func (l *Ledger) Wait(ctx context.Context, cond func() bool) error {
	for {
		if cond() {
			return nil
		}
		l.mu.Lock()
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
			time.Sleep(10 * time.Millisecond)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Tally is where the events from..to landed.
type Tally struct {
	From, To   int
	Missing    []int          // arrived nowhere
	Duplicates int            // arrivals beyond the first, over all collectors
	Only       map[string]int // events that arrived at that collector only
	Both       int            // events that arrived at more than one collector
	Foreign    int            // arrivals numbered outside from..to
}

// Tally counts where each of the events from..to (inclusive) landed.
func (l *Ledger) Tally(from, to int) Tally {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := Tally{From: from, To: to, Only: map[string]int{}}
	for seq := from; seq <= to; seq++ {
		total, where := 0, ""
		places := 0
		for name, c := range l.count {
			if k := c[seq]; k > 0 {
				total += k
				places++
				where = name
			}
		}
		switch {
		case total == 0:
			t.Missing = append(t.Missing, seq)
		case places == 1:
			t.Only[where]++
		default:
			t.Both++
		}
		if total > 1 {
			t.Duplicates += total - 1
		}
	}
	for _, c := range l.count {
		for seq, k := range c {
			if seq < from || seq > to {
				t.Foreign += k
			}
		}
	}
	return t
}

// String is a one-line summary.
func (t Tally) String() string {
	names := make([]string, 0, len(t.Only))
	for n := range t.Only {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s only %d", n, t.Only[n]))
	}
	return fmt.Sprintf("events %d-%d: %s, more than one collector %d, missing %d %s, duplicates %d, foreign %d",
		t.From, t.To, strings.Join(parts, ", "), t.Both, len(t.Missing), Ranges(t.Missing), t.Duplicates, t.Foreign)
}

// Ranges prints sorted numbers compactly: "[3-7 9 12-13]".
func Ranges(seqs []int) string {
	if len(seqs) == 0 {
		return "[]"
	}
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(seqs[i]))
		if j > i {
			b.WriteString("-" + strconv.Itoa(seqs[j]))
		}
		i = j + 1
		if b.Len() > 200 {
			b.WriteString(" …")
			break
		}
	}
	b.WriteByte(']')
	return b.String()
}

// EventBody is the body of numbered event seq: "ev-000042". It is 9 bytes
// up to a million, so the logger sink's ASCII column shows it whole.
func EventBody(seq int) string { return fmt.Sprintf("ev-%06d", seq) }

// ParseEvent reads a body made by EventBody.
func ParseEvent(s string) (int, bool) {
	rest, ok := strings.CutPrefix(s, "ev-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n >= 0
}

// ParseDecimal reads a seq source's body: the decimal counter, from 0.
func ParseDecimal(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}
