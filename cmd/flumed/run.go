package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flumed/flumed/cmd/flumed/internal/agent"
	"github.com/flumed/flumed/internal/config"
)

// exitConfig is EX_CONFIG from sysexits.h: the configuration is wrong.
const exitConfig = 78

// abortGrace is how long components get to stop after a second signal
// before the process exits anyway.
const abortGrace = 3 * time.Second

// repeatWindow is how soon after the first a signal counts as the same one.
const repeatWindow = 500 * time.Millisecond

// fileList is a repeatable flag whose values, from -c and -f alike, keep the
// order of the command line: later files override earlier ones.
type fileList struct {
	files *[]string
	flags *[]string // when set, the flag each file came with ("-c", "-f"), for messages
	flag  string
}

func (f fileList) String() string { return fmt.Sprint(*f.files) }
func (f fileList) Set(v string) error {
	*f.files = append(*f.files, v)
	if f.flags != nil {
		*f.flags = append(*f.flags, f.flag)
	}
	return nil
}
func (f fileList) Type() string { return "file" }

// configFlags are the flags run and config check share.
type configFlags struct {
	files []string
	flags []string // the flag of each of files
	name  string
	defs  []string
	conf  string
}

func (c *configFlags) register(fs *pflag.FlagSet) {
	fs.VarP(fileList{&c.files, &c.flags, "-c"}, "config", "c", "agent configuration file (repeatable; later files override earlier ones)")
	fs.VarP(fileList{&c.files, &c.flags, "-f"}, "conf-file", "f", "same as --config (Flume's flag)")
	fs.StringVarP(&c.name, "name", "n", "", "agent to run (default: the file's only agent)")
	fs.StringArrayVarP(&c.defs, "define", "D", nil, "Flume system property, e.g. -Dflume.monitoring.type=http")
	fs.StringVar(&c.conf, "conf", "", "Flume's configuration directory (accepted and ignored)")
}

// files returns the configuration files, dropping directories: Flume's
// scripts pass "-c conf" for the configuration directory, which flumed has
// no use for.
func (c *configFlags) configFiles(warn func(string)) []string {
	var out []string
	for i, f := range c.files {
		if st, err := os.Stat(f); err == nil && st.IsDir() {
			flag := "-c"
			if i < len(c.flags) {
				flag = c.flags[i]
			}
			warn(fmt.Sprintf("%s %s is a directory: taken as Flume's --conf directory and ignored", flag, f))
			continue
		}
		out = append(out, f)
	}
	return out
}

// load reads the configuration and builds the agent, printing every problem
// to w. A configuration error comes back as an exitError with code 78.
func (c *configFlags) load(w io.Writer, sys map[string]string, opts agent.Options, warn func(string)) (*agent.Agent, error) {
	files := c.configFiles(warn)
	if len(files) == 0 {
		return nil, &exitError{exitConfig, errors.New("no configuration file: give one with -c FILE (or -f FILE)")}
	}
	f, err := config.LoadWith(config.Options{System: sys}, files...)
	if err != nil {
		return nil, &exitError{exitConfig, err}
	}
	ca := f.Agent(c.name)
	a, err := agent.Build(ca, opts)
	// Warnings of a configuration that starts go to warn (run's structured
	// logger); those of a refused one are listed with its errors, in the
	// words of config check.
	var ce *config.Error
	for _, p := range ca.Problems.Warnings() {
		if err != nil {
			fmt.Fprintf(w, "warning: %s\n", p)
		} else {
			warn(p.String())
		}
	}
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			fmt.Fprintln(w, p)
		}
		return nil, &exitError{exitConfig, fmt.Errorf("%d configuration error(s); nothing started", len(ce.Problems))}
	}
	if err != nil {
		return nil, &exitError{exitConfig, err}
	}
	return a, nil
}

