package counter

import (
	"reflect"
	"sync"
	"testing"
)

func TestHistogramCountsIntoCumulativeBuckets(t *testing.T) {
	h := NewHistogram(1, 5, 10)
	for _, v := range []float64{0.5, 1, 3, 7, 100} {
		h.Observe(v)
	}
	bounds, cum, n, sum := h.Snapshot()
	if !reflect.DeepEqual(bounds, []float64{1, 5, 10}) || !reflect.DeepEqual(cum, []uint64{2, 3, 4}) || n != 5 || sum != 111.5 {
		t.Fatalf("bounds %v cumulative %v count %d sum %v", bounds, cum, n, sum)
	}
}

func TestHistogramTakesConcurrentObservations(t *testing.T) {
	h := NewHistogram(1)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				h.Observe(2)
			}
		}()
	}
	wg.Wait()
	if _, cum, n, sum := h.Snapshot(); cum[0] != 0 || n != 8000 || sum != 16000 {
		t.Fatalf("cumulative %v count %d sum %v", cum, n, sum)
	}
}
