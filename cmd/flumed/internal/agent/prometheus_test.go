package agent

// /prometheus (and /metrics with MonitorOptions.Prometheus) serves every
// Flume counter in Prometheus' naming with the component's name and type as
// labels, the channels' fill ratio and oldest event's age, a file channel's
// bytes on disk and free-space headroom, each failover sink's state, and
// the Go runtime's metrics; /metrics stays Flume's JSON by default.

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/await"
)

func promAgentConfig(dir string) string {
	return fmt.Sprintf(`a1.sources = r1 r2
a1.channels = c1 f1
a1.sinks = k1 k2 k3
a1.sinkgroups = g1
a1.sinkgroups.g1.sinks = k1 k2
a1.sinkgroups.g1.processor.type = failover
a1.sinkgroups.g1.processor.priority.k1 = 10
a1.sinkgroups.g1.processor.priority.k2 = 5
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.sources.r1.totalEvents = 100
a1.sources.r2.type = seq
a1.sources.r2.channels = f1
a1.sources.r2.totalEvents = 100
a1.channels.c1.type = memory
a1.channels.c1.keep-alive = 0
a1.channels.f1.type = file
a1.channels.f1.checkpointDir = %[1]s/cp
a1.channels.f1.dataDirs = %[1]s/data
a1.channels.f1.minimumRequiredSpace = 1048576
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = %[1]s
a1.sinks.k2.type = file_roll
a1.sinks.k2.channel = c1
a1.sinks.k2.sink.directory = %[1]s
a1.sinks.k3.type = null
a1.sinks.k3.channel = f1
`, dir)
}

func scrape(t *testing.T, h http.Handler, path string) (string, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if rec.Code != 200 {
		t.Fatalf("GET %s: %d", path, rec.Code)
	}
	return rec.Header().Get("Content-Type"), rec.Body.String()
}

func TestPrometheusExportsFlumesCountersAndTheAgentsState(t *testing.T) {
	dir := t.TempDir()
	a := agentFrom(t, promAgentConfig(dir), fastOptions(nil))
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(t.Context())
	await.True(t, "every event delivered", func() bool {
		m := a.Metrics()
		return m["SINK.k1"]["EventDrainSuccessCount"] == "100" && m["CHANNEL.f1"]["EventTakeSuccessCount"] == "100"
	})
	h := a.HandlerWith(MonitorOptions{})
	if ct, _ := scrape(t, h, "/metrics"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("/metrics is %s by default, want Flume's JSON", ct)
	}
	_, body := scrape(t, h, "/prometheus")
	for _, want := range []string{
		`flumed_channel_event_put_success_total{name="c1",type="memory"} 100`,
		`flumed_channel_event_take_success_total{name="f1",type="file"} 100`,
		`flumed_channel_size{name="c1",type="memory"} 0`,
		`flumed_channel_fill_ratio{name="c1",type="memory"} 0`,
		`flumed_channel_oldest_event_age_seconds{name="c1",type="memory"} 0`,
		`flumed_channel_oldest_event_age_seconds{name="f1",type="file"} 0`,
		`flumed_sink_event_drain_success_total{name="k1",type="file_roll"} 100`,
		`flumed_sink_event_drain_success_total{name="k2",type="file_roll"} 0`,
		`flumed_source_event_accepted_total{name="r1",type="seq"} 100`,
		`flumed_failover_sink_active{group="g1",sink="k1",type="failover"} 1`,
		`flumed_failover_sink_active{group="g1",sink="k2",type="failover"} 0`,
		`flumed_failover_sink_penalized{group="g1",sink="k1",type="failover"} 0`,
		`flumed_sink_group_failing_seconds{name="g1",type="failover"} 0`,
		`# TYPE flumed_channel_event_put_success_total counter`,
		`# TYPE flumed_channel_size gauge`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want+"\n") && !strings.Contains(body, want) {
			t.Errorf("no %s", want)
		}
	}
	for _, re := range []string{
		`flumed_channel_wal_bytes\{name="f1",type="file"\} [1-9]`,
		`flumed_channel_free_space_headroom_bytes\{name="f1",type="file"\} \S+`,
		`flumed_channel_start_time_seconds\{name="c1",type="memory"\} 1\.\d+e\+09`,
		`flumed_channel_log_sync_seconds_count\{name="f1",type="file"\} [1-9]`,
		`flumed_channel_checkpoint_sync_seconds_bucket\{name="f1",type="file",le="\+Inf"\} [1-9]`,
		`flumed_channel_put_commit_group_size_sum\{name="f1",type="file"\} 100`,
	} {
		if !regexp.MustCompile(re).MatchString(body) {
			t.Errorf("no line matching %s", re)
		}
	}
	// The exposition is written by hand (prometheus_text.go): Prometheus'
	// own parser must read all of it, ours and the Go runtime's families.
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Errorf("the exposition does not parse: %v", err)
	} else if h := fams["flumed_channel_log_sync_seconds"]; h.GetType() != dto.MetricType_HISTOGRAM || len(h.GetMetric()) != 1 {
		t.Errorf("flumed_channel_log_sync_seconds parsed as %v", h)
	} else if fams["go_goroutines"] == nil {
		t.Errorf("no go_goroutines family")
	} else if rss := fams["process_resident_memory_bytes"].GetMetric(); len(rss) != 1 || rss[0].GetGauge().GetValue() <= 0 {
		t.Errorf("process_resident_memory_bytes is %v", rss)
	}
	// Prometheus asks for gzip.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/prometheus", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	h.ServeHTTP(rec, req)
	if zr, err := gzip.NewReader(rec.Body); err != nil || rec.Header().Get("Content-Encoding") != "gzip" {
		t.Errorf("gzip asked for: %v, Content-Encoding %q", err, rec.Header().Get("Content-Encoding"))
	} else if unzipped, err := io.ReadAll(zr); err != nil || !strings.Contains(string(unzipped), "flumed_channel_size{") {
		t.Errorf("gzipped scrape: %v", err)
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", body)
	}
	// With Prometheus chosen, /metrics is the text format and Flume's JSON
	// stays at /metrics.json.
	h = a.HandlerWith(MonitorOptions{Prometheus: true})
	if ct, _ := scrape(t, h, "/metrics"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("/metrics is %s with Prometheus chosen", ct)
	}
	if ct, _ := scrape(t, h, "/metrics.json"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("/metrics.json is %s", ct)
	}
}

