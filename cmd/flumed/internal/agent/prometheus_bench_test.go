package agent

// A Prometheus scrape of a 100-component agent (30 memory channels, 40
// lone file_roll sinks, 30 seq sources that have finished), Go runtime and
// process metrics included: the target (issue 13) is ≤ 2 ms and ≤ 1 MiB
// allocated per scrape (B/op with -benchmem). Flume's JSON of the same
// agent is the baseline. cpu-ms/op is the process's CPU time per scrape,
// which a loaded machine does not inflate as it does ns/op.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// processCPU is the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func hundredComponents(dir string) string {
	var b strings.Builder
	var srcs, chans, sinks []string
	for i := range 30 {
		chans = append(chans, fmt.Sprintf("c%d", i))
		fmt.Fprintf(&b, "a1.channels.c%d.type = memory\n", i)
		srcs = append(srcs, fmt.Sprintf("r%d", i))
		fmt.Fprintf(&b, "a1.sources.r%d.type = seq\na1.sources.r%d.channels = c%d\na1.sources.r%d.totalEvents = 10\n", i, i, i, i)
	}
	for i := range 40 {
		sinks = append(sinks, fmt.Sprintf("k%d", i))
		fmt.Fprintf(&b, "a1.sinks.k%d.type = file_roll\na1.sinks.k%d.channel = c%d\na1.sinks.k%d.sink.directory = %s\n", i, i, i%30, i, dir)
	}
	return fmt.Sprintf("a1.sources = %s\na1.channels = %s\na1.sinks = %s\n", strings.Join(srcs, " "),
		strings.Join(chans, " "), strings.Join(sinks, " ")) + b.String()
}

// discard is a ResponseWriter that counts the body: a server writes it to
// the connection, so buffering it (httptest's recorder) is not the scrape's
// cost.
type discard struct {
	header http.Header
	code   int
	n      int
}

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) WriteHeader(code int)        { d.code = code }
func (d *discard) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }

func BenchmarkScrape(b *testing.B) {
	a, err := Build(parseAgent(b, hundredComponents(b.TempDir())), Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Start(); err != nil {
		b.Fatal(err)
	}
	defer a.Stop(b.Context())
	h := a.HandlerWith(MonitorOptions{})
	for _, c := range []struct{ name, path, encoding string }{
		{"components=100/format=prometheus", "/prometheus", ""},
		// What Prometheus asks for: the body gzipped.
		{"components=100/format=prometheus-gzip", "/prometheus", "gzip"},
		{"components=100/format=flume-json", "/metrics", ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			size := 0
			req := httptest.NewRequest("GET", c.path, nil)
			if c.encoding != "" {
				req.Header.Set("Accept-Encoding", c.encoding)
			}
			cpu0 := processCPU()
			for b.Loop() {
				w := &discard{header: http.Header{}}
				h.ServeHTTP(w, req)
				if w.code != 0 && w.code != 200 {
					b.Fatalf("%d", w.code)
				}
				size = w.n
			}
			b.ReportMetric(float64(size), "body-bytes")
			// CPU time of the whole process (GC workers included) per
			// scrape: on a machine whose cores are busy with other work,
			// ns/op measures the queue for a core; this is what a scrape
			// costs, and what ns/op is on an idle machine.
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
		})
	}
}
