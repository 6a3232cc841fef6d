package agent

import (
	"io/fs"
	"math"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/counter"
	"github.com/flumed/flumed/internal/fsutil"
	"github.com/flumed/flumed/sink"
)

// Prometheus exposition of the agent, in Prometheus' naming: every Flume
// counter as flumed_<kind>_<attribute>_total (EventPutSuccessCount of a
// channel is flumed_channel_event_put_success_total), the gauges (sizes,
// capacities, open connections) without the suffix, start times in
// seconds, each labelled with the component's name and configured type.
// Beyond Flume's counters: the channels' fill ratio and oldest event's age
// (memory and file channels), a file channel's bytes on disk and free
// space above minimumRequiredSpace, each failover group's sinks (active,
// penalised and until when), how long every sink of a group has failed,
// and the Go runtime and process collectors. Values are read when
// scraped, never cached.

// promCollector is the agent as a prometheus.Collector. It describes
// nothing up front (an unchecked collector): its metrics follow the
// configuration, which a reload changes.
type promCollector struct {
	a *Agent

	mu     sync.Mutex
	descs  map[string]*prometheus.Desc      // by metric name
	attrs  map[string]map[string]attrMetric // by kind, then Flume attribute
	labels map[[3]string][]*dto.LabelPair   // by label values
}

// labelPairs returns the label pairs of values (name, type; or group,
// sink, type), made once: a scrape exports the same components' labels
// over and over, and the registry only reads them.
func (c *promCollector) labelPairs(values ...string) []*dto.LabelPair {
	var key [3]string
	copy(key[:], values)
	c.mu.Lock()
	defer c.mu.Unlock()
	if lp, ok := c.labels[key]; ok {
		return lp
	}
	names := []string{"name", "type"}
	if len(values) == 3 {
		names = []string{"group", "sink", "type"}
	}
	lp := make([]*dto.LabelPair, len(values))
	for i := range values {
		lp[i] = &dto.LabelPair{Name: &names[i], Value: &values[i]}
	}
	c.labels[key] = lp
	return lp
}

// sample is one exported value: a prometheus.Metric over cached label
// pairs and descriptor, cheaper than a const metric made from strings.
type sample struct {
	desc   *prometheus.Desc
	vt     prometheus.ValueType
	v      float64
	labels []*dto.LabelPair
}

func (m *sample) Desc() *prometheus.Desc { return m.desc }

func (m *sample) Write(out *dto.Metric) error {
	out.Label = m.labels
	if m.vt == prometheus.CounterValue {
		out.Counter = &dto.Counter{Value: &m.v}
	} else {
		out.Gauge = &dto.Gauge{Value: &m.v}
	}
	return nil
}

// attrMetric is how one Flume attribute is exported: made once per kind and
// attribute, since a scrape sees the same few dozen over and over.
type attrMetric struct {
	desc  *prometheus.Desc // nil: not exported (StartTime of 0 is skipped at scrape)
	vt    prometheus.ValueType
	scale float64
}

// PrometheusHandler serves the agent's metrics in the Prometheus text
// format, with the Go runtime's and the process's.
func (a *Agent) PrometheusHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newPromCollector(a), collectors.NewGoCollector())
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

func newPromCollector(a *Agent) *promCollector {
	return &promCollector{a: a, descs: map[string]*prometheus.Desc{},
		attrs: map[string]map[string]attrMetric{}, labels: map[[3]string][]*dto.LabelPair{}}
}

func (c *promCollector) Describe(chan<- *prometheus.Desc) {}

// desc returns the descriptor of name, made once.
func (c *promCollector) desc(name, help string, labels ...string) *prometheus.Desc {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.descs[name]
	if !ok {
		d = prometheus.NewDesc(name, help, labels, nil)
		c.descs[name] = d
	}
	return d
}

func (c *promCollector) emit(out chan<- prometheus.Metric, vt prometheus.ValueType, name, help string, v float64, labels ...string) {
	names := []string{"name", "type"}
	if len(labels) == 3 {
		names = []string{"group", "sink", "type"}
	}
	out <- &sample{desc: c.desc(name, help, names...), vt: vt, v: v, labels: c.labelPairs(labels...)}
}

