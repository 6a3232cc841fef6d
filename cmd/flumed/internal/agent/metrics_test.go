package agent

// The monitoring server speaks Flume's JSON (FLUME.md §5): GET /metrics, in
// any case, is one object keyed SOURCE.x / CHANNEL.x / SINK.x with every
// value a string, and only components that have counters appear. /healthz
// and /readyz answer for orchestrators, / is a page of links, other paths
// are 404, TRACE and OPTIONS are 403.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/flumed/flumed/internal/await"
)

func TestMetricsJSONHasFlumesKeysAndStringValues(t *testing.T) {
	text := twoSinks + "a1.sinks.k3.type = file_roll\n"
	text = strings.Replace(text, "a1.sinks = k1 k2", "a1.sinks = k1 k2 k3", 1) +
		"a1.sinks.k3.channel = c1\na1.sinks.k3.sink.directory = " + t.TempDir() + "\n"
	a := agentFrom(t, text, fastOptions(nil))
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := a.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	await.True(t, "every event taken", func() bool {
		return a.channels[0].channel().Stats().TakeSuccesses == 500
	})
	srv, err := ServeMetrics("127.0.0.1:0", a, a.opts.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + srv.Addr()

	resp, body := get(t, "GET", base+"/Metrics")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json;charset=utf-8" {
		t.Fatalf("GET /Metrics: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var m map[string]map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	// Null sinks have no counters in Flume; file_roll does.
	if len(m) != 3 || m["SOURCE.r1"] == nil || m["CHANNEL.c1"] == nil || m["SINK.k3"] == nil {
		t.Fatalf("keys of %s", body)
	}
	for group, attrs := range m {
		for k, v := range attrs {
			if _, ok := v.(string); !ok {
				t.Errorf("%s.%s = %v (%T), want a string", group, k, v, v)
			}
		}
	}
	if got := m["CHANNEL.c1"]["EventPutSuccessCount"]; got != "500" {
		t.Errorf("EventPutSuccessCount %v", got)
	}
	if got := m["SOURCE.r1"]["Type"]; got != "SOURCE" {
		t.Errorf("SOURCE.r1 Type %v", got)
	}
	if got := m["CHANNEL.c1"]["ChannelFillPercentage"]; got != "0.0" {
		t.Errorf("ChannelFillPercentage %v", got)
	}

	for _, tc := range []struct {
		method, path string
		code         int
		contains     string
	}{
		{"GET", "/metrics", 200, `"CHANNEL.c1"`},
		{"GET", "/METRICS", 200, `"SOURCE.r1"`},
		{"GET", "/healthz", 200, "ok"},
		{"GET", "/readyz", 200, "ready"},
		{"GET", "/", 200, `<a href="/metrics">`},
		{"GET", "/nope", 404, ""},
		{"TRACE", "/metrics", 403, ""},
		{"OPTIONS", "/", 403, ""},
	} {
		resp, body := get(t, tc.method, base+tc.path)
		if resp.StatusCode != tc.code || !strings.Contains(body, tc.contains) {
			t.Errorf("%s %s: %d %q, want %d containing %q", tc.method, tc.path, resp.StatusCode, body, tc.code, tc.contains)
		}
	}
}

func TestReadyzIsUnavailableUntilEveryPartRuns(t *testing.T) {
	a := agentFrom(t, twoSinks, fastOptions(nil))
	srv, err := ServeMetrics("127.0.0.1:0", a, a.opts.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, body := get(t, "GET", "http://"+srv.Addr()+"/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "agent a1") {
		t.Fatalf("before start: %d %q", resp.StatusCode, body)
	}
}

func get(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}
