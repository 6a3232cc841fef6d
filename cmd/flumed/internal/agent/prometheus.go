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
// and client_golang's Go runtime and process collectors (memory, CPU,
// open files: what an operator graphs beside the events). Values are read when
// scraped, never cached.

// promCollector exports the agent. Each scrape renders flumed's metrics
// straight into the text format (prometheus_text.go) instead of going
// through a prometheus.Registry and the exposition's data model: the
// registry writes every sample into a protobuf struct, checks it, sorts
// it, and the encoder reads it back, which cost more than the rest of a
// scrape (issue 13 sets ≤ 2 ms for 100 components). What the registry
// checked holds by construction: each metric name has one type, one help
// and one label set (name, type; or group, sink, type), and a component
// appears once per metric. The Go runtime's metrics still come from
// client_golang's collector, through a registry of their own.
type promCollector struct {
	a *Agent

	mu     sync.Mutex
	descs  map[string]*famDesc              // by metric name
	attrs  map[string]map[string]attrMetric // by kind, then Flume attribute
	labels map[[3]string]string             // rendered label sets, by label values
	pool   sync.Pool                        // of *promScrape, reused between scrapes
}

// attrMetric is how one Flume attribute is exported: made once per kind and
// attribute, since a scrape sees the same few dozen over and over.
type attrMetric struct {
	desc  *famDesc // nil: not exported (StartTime of 0 is skipped at scrape)
	scale float64
}

// PrometheusHandler serves the agent's metrics in the Prometheus text
// format (version 0.0.4), with the Go runtime's and the process's.
func (a *Agent) PrometheusHandler() http.Handler {
	goReg := prometheus.NewRegistry()
	goReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return newPromCollector(a).handler(goReg)
}

func newPromCollector(a *Agent) *promCollector {
	return &promCollector{a: a, descs: map[string]*famDesc{},
		attrs: map[string]map[string]attrMetric{}, labels: map[[3]string]string{}}
}

// desc returns the family description of name, made once.
func (c *promCollector) desc(name, help string, typ famType) *famDesc {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.descs[name]
	if !ok {
		d = newFamDesc(name, help, typ)
		c.descs[name] = d
	}
	return d
}

// labelSet returns the label set of values (name, type; or group, sink,
// type) rendered as the text format writes it, made once: a scrape
// exports the same components' labels over and over.
func (c *promCollector) labelSet(values ...string) string {
	var key [3]string
	copy(key[:], values)
	c.mu.Lock()
	defer c.mu.Unlock()
	if ls, ok := c.labels[key]; ok {
		return ls
	}
	names := []string{"name", "type"}
	if len(values) == 3 {
		names = []string{"group", "sink", "type"}
	}
	ls := renderLabels(names, values)
	c.labels[key] = ls
	return ls
}

// emit adds a gauge or counter named name, labelled with labels (name and
// type; or group, sink and type).
func (s *promScrape) emit(typ famType, name, help string, v float64, labels ...string) {
	s.add(s.c.desc(name, help, typ), v, s.c.labelSet(labels...))
}

// gather collects the agent's metrics into a scrape from the pool; the
// caller renders it and puts it back (release).
func (c *promCollector) gather() *promScrape {
	s, _ := c.pool.Get().(*promScrape)
	if s == nil {
		s = &promScrape{c: c, byName: map[*famDesc]*promFamily{}}
	}
	a := c.a
	channels, groups, sources := a.parts()
	types := a.componentTypes()
	for _, cu := range channels {
		ch := cu.channel()
		if ch == nil {
			continue
		}
		s.channel(cu.name, types["channel "+cu.name], ch)
	}
	for _, g := range groups {
		for _, sk := range g.sinks {
			if m, ok := sk.(counter.Monitored); ok {
				s.flume("sink", sk.Name(), types["sink "+sk.Name()], m.FlumeMetrics())
			}
		}
		typ := types["sink group "+g.name]
		s.emit(promGauge, "flumed_sink_group_failing_seconds",
			"How long every sink of the group has failed to deliver (0 when the last batch was delivered).",
			g.health.failingFor().Seconds(), g.name, typ)
		if f, ok := g.proc.(interface {
			State() []sink.FailoverSinkState
		}); ok {
			for _, st := range f.State() {
				s.emit(promGauge, "flumed_failover_sink_active",
					"1 for the sink a failover group delivers to.", b2f(st.Active), g.name, st.Sink, typ)
				s.emit(promGauge, "flumed_failover_sink_penalized",
					"1 for a sink of a failover group that failed and waits out its penalty.", b2f(st.Dead), g.name, st.Sink, typ)
				retry := 0.0
				if st.Dead {
					retry = float64(st.RetryAt.UnixMilli()) / 1000
				}
				s.emit(promGauge, "flumed_failover_sink_retry_at_seconds",
					"When a penalised sink is tried again (Unix time; 0 when not penalised).", retry, g.name, st.Sink, typ)
			}
		}
	}
	for _, src := range sources {
		if m, ok := src.src.(counter.Monitored); ok {
			s.flume("source", src.name, types["source "+src.name], m.FlumeMetrics())
		}
	}
	return s
}

