package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/flumed/flumed/internal/counter"
)

// Metrics returns Flume's monitoring view (FLUME.md §5): one entry per
// component that has counters, keyed "<TYPE>.<name>" (SOURCE.r1, CHANNEL.c1,
// SINK.k1, and flumed's SINK_PROCESSOR.g1 for processors that report state),
// every value a string. Components without counters in Flume (netcat source,
// logger and null sinks) do not appear, nor do channels not yet open.
func (a *Agent) Metrics() map[string]map[string]string {
	out := map[string]map[string]string{}
	add := func(name string, m map[string]string, typ string) {
		if t := m["Type"]; t != "" {
			typ = t
		}
		out[typ+"."+name] = m
	}
	channels, groups, sources := a.parts()
	for _, c := range channels {
		if ch := c.channel(); ch != nil {
			add(c.name, ch.Stats().FlumeMetrics(), "CHANNEL")
		}
	}
	for _, g := range groups {
		for _, s := range g.sinks {
			if m, ok := s.(counter.Monitored); ok {
				add(s.Name(), m.FlumeMetrics(), "SINK")
			}
		}
		// A lone sink's implicit processor shares the sink's name: only
		// real groups show theirs.
		if m, ok := g.proc.(counter.Monitored); ok && !(len(g.sinks) == 1 && g.sinks[0].Name() == g.name) {
			add(g.name, m.FlumeMetrics(), "SINK_PROCESSOR")
		}
	}
	for _, s := range sources {
		if m, ok := s.src.(counter.Monitored); ok {
			add(s.name, m.FlumeMetrics(), "SOURCE")
		}
	}
	return out
}

// Handler serves Flume's HTTP monitoring for the agent: GET /metrics (any
// case) is the JSON of Metrics, /healthz answers 200 while the process
// runs, /readyz 200 when every part is running (503 and the parts that are
// not, otherwise), / is a page of links, anything else is 404. Like
// Flume's Jetty server it refuses TRACE and OPTIONS with 403.
func (a *Agent) Handler() http.Handler { return a.HandlerWith(MonitorOptions{}) }

// MonitorOptions choose what the monitoring server's /metrics is.
type MonitorOptions struct {
	// Prometheus makes /metrics the Prometheus text format (Flume's
	// -Dflume.monitoring.type=prometheus) instead of Flume's JSON. Either
	// way /prometheus serves the Prometheus format and /metrics.json
	// Flume's JSON, so both can be scraped at once.
	Prometheus bool
}

// HandlerWith is Handler with o.
func (a *Agent) HandlerWith(o MonitorOptions) http.Handler {
	prom := a.PrometheusHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodTrace || r.Method == http.MethodOptions {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		path := strings.ToLower(r.URL.Path)
		if path == "/prometheus" || (path == "/metrics" && o.Prometheus) {
			prom.ServeHTTP(w, r)
			return
		}
		switch path {
		case "/metrics", "/metrics.json":
			w.Header().Set("Content-Type", "application/json;charset=utf-8")
			_ = json.NewEncoder(w).Encode(a.Metrics())
		case "/healthz":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintln(w, "ok")
		case "/readyz":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			ok, down := a.Ready()
			if !ok {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "not ready: %s\n", strings.Join(down, "; "))
				return
			}
			fmt.Fprintln(w, "ready")
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, "<html><head><title>flumed %s</title></head><body>\n"+
				"<h1>flumed agent %s</h1>\n<ul>\n"+
				"<li><a href=\"/metrics\">/metrics</a></li>\n"+
				"<li><a href=\"/metrics.json\">/metrics.json</a> (Flume's JSON)</li>\n"+
				"<li><a href=\"/prometheus\">/prometheus</a> (Prometheus)</li>\n"+
				"<li><a href=\"/healthz\">/healthz</a></li>\n"+
				"<li><a href=\"/readyz\">/readyz</a></li>\n"+
				"</ul></body></html>\n", a.name, a.name)
		default:
			http.NotFound(w, r)
		}
	})
}

// MetricsServer is the running monitoring server.
type MetricsServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// ServeMetrics listens on addr ("host:port"; Flume binds 0.0.0.0:41414)
// and serves a's Handler until Close.
func ServeMetrics(addr string, a *Agent, log *slog.Logger, opts ...MonitorOptions) (*MetricsServer, error) {
	var o MonitorOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("monitoring server: %w", err)
	}
	m := &MetricsServer{
		srv: &http.Server{
			Handler:           a.HandlerWith(o),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { m.done <- m.srv.Serve(ln) }()
	log.Info("monitoring server listening", "addr", ln.Addr().String())
	return m, nil
}

// Addr is the address the server listens on.
func (m *MetricsServer) Addr() string { return m.ln.Addr().String() }

// Close stops the server, waiting a moment for requests in progress.
func (m *MetricsServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	if serr := <-m.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
