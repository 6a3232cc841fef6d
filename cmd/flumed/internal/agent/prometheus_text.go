package agent

import (
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// The Prometheus text format (version 0.0.4), written by hand for flumed's
// own metrics: "# HELP" and "# TYPE" once per family, then one line per
// sample, name{labels} value. Names are flumed's constants and Flume
// attribute names in snake case, so they need no escaping; label values
// (component names) and help texts are escaped as the format says, once,
// when their rendering is made. Values are formatted as client_golang's
// encoder formats them, so a scraper sees the same bytes it saw from it.

// famType is a family's type as the TYPE line names it.
type famType string

const (
	promGauge     famType = "gauge"
	promCounter   famType = "counter"
	promHistogram famType = "histogram"
)

// famDesc is a metric family's name, help and type, with its HELP and TYPE
// lines rendered once.
type famDesc struct {
	name string
	typ  famType
	head string
}

func newFamDesc(name, help string, typ famType) *famDesc {
	help = strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(help)
	return &famDesc{name: name, typ: typ,
		head: "# HELP " + name + " " + help + "\n# TYPE " + name + " " + string(typ) + "\n"}
}

// renderLabels renders a label set, {a="x",b="y"}, its values escaped.
func renderLabels(names, values []string) string {
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	var b strings.Builder
	b.WriteByte('{')
	for i := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(names[i])
		b.WriteString(`="`)
		b.WriteString(esc.Replace(values[i]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// promFamily is one family's sample lines of a scrape.
type promFamily struct {
	d     *famDesc
	used  bool // in this scrape's fams
	lines []byte
}

// promScrape is one scrape's families, in the order first seen. Scrapes
// are pooled, so their buffers are reused: a steady agent's scrape then
// allocates little beyond what its components' counters allocate.
type promScrape struct {
	c      *promCollector
	byName map[*famDesc]*promFamily
	fams   []*promFamily
	out    []byte
}

func (s *promScrape) family(d *famDesc) *promFamily {
	f, ok := s.byName[d]
	if !ok {
		f = &promFamily{d: d}
		s.byName[d] = f
	}
	if !f.used {
		f.used = true
		s.fams = append(s.fams, f)
	}
	return f
}

// add appends one sample of d's family with the rendered label set labels.
func (s *promScrape) add(d *famDesc, v float64, labels string) {
	f := s.family(d)
	f.lines = append(f.lines, d.name...)
	f.lines = append(f.lines, labels...)
	f.lines = append(f.lines, ' ')
	f.lines = appendFloat(f.lines, v)
	f.lines = append(f.lines, '\n')
}

// addHistogram appends a histogram: one _bucket line per bound and +Inf,
// then _sum and _count.
func (s *promScrape) addHistogram(d *famDesc, labels string, bounds []float64, cum []uint64, n uint64, sum float64) {
	f := s.family(d)
	open := labels[:len(labels)-1] // without the closing brace: le joins the set
	bucket := func(le float64, count uint64) {
		f.lines = append(f.lines, d.name...)
		f.lines = append(f.lines, "_bucket"...)
		f.lines = append(f.lines, open...)
		f.lines = append(f.lines, `,le="`...)
		f.lines = appendFloat(f.lines, le)
		f.lines = append(f.lines, `"} `...)
		f.lines = strconv.AppendUint(f.lines, count, 10)
		f.lines = append(f.lines, '\n')
	}
	for i, b := range bounds {
		bucket(b, cum[i])
	}
	bucket(math.Inf(1), n)
	f.lines = append(f.lines, d.name...)
	f.lines = append(f.lines, "_sum"...)
	f.lines = append(f.lines, labels...)
	f.lines = append(f.lines, ' ')
	f.lines = appendFloat(f.lines, sum)
	f.lines = append(f.lines, '\n')
	f.lines = append(f.lines, d.name...)
	f.lines = append(f.lines, "_count"...)
	f.lines = append(f.lines, labels...)
	f.lines = append(f.lines, ' ')
	f.lines = strconv.AppendUint(f.lines, n, 10)
	f.lines = append(f.lines, '\n')
}

// appendFloat formats v as client_golang's text encoder does.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case v == 1:
		return append(b, '1')
	case v == 0:
		return append(b, '0')
	case v == -1:
		return append(b, "-1"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, +1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// render writes the families, sorted by name, into s.out.
func (s *promScrape) render() []byte {
	slices.SortFunc(s.fams, func(x, y *promFamily) int { return strings.Compare(x.d.name, y.d.name) })
	s.out = s.out[:0]
	for _, f := range s.fams {
		s.out = append(s.out, f.d.head...)
		s.out = append(s.out, f.lines...)
	}
	return s.out
}

// release returns s to the pool, emptied.
func (c *promCollector) release(s *promScrape) {
	for _, f := range s.fams {
		f.lines, f.used = f.lines[:0], false
	}
	s.fams = s.fams[:0]
	c.pool.Put(s)
}

var gzipWriters = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed); return w }}

// handler serves flumed's metrics, then those goReg gathers (the Go
// runtime's), in the text format, gzipped when the scraper accepts it
// (Prometheus does).
func (c *promCollector) handler(goReg prometheus.Gatherer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.gather()
		defer c.release(s)
		body := s.render()
		w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
		var out io.Writer = w
		if acceptsGzip(r) {
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzipWriters.Get().(*gzip.Writer)
			gz.Reset(w)
			defer func() { _ = gz.Close(); gzipWriters.Put(gz) }()
			out = gz
		}
		if _, err := out.Write(body); err != nil {
			return // the scraper went away
		}
		// A failing Go collector loses its own families, never flumed's.
		mfs, _ := goReg.Gather()
		var buf bytes.Buffer
		for _, mf := range mfs {
			buf.Reset()
			if _, err := expfmt.MetricFamilyToText(&buf, mf); err == nil {
				_, _ = out.Write(buf.Bytes())
			}
		}
	})
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		if enc, _, _ := strings.Cut(strings.TrimSpace(part), ";"); enc == "gzip" {
			return true
		}
	}
	return false
}
