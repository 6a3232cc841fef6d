package counter

import (
	"math"
	"sync/atomic"
)

// Histogram counts observations into fixed buckets, lock-free, for a
// storage or channel package to record latencies and sizes without
// depending on a metrics library: the agent reads Snapshot and exports it.
// Observe may be called from any goroutine.
type Histogram struct {
	bounds  []float64       // upper bounds, increasing; +Inf is implicit
	counts  []atomic.Uint64 // per bucket (not cumulative), len(bounds)+1
	sumBits atomic.Uint64   // float64 bits of the sum
	n       atomic.Uint64
}

// NewHistogram makes a histogram with these increasing upper bounds.
func NewHistogram(bounds ...float64) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// Observe records one value.
func (h *Histogram) Observe(v float64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.n.Add(1)
	for {
		old := h.sumBits.Load()
		if h.sumBits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Snapshot returns the bounds, the cumulative count at each bound (as
// Prometheus wants them), the total count and the sum. Concurrent
// observations may land in the count a moment before the buckets: the
// numbers are a monitoring view, not an invariant.
func (h *Histogram) Snapshot() (bounds []float64, cumulative []uint64, count uint64, sum float64) {
	cumulative = make([]uint64, len(h.bounds))
	var c uint64
	for i := range h.bounds {
		c += h.counts[i].Load()
		cumulative[i] = c
	}
	return h.bounds, cumulative, c + h.counts[len(h.bounds)].Load(), math.Float64frombits(h.sumBits.Load())
}
