package sourcetest

import (
	"strconv"
	"strings"
	"testing"
)

// Tests of file sources write numbered lines, "seq=N gen=G ...", where G
// counts the files written (a rotation starts a new one), so the checks
// here can tell that every line arrived exactly once and the lines of each
// file in the order written.

// Line parses a numbered line.
func Line(t testing.TB, body string) (seq, gen int) {
	t.Helper()
	f := strings.Fields(body)
	if len(f) < 2 || !strings.HasPrefix(f[0], "seq=") || !strings.HasPrefix(f[1], "gen=") {
		t.Fatalf("not a test line: %q", body)
	}
	seq, err1 := strconv.Atoi(strings.TrimPrefix(f[0], "seq="))
	gen, err2 := strconv.Atoi(strings.TrimPrefix(f[1], "gen="))
	if err1 != nil || err2 != nil {
		t.Fatalf("not a test line: %q", body)
	}
	return seq, gen
}

// ExactlyOnce checks that bodies hold every line 0..n-1 exactly once, and
// the lines of each file in the order they were written.
func ExactlyOnce(t testing.TB, bodies []string, n int) {
	t.Helper()
	ExactlyRange(t, bodies, 0, n)
}

// ExactlyRange is ExactlyOnce for lines from..to-1.
func ExactlyRange(t testing.TB, bodies []string, from, to int) {
	t.Helper()
	seen := make(map[int]int)
	lastInGen := make(map[int]int)
	disorder := 0
	for _, b := range bodies {
		seq, gen := Line(t, b)
		seen[seq]++
		if last, ok := lastInGen[gen]; ok && seq < last {
			if disorder++; disorder <= 5 {
				t.Errorf("file %d: line %d delivered after line %d", gen, seq, last)
			}
		}
		lastInGen[gen] = seq
	}
	var missing, twice []int
	for i := from; i < to; i++ {
		switch seen[i] {
		case 0:
			missing = append(missing, i)
		case 1:
		default:
			twice = append(twice, i)
		}
	}
	if len(missing) > 0 || len(twice) > 0 || len(bodies) != to-from {
		t.Fatalf("delivered %d lines for %d written; missing %d %v; more than once %d %v",
			len(bodies), to-from, len(missing), head(missing), len(twice), head(twice))
	}
}

func head(xs []int) []int { return xs[:min(len(xs), 10)] }
