package bench

// The wal benchmarks, each next to its raw tidwall/wal baseline in the same run:
//
//	go test -run '^$' -bench 'RawTidwall|WAL|SequentialRead|TruncateFront' -benchtime 2s ./bench/
//
// BenchmarkRawTidwall and BenchmarkWAL append batches of 100 × 512-byte
// payloads with one fsync per batch (tidwall: WriteBatch with NoSync off;
// wal: Append + Sync). BenchmarkSequentialRead reads a 1M-record log front to
// back (one op = one record): tidwall's Read loop against wal.Reader.
// BenchmarkTruncateFront measures what dropping one consumed 16 MiB segment
// stalls the writer for: tidwall's TruncateFront (which copies the segment it
// lands in) against wal.TruncateFront and wal.Release (which record the new
// front in the manifest and delete whole sealed segments, copying nothing).

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/flumed/flumed/wal"
	tidwall "github.com/tidwall/wal"
)

const benchSegment = 16 << 20

// payloads returns n distinct payloads of size bytes.
func payloads(n, size int) [][]byte {
	ps := make([][]byte, n)
	for i := range ps {
		ps[i] = make([]byte, size)
		for j := range ps[i] {
			ps[i][j] = byte(i + j)
		}
	}
	return ps
}

func BenchmarkRawTidwall(b *testing.B) {
	for _, batch := range benchBatches {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("batch=%d/size=%d", batch, size), func(b *testing.B) {
				l, err := tidwall.Open(b.TempDir(), &tidwall.Options{SegmentSize: benchSegment})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				ps := payloads(batch, size)
				var wb tidwall.Batch
				next := uint64(1)
				b.ResetTimer()
				for b.Loop() {
					for _, p := range ps {
						wb.Write(next, p)
						next++
					}
					if err := l.WriteBatch(&wb); err != nil { // fsyncs
						b.Fatal(err)
					}
				}
				reportThroughput(b, b.N*batch, size)
			})
		}
	}
}

func BenchmarkWAL(b *testing.B) {
	for _, batch := range benchBatches {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("batch=%d/size=%d", batch, size), func(b *testing.B) {
				l, err := wal.Open(b.TempDir(), wal.Options{SegmentSize: benchSegment})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				ps := payloads(batch, size)
				b.ResetTimer()
				for b.Loop() {
					if _, _, err := l.Append(ps...); err != nil {
						b.Fatal(err)
					}
					if err := l.Sync(); err != nil {
						b.Fatal(err)
					}
				}
				reportThroughput(b, b.N*batch, size)
			})
		}
	}
}

// BenchmarkSequentialRead fills both logs once (the parent runs once), then
// each sub-benchmark reads records in order, wrapping at the end.
func BenchmarkSequentialRead(b *testing.B) {
	const records, size, fill = 1_000_000, 512, 1000
	ps := payloads(fill, size)

	rawDir := b.TempDir()
	raw, err := tidwall.Open(rawDir, &tidwall.Options{NoSync: true, SegmentSize: benchSegment})
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	var wb tidwall.Batch
	for i := uint64(1); i <= records; {
		for _, p := range ps {
			wb.Write(i, p)
			i++
		}
		if err := raw.WriteBatch(&wb); err != nil {
			b.Fatal(err)
		}
	}
	l, err := wal.Open(b.TempDir(), wal.Options{SegmentSize: benchSegment})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < records; i += fill {
		if _, _, err := l.Append(ps...); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		b.Fatal(err)
	}

	name := fmt.Sprintf("records=%d/size=%d", records, size)
	b.Run("impl=raw-tidwall/"+name, func(b *testing.B) {
		idx := uint64(1)
		for b.Loop() {
			if _, err := raw.Read(idx); err != nil {
				b.Fatal(err)
			}
			if idx++; idx > records {
				idx = 1
			}
		}
		reportThroughput(b, b.N, size)
	})
	b.Run("impl=wal-reader/"+name, func(b *testing.B) {
		r, err := l.NewReader(1)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			_, err := r.Next()
			if err == io.EOF {
				r.Close()
				r, _ = l.NewReader(1)
				_, err = r.Next()
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		r.Close()
		reportThroughput(b, b.N, size)
	})
}

// BenchmarkTruncateFront: each op first appends about two more 16 MiB
// segments of 512-byte records (timer stopped), then drops the oldest whole
// segment while a writer goroutine appends and syncs one record at a time.
// ns/op is the call; writer-max-ms is the longest Append+Sync the writer saw
// during it (its usual latency is one fsync), i.e. the stall a put or commit
// suffers from the truncation.
func BenchmarkTruncateFront(b *testing.B) {
	ps := payloads(1000, 512)
	perSegment := uint64(benchSegment / (512 + 20))
	for _, how := range []string{"tidwall-truncate-front", "wal-truncate-front", "wal-release"} {
		b.Run(fmt.Sprintf("how=%s/segment=16MiB", how), func(b *testing.B) {
			var (
				l   *wal.Log
				raw *tidwall.Log
				err error
				wb  tidwall.Batch
			)
			next := uint64(1)
			if how == "tidwall-truncate-front" {
				raw, err = tidwall.Open(b.TempDir(), &tidwall.Options{NoSync: true, SegmentSize: benchSegment})
				defer func() { raw.Close() }()
			} else {
				l, err = wal.Open(b.TempDir(), wal.Options{SegmentSize: benchSegment})
				defer func() { l.Close() }()
			}
			if err != nil {
				b.Fatal(err)
			}
			write := func(ps ...[]byte) {
				if raw == nil {
					if _, _, err := l.Append(ps...); err != nil {
						b.Error(err)
					}
					return
				}
				for _, p := range ps {
					wb.Write(next, p)
					next++
				}
				if err := raw.WriteBatch(&wb); err != nil {
					b.Error(err)
				}
			}
			sync := func() {
				if raw != nil {
					raw.Sync()
				} else {
					l.Sync()
				}
			}
			var worst time.Duration
			for b.Loop() {
				b.StopTimer()
				for range 2 * perSegment / uint64(len(ps)) {
					write(ps...)
				}
				sync()
				var target uint64
				if raw != nil {
					first, _ := raw.FirstIndex()
					target = first + perSegment
				} else {
					target = l.Segments()[1].First
				}
				stop, done := make(chan struct{}), make(chan time.Duration)
				writing := make(chan struct{}) // closed after the writer's first synced write
				go func() {
					var maxLat time.Duration
					for i := 0; ; i++ {
						select {
						case <-stop:
							done <- maxLat
							return
						default:
						}
						t0 := time.Now()
						write(ps[0])
						sync()
						maxLat = max(maxLat, time.Since(t0))
						if i == 0 {
							close(writing)
						}
					}
				}()
				<-writing // the truncation is timed against a writer already at work
				b.StartTimer()
				switch how {
				case "tidwall-truncate-front":
					err = raw.TruncateFront(target)
				case "wal-truncate-front":
					err = l.TruncateFront(target)
				case "wal-release":
					err = l.Release(target)
				}
				b.StopTimer()
				close(stop)
				worst += <-done
				b.StartTimer()
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(worst.Microseconds())/1000/float64(b.N), "writer-max-ms")
		})
	}
}