func (c *promCollector) Collect(out chan<- prometheus.Metric) {
	a := c.a
	channels, groups, sources := a.parts()
	types := a.componentTypes()
	for _, cu := range channels {
		ch := cu.channel()
		if ch == nil {
			continue
		}
		c.channel(out, cu.name, types["channel "+cu.name], ch)
	}
	for _, g := range groups {
		for _, s := range g.sinks {
			if m, ok := s.(counter.Monitored); ok {
				c.flume(out, "sink", s.Name(), types["sink "+s.Name()], m.FlumeMetrics())
			}
		}
		typ := types["sink group "+g.name]
		c.emit(out, prometheus.GaugeValue, "flumed_sink_group_failing_seconds",
			"How long every sink of the group has failed to deliver (0 when the last batch was delivered).",
			g.health.failingFor().Seconds(), g.name, typ)
		if f, ok := g.proc.(interface {
			State() []sink.FailoverSinkState
		}); ok {
			for _, s := range f.State() {
				c.emit(out, prometheus.GaugeValue, "flumed_failover_sink_active",
					"1 for the sink a failover group delivers to.", b2f(s.Active), g.name, s.Sink, typ)
				c.emit(out, prometheus.GaugeValue, "flumed_failover_sink_penalized",
					"1 for a sink of a failover group that failed and waits out its penalty.", b2f(s.Dead), g.name, s.Sink, typ)
				retry := 0.0
				if s.Dead {
					retry = float64(s.RetryAt.UnixMilli()) / 1000
				}
				c.emit(out, prometheus.GaugeValue, "flumed_failover_sink_retry_at_seconds",
					"When a penalised sink is tried again (Unix time; 0 when not penalised).", retry, g.name, s.Sink, typ)
			}
		}
	}
	for _, s := range sources {
		if m, ok := s.src.(counter.Monitored); ok {
			c.flume(out, "source", s.name, types["source "+s.name], m.FlumeMetrics())
		}
	}
}

// channel exports a channel's Stats, its fill ratio and, for a file
// channel, its disk use.
func (c *promCollector) channel(out chan<- prometheus.Metric, name, typ string, ch channel.Channel) {
	st := ch.Stats()
	counters := []struct {
		metric, help string
		v            int64
	}{
		{"flumed_channel_event_put_attempt_total", "Put calls (Flume's EventPutAttemptCount).", st.PutAttempts},
		{"flumed_channel_event_put_success_total", "Events in committed puts (EventPutSuccessCount).", st.PutSuccesses},
		{"flumed_channel_event_take_attempt_total", "Take calls, empty ones included (EventTakeAttemptCount).", st.TakeAttempts},
		{"flumed_channel_event_take_success_total", "Events in committed takes (EventTakeSuccessCount).", st.TakeSuccesses},
	}
	if st.File {
		counters = append(counters, []struct {
			metric, help string
			v            int64
		}{
			{"flumed_channel_put_errors_total", "Failed put commits of a file channel.", st.PutErrors},
			{"flumed_channel_take_errors_total", "Failed take commits of a file channel.", st.TakeErrors},
			{"flumed_channel_checkpoint_errors_total", "Failed checkpoints of a file channel.", st.CheckpointErrors},
		}...)
	}
	for _, k := range counters {
		c.emit(out, prometheus.CounterValue, k.metric, k.help, float64(k.v), name, typ)
	}
	c.emit(out, prometheus.GaugeValue, "flumed_channel_size", "Events in the channel (ChannelSize).", float64(st.Size), name, typ)
	c.emit(out, prometheus.GaugeValue, "flumed_channel_capacity", "The channel's capacity in events (ChannelCapacity).", float64(st.Capacity), name, typ)
	fill := 0.0
	if st.Capacity > 0 {
		fill = float64(st.Size) / float64(st.Capacity)
	}
	c.emit(out, prometheus.GaugeValue, "flumed_channel_fill_ratio", "Size over capacity, 0 to 1.", fill, name, typ)
	if st.KnowsOldestAge() {
		c.emit(out, prometheus.GaugeValue, "flumed_channel_oldest_event_age_seconds", oldestAgeHelp, st.OldestAge.Seconds(), name, typ)
	}
	if !st.StartTime.IsZero() {
		c.emit(out, prometheus.GaugeValue, "flumed_channel_start_time_seconds", "When the channel opened (Unix time).",
			float64(st.StartTime.UnixMilli())/1000, name, typ)
	}
	if cs, ok := ch.(interface {
		CommitStats() channel.FileCommitStats
	}); ok {
		st := cs.CommitStats()
		c.histogram(out, "flumed_channel_log_sync_seconds", "Each fsync of a file channel's data log.", st.LogSyncSeconds, name, typ)
		c.histogram(out, "flumed_channel_checkpoint_sync_seconds", "Each synced write of a file channel's ack state (what take commits wait for).",
			st.CheckpointSyncSeconds, name, typ)
		c.histogram(out, "flumed_channel_put_commit_group_size", "Put commits answered by one data log append.", st.PutGroup, name, typ)
		c.histogram(out, "flumed_channel_take_commit_group_size", "Take commits answered by one checkpoint write.", st.TakeGroup, name, typ)
	}
	f, ok := ch.(interface{ Options() channel.FileOptions })
	if !ok {
		return
	}
	o := f.Options()
	c.emit(out, prometheus.GaugeValue, "flumed_channel_wal_bytes", "Bytes of the file channel's data directory on disk.",
		float64(dirBytes(o.DataDir)), name, typ)
	if sp, err := (fsutil.OS{}).Statfs(o.DataDir); err == nil {
		c.emit(out, prometheus.GaugeValue, "flumed_channel_free_space_headroom_bytes",
			"Free space of the data directory's file system above minimumRequiredSpace; puts fail below 0.",
			float64(sp.Avail)-float64(o.MinimumRequiredSpace), name, typ)
	}
}