// statsChannel is a channel that only reports the stats it is given.
type statsChannel struct {
	channel.Channel
	st channel.Stats
}

func (c statsChannel) Stats() channel.Stats { return c.st }

func TestPrometheusExportsTheOldestEventAge(t *testing.T) {
	// The age is the channel's (its clock, its put times: channel tests
	// assert it with a fake clock); the exporter turns it into seconds, and
	// leaves it out where the channel cannot know it.
	s := &promScrape{c: newPromCollector(nil), byName: map[*famDesc]*promFamily{}}
	s.channel("c1", "memory", statsChannel{st: channel.Stats{Type: "memory", Size: 3, Capacity: 10, OldestAge: 90 * time.Second}})
	s.channel("f1", "file", statsChannel{st: channel.Stats{Type: "file", File: true, OldestAge: 1500 * time.Millisecond}})
	s.channel("k1", "kafka", statsChannel{st: channel.Stats{Type: "kafka"}})
	var got []string
	for _, line := range strings.Split(string(s.render()), "\n") {
		if strings.HasPrefix(line, "flumed_channel_oldest_event_age_seconds") {
			got = append(got, line)
		}
	}
	want := []string{
		`flumed_channel_oldest_event_age_seconds{name="c1",type="memory"} 90`,
		`flumed_channel_oldest_event_age_seconds{name="f1",type="file"} 1.5`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got\n%s\nwant\n%s\n(none for kafka)", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Flume's JSON carries it too, in milliseconds as Flume's times are.
	if v := (channel.Stats{Type: "memory", OldestAge: 1500 * time.Millisecond}).FlumeMetrics()["OldestEventAgeMillis"]; v != "1500" {
		t.Errorf("memory OldestEventAgeMillis %q, want 1500", v)
	}
	if v, ok := (channel.Stats{Type: "kafka"}).FlumeMetrics()["OldestEventAgeMillis"]; ok {
		t.Errorf("kafka OldestEventAgeMillis %q, want none", v)
	}
}

func TestPrometheusExportsConnectionsPerSourceAsAGauge(t *testing.T) {
	// A source's Flume counters: OpenConnectionCount is a gauge under
	// Prometheus' name, a StartTime of 0 (not started) is left out, the
	// rest are counters, and a label value is escaped.
	s := &promScrape{c: newPromCollector(nil), byName: map[*famDesc]*promFamily{}}
	s.flume("source", `r"1`, "avro", map[string]string{"OpenConnectionCount": "3", "StartTime": "0",
		"EventAcceptedCount": "5", "Type": "SOURCE"})
	body := string(s.render())
	for _, want := range []string{
		"# TYPE flumed_source_open_connections gauge\n" + `flumed_source_open_connections{name="r\"1",type="avro"} 3` + "\n",
		"# TYPE flumed_source_event_accepted_total counter\n" + `flumed_source_event_accepted_total{name="r\"1",type="avro"} 5` + "\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no\n%s\nin\n%s", want, body)
		}
	}
	if strings.Contains(body, "start_time") {
		t.Errorf("a StartTime of 0 exported:\n%s", body)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	if _, err := parser.TextToMetricFamilies(strings.NewReader(body)); err != nil {
		t.Errorf("does not parse: %v\n%s", err, body)
	}
}
