package await

import (
	"errors"
	"sync/atomic"
	"testing"
)

// True and NoError return as soon as their condition holds; Never returns
// once progress is shown without the bad thing happening. Their failures are
// exercised through a recorder, since a failing helper stops its test.

type recorder struct {
	testing.TB
	failed atomic.Bool
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(string, ...any) {
	r.failed.Store(true)
	panic(r) // stand in for runtime.Goexit, caught below
}

func fails(f func(tb testing.TB)) (failed bool) {
	r := &recorder{}
	defer func() {
		if p := recover(); p != nil && p != any(r) {
			panic(p)
		}
		failed = r.failed.Load()
	}()
	f(r)
	return false
}

func TestTrueReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	True(t, "three looks", func() bool { return n.Add(1) == 3 })
	if n.Load() != 3 {
		t.Fatalf("looked %d times, want 3", n.Load())
	}
}

func TestNoErrorReturnsOnceFSucceeds(t *testing.T) {
	var n atomic.Int32
	NoError(t, "two tries", func() error {
		if n.Add(1) < 2 {
			return errors.New("not yet")
		}
		return nil
	})
}

func TestNeverFailsWhenTheBadThingHappensBeforeProgress(t *testing.T) {
	var n atomic.Int32
	if !fails(func(tb testing.TB) {
		Never(tb, "overflow", func() bool { return n.Add(1) >= 2 }, func() bool { return false })
	}) {
		t.Fatal("Never passed although the bad thing happened")
	}
}

func TestNeverPassesOnceProgressIsShown(t *testing.T) {
	var n atomic.Int32
	if fails(func(tb testing.TB) {
		Never(tb, "overflow", func() bool { return false }, func() bool { return n.Add(1) >= 3 })
	}) {
		t.Fatal("Never failed although nothing bad happened")
	}
}

func TestRecvAndDoneReturnWhatWasSent(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	if got := Recv(t, "seven", ch); got != 7 {
		t.Fatalf("got %d", got)
	}
	done := make(chan struct{})
	close(done)
	Done(t, "closed", done)
}
