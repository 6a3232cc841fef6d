// Package await is how flumed's tests wait: for a condition to become true
// (True, NoError), or for proof that something did not happen while the code
// under test demonstrably ran (Never). It exists so that no test sleeps and
// hopes: a passing run returns as soon as its condition holds, and a slow,
// busy machine only makes it slower, never wrong.
//
// It is imported by tests only and must never be imported by production code.
package await

import (
	"testing"
	"time"
)

// Limit is how long True and NoError wait before failing the test. It is
// generous on purpose: it bounds a broken run, it is never what a passing
// run waits for, and CI machines run both cores busy.
const Limit = 60 * time.Second

// poll is the interval between two looks at a condition.
const poll = 2 * time.Millisecond

// True waits until cond returns true and fails the test, naming what, if it
// has not within Limit.
func True(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", Limit, what)
		}
		time.Sleep(poll)
	}
}

// NoError waits until f returns nil and fails the test with f's last error
// if it has not within Limit.
func NoError(t testing.TB, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(Limit)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", Limit, what, err)
		}
		time.Sleep(poll)
	}
}

// Never asserts that bad stays false until progress becomes true: progress
// is evidence that the code under test ran far enough that bad would have
// happened by now if it were going to (a counter of loop turns, a later
// event, a fake clock's waiters). A wall-clock window instead would pass
// trivially on a slow machine, where nothing has run yet. It fails if bad
// becomes true first, or if progress has not become true within Limit.
func Never(t testing.TB, what string, bad func() bool, progress func() bool) {
	t.Helper()
	deadline := time.Now().Add(Limit)
	for {
		// Look at bad both before and after progress, so a bad that happened
		// together with the progress is seen.
		if bad() {
			t.Fatalf("%s happened", what)
		}
		if progress() {
			if bad() {
				t.Fatalf("%s happened", what)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for the progress that shows %s did not happen", Limit, what)
		}
		time.Sleep(poll)
	}
}

// Recv waits for a value from ch and fails the test if none comes within
// Limit, or if ch is closed.
func Recv[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	timer := time.NewTimer(Limit)
	defer timer.Stop()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
		return v
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", Limit, what)
	}
	panic("unreachable")
}

// Done waits for ch to be closed (or to yield a value), failing the test
// after Limit: for goroutines that must end.
func Done[T any](t testing.TB, what string, ch <-chan T) {
	t.Helper()
	timer := time.NewTimer(Limit)
	defer timer.Stop()
	select {
	case <-ch:
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", Limit, what)
	}
}
