package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// flumed top reads a running agent's Flume JSON monitoring (flumed's or
// Flume's own) and shows every component: rates computed between two
// reads, channel fill, sink and failover state. On a terminal it redraws
// in place until Ctrl-C; otherwise it prints plain snapshots, one per
// interval (--once: one, then exit).

func newTopCmd() *cobra.Command {
	var (
		url      string
		interval time.Duration
		once     bool
	)
	cmd := &cobra.Command{
		Use:   "top [--url http://HOST:PORT]",
		Short: "Live view of a running agent's components, from its monitoring endpoint",
		Long: `Show every component of a running agent — events per second, channel fill,
sink counters, failover state — read from its monitoring server (flumed's
--metrics-addr, or Flume's -Dflume.monitoring.type=http). On a terminal the
view redraws every --interval until Ctrl-C; when stdout is not a terminal it
prints plain snapshots instead (--once: one, then exit).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			tty := false
			if f, ok := out.(*os.File); ok {
				tty = term.IsTerminal(int(f.Fd()))
			}
			return runTop(ctx, out, topOptions{URL: url, Interval: interval, Once: once, TTY: tty})
		},
	}
	cmd.Flags().StringVar(&url, "url", "http://127.0.0.1:41414", "the agent's monitoring server (host:port, or a URL)")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often to read the metrics")
	cmd.Flags().BoolVar(&once, "once", false, "print one snapshot (rates over one interval) and exit")
	return cmd
}

type topOptions struct {
	URL      string
	Interval time.Duration
	Once     bool
	TTY      bool
}

// snapshot is one read of Flume's JSON: component ("CHANNEL.c1") →
// attribute → value, and when it was read.
type snapshot struct {
	at time.Time
	m  map[string]map[string]string
}

func runTop(ctx context.Context, out io.Writer, o topOptions) error {
	base := strings.TrimSuffix(o.URL, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	client := &http.Client{Timeout: 5 * time.Second}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.TTY {
		fmt.Fprint(out, "\x1b[?1049h\x1b[?25l") // alternate screen, no cursor
		defer fmt.Fprint(out, "\x1b[?25h\x1b[?1049l")
	}
	var prev *snapshot
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	for {
		cur, err := readMetrics(ctx, client, base)
		var view string
		switch {
		case err != nil:
			view = fmt.Sprintf("flumed top: %s: %v\n", base, err)
			cur = nil
		case prev == nil && o.Once:
			// --once needs two reads for rates.
		default:
			view = renderTop(base, prev, cur)
		}
		if view != "" {
			if o.TTY {
				fmt.Fprint(out, "\x1b[H\x1b[2J")
			}
			fmt.Fprint(out, view)
			if !o.TTY {
				fmt.Fprintln(out)
			}
			if o.Once {
				return err
			}
		}
		prev = cur
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// readMetrics reads Flume's JSON: /metrics.json (flumed, whatever /metrics
// serves), else /metrics (Flume).
func readMetrics(ctx context.Context, c *http.Client, base string) (*snapshot, error) {
	var lastErr error
	for _, path := range []string{"/metrics.json", "/metrics"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return nil, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			lastErr = fmt.Errorf("GET %s: %s", path, resp.Status)
			continue
		}
		s := &snapshot{at: time.Now()}
		if err := json.Unmarshal(body, &s.m); err != nil {
			lastErr = fmt.Errorf("GET %s: not Flume's JSON: %w", path, err)
			continue
		}
		return s, nil
	}
	return nil, lastErr
}

// renderTop draws one view; rates need prev (a dash until then).
func renderTop(base string, prev, cur *snapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "flumed top — %s — %s\n", base, cur.at.Format("15:04:05"))
	kinds := map[string][]string{}
	for k := range cur.m {
		kind, name, ok := strings.Cut(k, ".")
		if ok {
			kinds[kind] = append(kinds[kind], name)
		}
	}
	for _, names := range kinds {
		sort.Strings(names)
	}
	rate := func(key, attr string) string {
		if prev == nil {
			return "-"
		}
		old, ok := prev.m[key][attr]
		if !ok {
			return "-"
		}
		d := num(cur.m[key][attr]) - num(old)
		secs := cur.at.Sub(prev.at).Seconds()
		if secs <= 0 || d < 0 {
			return "-"
		}
		return strconv.FormatFloat(d/secs, 'f', 0, 64)
	}
	section := func(title, header string, names []string, row func(name string) string) {
		if len(names) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s\n", title)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, header)
		for _, n := range names {
			fmt.Fprintln(tw, row(n))
		}
		tw.Flush()
	}
	section("SOURCES", "name\taccepted\tevents/s\tconnections\tfailures\t", kinds["SOURCE"], func(n string) string {
		m := cur.m["SOURCE."+n]
		fails := num(m["ChannelWriteFail"]) + num(m["EventReadFail"]) + num(m["GenericProcessingFail"])
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%.0f\t", n, m["EventAcceptedCount"], rate("SOURCE."+n, "EventAcceptedCount"), m["OpenConnectionCount"], fails)
	})
	section("CHANNELS", "name\tsize\tcapacity\tfill\toldest\tput/s\ttake/s\t", kinds["CHANNEL"], func(n string) string {
		m := cur.m["CHANNEL."+n]
		return fmt.Sprintf("%s\t%s\t%s\t%s%%\t%s\t%s\t%s\t", n, m["ChannelSize"], m["ChannelCapacity"], m["ChannelFillPercentage"],
			oldest(m["OldestEventAgeMillis"]), rate("CHANNEL."+n, "EventPutSuccessCount"), rate("CHANNEL."+n, "EventTakeSuccessCount"))
	})
	section("SINKS", "name\tdrained\tevents/s\tconnection failures\twrite failures\t", kinds["SINK"], func(n string) string {
		m := cur.m["SINK."+n]
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t", n, m["EventDrainSuccessCount"], rate("SINK."+n, "EventDrainSuccessCount"),
			orDash(m["ConnectionFailedCount"]), orDash(m["EventWriteFail"]))
	})
	section("SINK GROUPS", "name\tactive\tpenalised\t", kinds["SINK_PROCESSOR"], func(n string) string {
		m := cur.m["SINK_PROCESSOR."+n]
		return fmt.Sprintf("%s\t%s\t%s\t", n, orDash(m["ActiveSink"]), orDash(m["DeadSinks"]))
	})
	return b.String()
}

func num(s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return v
}

// oldest shows a channel's OldestEventAgeMillis as a duration an operator
// reads at a glance ("0s" when empty, "4m12s", "3h5m"); "-" where the
// channel reports none (the Kafka channel).
func oldest(millis string) string {
	ms, err := strconv.ParseInt(millis, 10, 64)
	if err != nil || ms < 0 {
		return "-"
	}
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Minute:
		return d.Truncate(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Truncate(time.Second).String()
	default:
		return strings.TrimSuffix(d.Truncate(time.Minute).String(), "0s")
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