// channel exports a channel's Stats, its fill ratio and oldest event's age
// and, for a file channel, its disk use.
func (s *promScrape) channel(name, typ string, ch channel.Channel) {
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
		s.emit(promCounter, k.metric, k.help, float64(k.v), name, typ)
	}
	s.emit(promGauge, "flumed_channel_size", "Events in the channel (ChannelSize).", float64(st.Size), name, typ)
	s.emit(promGauge, "flumed_channel_capacity", "The channel's capacity in events (ChannelCapacity).", float64(st.Capacity), name, typ)
	fill := 0.0
	if st.Capacity > 0 {
		fill = float64(st.Size) / float64(st.Capacity)
	}
	s.emit(promGauge, "flumed_channel_fill_ratio", "Size over capacity, 0 to 1.", fill, name, typ)
	if st.KnowsOldestAge() {
		s.emit(promGauge, "flumed_channel_oldest_event_age_seconds", oldestAgeHelp, st.OldestAge.Seconds(), name, typ)
	}
	if !st.StartTime.IsZero() {
		s.emit(promGauge, "flumed_channel_start_time_seconds", "When the channel opened (Unix time).",
			float64(st.StartTime.UnixMilli())/1000, name, typ)
	}
	if cs, ok := ch.(interface {
		CommitStats() channel.FileCommitStats
	}); ok {
		st := cs.CommitStats()
		s.histogram("flumed_channel_log_sync_seconds", "Each fsync of a file channel's data log.", st.LogSyncSeconds, name, typ)
		s.histogram("flumed_channel_checkpoint_sync_seconds", "Each synced write of a file channel's ack state (what take commits wait for).",
			st.CheckpointSyncSeconds, name, typ)
		s.histogram("flumed_channel_put_commit_group_size", "Put commits answered by one data log append.", st.PutGroup, name, typ)
		s.histogram("flumed_channel_take_commit_group_size", "Take commits answered by one checkpoint write.", st.TakeGroup, name, typ)
	}
	f, ok := ch.(interface{ Options() channel.FileOptions })
	if !ok {
		return
	}
	o := f.Options()
	s.emit(promGauge, "flumed_channel_wal_bytes", "Bytes of the file channel's data directory on disk.",
		float64(dirBytes(o.DataDir)), name, typ)
	if sp, err := (fsutil.OS{}).Statfs(o.DataDir); err == nil {
		s.emit(promGauge, "flumed_channel_free_space_headroom_bytes",
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
func (s *promScrape) histogram(metric, help string, h *counter.Histogram, name, typ string) {
	bounds, cum, n, sum := h.Snapshot()
	s.addHistogram(s.c.desc(metric, help, promHistogram), s.c.labelSet(name, typ), bounds, cum, n, sum)
}

// flume exports one Flume counter group: numeric attributes only (Type
// and failover's sink lists are not numbers), StartTime and StopTime in
// seconds, OpenConnectionCount as a gauge, the rest as counters.
func (s *promScrape) flume(kind, name, typ string, m map[string]string) {
	labels := s.c.labelSet(name, typ)
	for attr, str := range m {
		v, err := strconv.ParseFloat(str, 64)
		if err != nil || math.IsNaN(v) {
			continue
		}
		am := s.c.attr(kind, attr)
		if am.desc == nil || (am.scale != 1 && v == 0) {
			continue
		}
		s.add(am.desc, v*am.scale, labels)
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
		am = attrMetric{c.desc(base+"_seconds", "Flume's "+attr+" (Unix time).", promGauge), 0.001}
	case attr == "OpenConnectionCount":
		am = attrMetric{c.desc("flumed_"+kind+"_open_connections", "Connections open now (Flume's OpenConnectionCount).", promGauge), 1}
	default:
		am = attrMetric{c.desc(strings.TrimSuffix(base, "_count")+"_total", "Flume's "+attr+".", promCounter), 1}
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