func newRunCmd() *cobra.Command {
	var (
		cf           configFlags
		logFormat    string
		logLevel     string
		logFile      agent.LogFile
		drainTimeout time.Duration
		metricsAddr  string
		noReload     bool
		reloadEvery  time.Duration
		failingAfter time.Duration
		metricsFmt   string
	)
	cmd := &cobra.Command{
		Use:     "run -c FILE [-n NAME]",
		Aliases: []string{"agent"},
		Short:   "Run a Flume agent from its .properties file",
		Long: `Run one agent of a Flume configuration until SIGTERM or SIGINT.

Start order: channels, sinks, sources. On the first signal the sources stop and
the sinks drain the channels (at most --drain-timeout); a second signal stops
at once. Configuration errors are all printed, and the exit code is 78.

SIGHUP reloads the configuration, and so does a change of its files (watched,
and polled every --reload-interval, unless --no-reload-conf). A configuration
with errors changes nothing; otherwise only the components whose keys changed
restart, and a channel whose keys did not change stays open.

Logs go to stderr; the logger sink's "Event: { ... }" lines go to stdout.
Flume's flags are accepted: -f/--conf-file, --name, --conf (ignored),
--no-reload-conf, -Dflume.root.logger=LEVEL,console,
-Dflume.monitoring.type=http -Dflume.monitoring.port=N.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// SIGHUP's default action ends the process: take it over before
			// anything else, so a reload asked for during start-up waits
			// for the start instead of losing what the channels hold.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			sp, err := agent.ParseSystemProperties(cf.defs)
			if err != nil {
				return &exitError{exitConfig, err}
			}
			level := logLevel
			if !cmd.Flags().Changed("log-level") && sp.LogLevel != "" {
				level = sp.LogLevel
			}
			log, err := agent.NewLogger(cmd.ErrOrStderr(), agent.LogOptions{Format: logFormat, Level: level, File: logFile})
			if err != nil {
				return &exitError{exitConfig, err}
			}
			warn := func(s string) { log.Warn(s) }
			for _, w := range sp.Warnings {
				warn(w)
			}
			// Taken before the files are read, so that the watcher sees any
			// change made from now on.
			loaded, _ := agent.ConfigDigest(cf.configFiles(func(string) {}))
			a, err := cf.load(cmd.ErrOrStderr(), sp.All, agent.Options{
				Log:          log,
				DrainTimeout: drainTimeout,
				FailingAfter: failingAfter,
				EventOut:     cmd.OutOrStdout(),
			}, warn)
			if err != nil {
				return err
			}
			rl := &reloader{cf: &cf, sys: sp.All, a: a, log: log, warn: warn, notify: agent.NewNotifier(log)}
			if !noReload {
				rl.watch = cf.configFiles(func(string) {})
				rl.every = reloadEvery
				rl.loaded = loaded
			}
			mon := agent.MonitorOptions{Prometheus: sp.Prometheus}
			switch metricsFmt {
			case "prometheus":
				mon.Prometheus = true
			case "json":
				if cmd.Flags().Changed("metrics-format") {
					mon.Prometheus = false
				}
			default:
				return &exitError{exitConfig, fmt.Errorf("--metrics-format %s: want json or prometheus", metricsFmt)}
			}
			return run(a, log, firstNonEmpty(metricsAddr, sp.MetricsAddr), mon, hup, rl)
		},
	}
	cf.register(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&logFile.Path, "log-file", "", "write the log to this file instead of stderr, rotated by size")
	fs.IntVar(&logFile.MaxSizeMB, "log-file-max-size", 100, "rotate the log file when it reaches this many MiB")
	fs.IntVar(&logFile.MaxBackups, "log-file-max-backups", 10, "rotated log files to keep (0 keeps all)")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error (overrides -Dflume.root.logger)")
	fs.DurationVar(&drainTimeout, "drain-timeout", 5*time.Second, "how long sinks may drain the channels on stop")
	fs.StringVar(&metricsAddr, "metrics-addr", "", "serve /metrics, /prometheus, /healthz and /readyz on host:port")
	fs.StringVar(&metricsFmt, "metrics-format", "json", "what /metrics serves: json (Flume's) or prometheus; /metrics.json and /prometheus serve both always")
	fs.DurationVar(&failingAfter, "ready-failing-after", agent.DefaultFailingAfter, "/readyz answers 503 once every sink of a group has failed for this long")
	fs.BoolVar(&noReload, "no-reload-conf", false, "do not reload when the configuration files change (SIGHUP still reloads)")
	fs.DurationVar(&reloadEvery, "reload-interval", agent.DefaultReloadInterval, "how often the configuration files are polled for changes (file system events are seen at once)")
	return cmd
}

// run starts the agent and the monitoring server, and stops them on
// SIGTERM/SIGINT; a second signal cuts the drain short. SIGHUP (hup) and
// changes of the configuration files reload (rl); reloads run one at a
// time, and a stop waits for the reload in progress, then drains.
func run(a *agent.Agent, log *slog.Logger, metricsAddr string, mon agent.MonitorOptions, hup <-chan os.Signal, rl *reloader) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	stopCtx, abort := context.WithCancel(context.Background())
	defer abort()
	stopped := make(chan struct{}) // closed once the agent has stopped
	defer close(stopped)
	go func() {
		select {
		case s := <-sigs:
			log.Info("stopping", "signal", s.String())
			stop()
		case <-runCtx.Done():
			return
		}
		first := time.Now()
		for {
			select {
			case s := <-sigs:
				// A signal sent to the whole process group (timeout(1),
				// some service managers) arrives twice at once: that is
				// one request, not an operator insisting.
				if time.Since(first) < repeatWindow {
					log.Debug("signal repeated at once; still draining", "signal", s.String())
					continue
				}
				log.Warn("second signal: stopping at once; undelivered events stay in the channels", "signal", s.String())
				abort()
			case <-stopCtx.Done():
				return
			}
			break
		}
		// A component stuck in I/O (a sink writing to a blocked pipe) would
		// keep the process alive; what it holds is still in its channel.
		select {
		case <-time.After(abortGrace):
			log.Error("components did not stop in time; exiting", "grace", abortGrace)
			os.Exit(1)
		case <-stopped:
		}
	}()

	if err := a.Start(); err != nil {
		return err
	}
	var srv *agent.MetricsServer
	if metricsAddr != "" {
		var err error
		if srv, err = agent.ServeMetrics(metricsAddr, a, log, mon); err != nil {
			log.Error("monitoring server not started", "err", err)
		}
	}
	// systemd: ready once started; watchdog pings until the process ends,
	// the drain included.
	rl.notify.Ready()
	wdCtx, wdStop := context.WithCancel(context.Background())
	defer wdStop()
	go rl.notify.Watchdog(wdCtx)
	go rl.loop(runCtx, hup)
	<-runCtx.Done()
	rl.notify.Stopping()
	if srv != nil {
		defer srv.Close()
	}
	if err := a.Stop(stopCtx); err != nil {
		log.Warn("stopped without draining every channel", "err", err)
	}
	return nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect agent configurations",
	}
	var cf configFlags
	check := &cobra.Command{
		Use:   "check -c FILE [-n NAME]",
		Short: "Validate an agent configuration without starting it (exit 0, or 78 with every problem listed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sp, err := agent.ParseSystemProperties(cf.defs)
			if err != nil {
				return &exitError{exitConfig, err}
			}
			w := cmd.ErrOrStderr()
			warn := func(s string) { fmt.Fprintf(w, "warning: %s\n", s) }
			for _, s := range sp.Warnings {
				warn(s)
			}
			a, err := cf.load(w, sp.All, agent.Options{}, warn)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "agent %s: configuration OK\n", a.Name())
			return nil
		},
	}
	cf.register(check.Flags())
	cmd.AddCommand(check)
	return cmd
}
