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
// Headroom is 16 MiB because an agent's peak RSS is its heap's peak plus
// some 20 MiB of binary and runtime, and flumed aims at 64 MiB for an agent
// under load (issue 14: a Kafka source filling a file channel). That agent's
// live heap is 8-20 MiB; at a target of 400 its heap grew to 100 MB between
// collections and its peak RSS was 111-122 MiB; with 16 MiB of headroom it
// was 55-62 MiB at the same events/s (bench/kafka_source_test.go). The file
// channel's put+take benchmark above keeps a live heap of a few MiB, so it
// still runs at 400 (533-667 µs of CPU per put+take at 128 MiB, 557-595 at
// 16 MiB, on the same busy machine).
// A collector without a file channel gains the same way: an avro source →
// memory channel → file_roll collector runs with about 7 MiB live, and its
// peak RSS went from ~57 to ~44 MiB (bench/collector_memory_test.go).
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
	// before it falls back towards Go's default.
	Headroom = 16 << 20
)

// PercentFor is the target for a live heap of live bytes: MaxPercent up to
// Headroom/4, then whatever keeps the headroom at Headroom, but never below
// MinPercent.
func PercentFor(live uint64) int {
	if live == 0 {
		return MaxPercent
	}
	p := uint64(Headroom) * 100 / live
	return int(min(max(p, MinPercent), MaxPercent))
}

var (
	mu      sync.Mutex
	running atomic.Bool
	stopped atomic.Bool
	current atomic.Int64
)

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
	apply(PercentFor(liveHeap()))
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
		apply(PercentFor(liveHeap()))
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
