package agent

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// SystemProperties are the Java system properties of Flume's command line
// (-Dkey=value) that flumed understands, so existing start scripts keep
// working: the root logger's level, and the HTTP monitoring server.
type SystemProperties struct {
	// All are every -D property, for ${sys:NAME} in the configuration.
	All map[string]string
	// LogLevel is the level of -Dflume.root.logger=LEVEL,appender ("" if unset).
	LogLevel string
	// MetricsAddr is where -Dflume.monitoring.type=http serves, from
	// flume.monitoring.port (default 41414) on all interfaces ("" if unset).
	MetricsAddr string
	// Prometheus is set by -Dflume.monitoring.type=prometheus (Flume's
	// PrometheusMetricsServer): the server on MetricsAddr then serves the
	// Prometheus format at /metrics.
	Prometheus bool
	// Warnings say which properties were ignored, and why.
	Warnings []string
}

// known are properties Flume users pass that flumed accepts without effect.
var ignoredProps = map[string]string{
	"org.apache.flume.log.printconfig": "flumed never logs configuration values",
	"org.apache.flume.log.rawdata":     "flumed never logs event payloads",
	"flume.called.from.service":        "a missing configuration file is always fatal",
	"propertiesImplementation":         "${env:NAME} substitution is always on",
}

// ParseSystemProperties reads -D definitions ("key=value" or "key").
// An unusable value of a known property is an error; unknown properties are
// ignored with a warning.
func ParseSystemProperties(defs []string) (SystemProperties, error) {
	sp := SystemProperties{All: map[string]string{}}
	for _, d := range defs {
		k, v, _ := strings.Cut(d, "=")
		k = strings.TrimSpace(k)
		if k == "" {
			return sp, fmt.Errorf("-D%s: empty property name", d)
		}
		sp.All[k] = v
	}
	if v, ok := sp.All["flume.root.logger"]; ok {
		level, appender, _ := strings.Cut(v, ",")
		if _, err := ParseLevel(level); err != nil {
			return sp, fmt.Errorf("-Dflume.root.logger=%s: %w", v, err)
		}
		sp.LogLevel = strings.TrimSpace(level)
		if a := strings.TrimSpace(appender); a != "" && !strings.EqualFold(a, "console") {
			sp.Warnings = append(sp.Warnings, fmt.Sprintf("-Dflume.root.logger: appender %s ignored; flumed logs to stderr", a))
		}
	}
	typ, hasType := sp.All["flume.monitoring.type"]
	if hasType {
		t := strings.ToLower(strings.TrimSpace(typ))
		switch {
		case t == "http", t == "org.apache.flume.instrumentation.http.httpmetricsserver",
			t == "prometheus", strings.HasSuffix(t, ".prometheusmetricsserver"):
			sp.Prometheus = strings.Contains(t, "prometheus")
			port := 41414
			if p, ok := sp.All["flume.monitoring.port"]; ok {
				n, err := strconv.Atoi(strings.TrimSpace(p))
				if err != nil || n < 0 || n > 65535 {
					return sp, fmt.Errorf("-Dflume.monitoring.port=%s: not a port number", p)
				}
				port = n
			}
			sp.MetricsAddr = net.JoinHostPort("0.0.0.0", strconv.Itoa(port))
		default:
			sp.Warnings = append(sp.Warnings, fmt.Sprintf("-Dflume.monitoring.type=%s: not supported by flumed (only http and prometheus); no monitoring server", typ))
		}
	}
	for k := range sp.All {
		switch {
		case k == "flume.root.logger", k == "flume.monitoring.type":
		case k == "flume.monitoring.port" && hasType:
		case strings.HasPrefix(k, "flume.monitoring."):
			sp.Warnings = append(sp.Warnings, fmt.Sprintf("-D%s ignored: flumed's monitoring takes only flume.monitoring.type (http or prometheus) and flume.monitoring.port", k))
		case ignoredProps[k] != "":
			sp.Warnings = append(sp.Warnings, fmt.Sprintf("-D%s ignored: %s", k, ignoredProps[k]))
		default:
			sp.Warnings = append(sp.Warnings, fmt.Sprintf("-D%s ignored: not a property flumed knows (still usable as ${sys:%s})", k, k))
		}
	}
	return sp, nil
}
