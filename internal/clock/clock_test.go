package clock

import (
	"testing"
	"time"
)

// A Fake moves only when told to, wakes its sleepers in time order once
// their time has come, and lets a test know that a goroutine is asleep.

func TestAFakeWakesASleeperOnlyOnceItsTimeHasCome(t *testing.T) {
	f := NewFake()
	start := f.Now()
	woke := make(chan time.Time)
	go func() {
		f.Sleep(2 * time.Second)
		woke <- f.Now()
	}()
	f.BlockUntil(1)
	f.Advance(1999 * time.Millisecond)
	if f.Waiters() != 1 {
		t.Fatalf("the sleeper was woken %v early", time.Millisecond)
	}
	f.Advance(time.Millisecond)
	if got := <-woke; got.Sub(start) != 2*time.Second {
		t.Fatalf("woke at +%v, want +2s", got.Sub(start))
	}
	if f.Waiters() != 0 {
		t.Fatalf("%d waiters left", f.Waiters())
	}
}

func TestAFakeFiresDueTimersInTimeOrderAndAZeroWaitAtOnce(t *testing.T) {
	f := NewFake()
	late, early := f.After(3*time.Second), f.After(time.Second)
	select {
	case <-f.After(0):
	default:
		t.Fatal("After(0) did not fire at once")
	}
	f.Advance(5 * time.Second)
	a, b := <-early, <-late
	if !a.Equal(b) || !a.Equal(f.Now()) {
		t.Fatalf("timers fired at %v and %v, want the advanced time %v", a, b, f.Now())
	}
}

func TestOrGivesTheWallClockForNil(t *testing.T) {
	if _, ok := Or(nil).(Real); !ok {
		t.Fatal("Or(nil) is not the wall clock")
	}
	f := NewFake()
	if Or(f) != f {
		t.Fatal("Or(f) is not f")
	}
}
