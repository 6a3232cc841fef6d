// Package gcpolicy sets flumed's garbage-collection target.
//
// Go's default (GOGC=100: collect when the heap has doubled since the last
// collection) suits flumed badly while its heap is small. The wal's tail
// segment buffer grows by reallocation as records are appended, so a busy
// channel allocates several megabytes a second in large short-lived blocks;
// with a heap of ten or twenty megabytes the runtime collects dozens of times
// a second and, between collections, hands those blocks back to the kernel
// and faults them in again. Measured on the file channel's put+take benchmark
// (batch 100, 512-byte events, bench/channel_file_test.go, 4,000 put+take
// commits): at GOGC=100 the process took ~116,000 minor page faults and
// 420–530 µs of CPU per put+take; at GOGC=200, ~21,500 faults and ~270 µs;
// at GOGC=400, 260–330 µs.
//
// So while the live heap is small the target is 400, and it comes down to
// Go's 100 as the live heap grows (a memory channel holding a large backlog),
// so that the headroom the policy adds stays near Headroom instead of four
// times a large heap. An operator's own GOGC or GOMEMLIMIT wins: the policy
// then does nothing.
//
// Without a file channel there is no tail buffer to reallocate, and the
// 128 MiB of headroom is only memory held: an avro source → memory channel →
// file_roll collector (bench/collector_memory_test.go) runs with about 7 MiB
// live, so 400 let its heap reach ~37 MiB and its RSS ~57 MiB, against ~35
// MiB at Go's 100 for about 6 % more CPU per event. `flumed run` therefore
// sets LeanHeadroom when its agent has no file channel (SetHeadroom): the
// target still starts at 400 for a tiny heap but the garbage above the live
// heap stays near 16 MiB.
//
// The package must never run a collection itself or hold memory to steer the
// collector (no ballast): it only sets the target.
package gcpolicy

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

const (
	// MaxPercent is the target for a small live heap.
	MaxPercent = 400
	// MinPercent is Go's default, reached once the live heap is Headroom.
	MinPercent = 100
	// Headroom is the garbage the policy lets accumulate above the live heap
	// before it falls back towards Go's default, while a file channel runs
	// (and until SetHeadroom says otherwise).
	Headroom = 128 << 20
	// LeanHeadroom is that garbage when no file channel runs: enough to
	// collect a few-MiB heap a few times less often than Go's default, small
	// enough that a collector's RSS stays a few dozen MiB.
	LeanHeadroom = 16 << 20
)

// PercentFor is the target for a live heap of live bytes with headroom bytes
// of garbage allowed: MaxPercent up to headroom/4, then whatever keeps the
// garbage at headroom, but never below MinPercent.
func PercentFor(live, headroom uint64) int {
	if live == 0 {
		return MaxPercent
	}
	p := headroom * 100 / live
	return int(min(max(p, MinPercent), MaxPercent))
}

var (
	mu      sync.Mutex
	running atomic.Bool
	stopped atomic.Bool
	current atomic.Int64
	room    atomic.Int64 // the headroom in force; 0 means Headroom
)

// inForce is the headroom in force.
func inForce() uint64 {
	if h := room.Load(); h > 0 {
		return uint64(h)
	}
	return Headroom
}

// SetHeadroom sets the garbage the policy lets accumulate above the live
// heap (Headroom or LeanHeadroom) and applies it at once when the policy
// runs; it lasts until the next call, across Stop and Start.
func SetHeadroom(bytes int64) {
	mu.Lock()
	defer mu.Unlock()
	room.Store(bytes)
	if running.Load() {
		apply(PercentFor(liveHeap(), inForce()))
	}
}

// Start applies the policy unless the environment sets GOGC or GOMEMLIMIT,
// and reports whether it did. It re-evaluates the target after every
// collection, from the live heap that collection found. Calling it again is
// harmless.
func Start() bool {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return false
	}
	mu.Lock()
	defer mu.Unlock()
	if running.Load() {
		return true
	}
	running.Store(true)
	stopped.Store(false)
	apply(PercentFor(liveHeap(), inForce()))
	arm()
	return true
}

// Stop ends the re-evaluation and restores Go's default target (or the
// environment's); tests use it.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if !running.Load() {
		return
	}
	stopped.Store(true)
	running.Store(false)
	debug.SetGCPercent(envPercent())
	current.Store(0)
}

// Current is the target the policy last set, 0 when it is not running.
func Current() int { return int(current.Load()) }

func apply(p int) {
	if int64(p) != current.Load() {
		current.Store(int64(p))
		debug.SetGCPercent(p)
	}
}

// sentinel is garbage from the moment it is made; its finalizer runs after
// the collection that finds it, which is when the live heap is known. The
// pointer keeps it out of the tiny allocator, whose blocks may never be
// finalized.
type sentinel struct {
	_ *int
	_ [16]byte
}

func arm() {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
		if stopped.Load() {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if stopped.Load() {
			return
		}
		apply(PercentFor(liveHeap(), inForce()))
		arm()
	})
}

var liveSample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}

// liveHeap is the heap the last collection found reachable; the caller
// holds mu (the sample slice is shared).
func liveHeap() uint64 {
	metrics.Read(liveSample)
	if liveSample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return liveSample[0].Value.Uint64()
}

// envPercent is the target GOGC asks for, or Go's default.
func envPercent() int {
	switch v := os.Getenv("GOGC"); v {
	case "":
		return 100
	case "off":
		return -1
	default:
		n := 0
		for _, c := range v {
			if c < '0' || c > '9' {
				return 100
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
}
