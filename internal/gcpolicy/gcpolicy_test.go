package gcpolicy

// The policy sets a GC target of 400 while the live heap is small, comes
// down to Go's 100 as the live heap approaches Headroom, follows the live
// heap after each collection, and stays out of the way of an operator's
// GOGC or GOMEMLIMIT.

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/flumed/flumed/internal/await"
)

func TestPercentForKeepsTheHeadroomBounded(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 400},
		{2 << 20, 400},
		{4 << 20, 400},
		{8 << 20, 200},
		{16 << 20, 100},
		{4 << 30, 100},
	} {
		if got := PercentFor(c.live); got != c.want {
			t.Errorf("PercentFor(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

// gcPercent reads the runtime's target without changing it.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestStartFollowsTheLiveHeap(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	if !Start() {
		t.Fatal("Start did nothing with GOGC and GOMEMLIMIT unset")
	}
	defer Stop()
	if got := gcPercent(); got != MaxPercent {
		t.Fatalf("after Start on a small heap the target is %d, want %d", got, MaxPercent)
	}

	// 160 MiB live (pointer-free and never written, so it costs no RSS)
	// is past Headroom: the next collections must bring the target down.
	big := make([]byte, 160<<20)
	// The policy follows collections: each look collects, then asks.
	await.True(t, "the target to come down", func() bool {
		runtime.GC()
		return Current() == MinPercent
	})
	if got := gcPercent(); got != MinPercent {
		t.Fatalf("with 160 MiB live the target is %d, want %d", got, MinPercent)
	}
	runtime.KeepAlive(big)
	big = nil

	await.True(t, "the target to go back up", func() bool {
		runtime.GC()
		return Current() == MaxPercent
	})
	if got := gcPercent(); got != MaxPercent {
		t.Fatalf("once the 160 MiB are garbage the target is %d, want %d", got, MaxPercent)
	}
	_ = big
}

func TestStopRestoresGosDefault(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	Start()
	Stop()
	if got := gcPercent(); got != 100 {
		t.Fatalf("after Stop the target is %d, want 100", got)
	}
	if Current() != 0 {
		t.Fatalf("after Stop Current() = %d, want 0", Current())
	}
}

func TestAnOperatorsSettingWins(t *testing.T) {
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv("GOGC", "")
			t.Setenv("GOMEMLIMIT", "")
			t.Setenv(env, map[string]string{"GOGC": "150", "GOMEMLIMIT": "1GiB"}[env])
			before := gcPercent()
			if Start() {
				Stop()
				t.Fatalf("Start applied the policy with %s set", env)
			}
			if got := gcPercent(); got != before {
				t.Fatalf("the target moved from %d to %d with %s set", before, got, env)
			}
		})
	}
}