// oldestAgeHelp is the help of flumed_channel_oldest_event_age_seconds; the
// README's Monitoring section says the same.
const oldestAgeHelp = "How long the oldest event the channel holds (queued, or taken and not committed) " +
	"has waited since its put committed; 0 when empty. Memory channel: exact. File channel: from the commit " +
	"time in the event's record (milliseconds), so also right after a restart; just after a taker leaves a " +
	"record it has not read the next of, the record before stands in (an over-statement by the time between " +
	"those two puts, until the next take). Not exported for the Kafka channel, whose queue is the topic."

// histogram exports h as a Prometheus histogram.
func (c *promCollector) histogram(out chan<- prometheus.Metric, metric, help string, h *counter.Histogram, name, typ string) {
	bounds, cum, n, sum := h.Snapshot()
	buckets := make(map[float64]uint64, len(bounds))
	for i, b := range bounds {
		buckets[b] = cum[i]
	}
	out <- prometheus.MustNewConstHistogram(c.desc(metric, help, "name", "type"), n, sum, buckets, name, typ)
}

// flume exports one Flume counter group: numeric attributes only (Type
// and failover's sink lists are not numbers), StartTime and StopTime in
// seconds, OpenConnectionCount as a gauge, the rest as counters.
func (c *promCollector) flume(out chan<- prometheus.Metric, kind, name, typ string, m map[string]string) {
	for attr, s := range m {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) {
			continue
		}
		am := c.attr(kind, attr)
		if am.desc == nil || (am.scale != 1 && v == 0) {
			continue
		}
		out <- &sample{desc: am.desc, vt: am.vt, v: v * am.scale, labels: c.labelPairs(name, typ)}
	}
}

// attr returns how kind's attribute attr is exported, deciding it once.
func (c *promCollector) attr(kind, attr string) attrMetric {
	c.mu.Lock()
	am, ok := c.attrs[kind][attr]
	c.mu.Unlock()
	if ok {
		return am
	}
	base := "flumed_" + kind + "_" + snake(attr)
	switch {
	case attr == "Type":
	case attr == "StartTime" || attr == "StopTime":
		am = attrMetric{c.desc(base+"_seconds", "Flume's "+attr+" (Unix time).", "name", "type"), prometheus.GaugeValue, 0.001}
	case attr == "OpenConnectionCount":
		am = attrMetric{c.desc("flumed_"+kind+"_open_connections", "Connections open now (Flume's OpenConnectionCount).", "name", "type"), prometheus.GaugeValue, 1}
	default:
		am = attrMetric{c.desc(strings.TrimSuffix(base, "_count")+"_total", "Flume's "+attr+".", "name", "type"), prometheus.CounterValue, 1}
	}
	c.mu.Lock()
	if c.attrs[kind] == nil {
		c.attrs[kind] = map[string]attrMetric{}
	}
	c.attrs[kind][attr] = am
	c.mu.Unlock()
	return am
}

// snake turns Flume's CamelCase attribute names into Prometheus'
// snake_case: EventDrainSuccessCount → event_drain_success_count.
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// dirBytes is the size of the files under dir (0 if it cannot be read).
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			n += info.Size()
		}
		return nil
	})
	return n
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// componentTypes are the configured types of the running components, by
// unit id ("channel c1") and by sink ("sink k1").
func (a *Agent) componentTypes() map[string]string {
	a.mu.Lock()
	conf := a.conf
	a.mu.Unlock()
	out := map[string]string{}
	if conf == nil {
		return out
	}
	for _, c := range conf.Channels {
		out["channel "+c.Name] = c.Type
	}
	for _, c := range conf.Sinks {
		out["sink "+c.Name] = c.Type
		out["sink group "+c.Name] = "default"
	}
	for _, g := range conf.SinkGroups {
		out["sink group "+g.Name] = g.ProcessorType
	}
	for _, c := range conf.Sources {
		out["source "+c.Name] = c.Type
	}
	return out
}
