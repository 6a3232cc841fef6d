package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/flumed/flumed/cmd/flumed/internal/agent"
	"github.com/flumed/flumed/internal/config"
)

// reloader reads the configuration again and reloads the running agent
// with it, on SIGHUP and when the watched files change.
type reloader struct {
	cf   *configFlags
	sys  map[string]string
	a    *agent.Agent
	log  *slog.Logger
	warn func(string)
	// notify tells systemd RELOADING=1, then READY=1 when the reload is
	// over, applied or rejected (nil outside systemd).
	notify *agent.Notifier

	watch  []string // the files to watch; none with --no-reload-conf
	every  time.Duration
	loaded string // ConfigDigest of the files before they were read
}

// loop runs the reloads asked for until ctx ends, one at a time: a request
// made during a reload (a second SIGHUP) waits for it, and requests made
// meanwhile count as one, since each reload reads the files as they are
// then.
func (r *reloader) loop(ctx context.Context, hup <-chan os.Signal) {
	asked := make(chan string, 1)
	ask := func(why string) {
		select {
		case asked <- why:
		default: // one is pending already: it will read the files as they are then
		}
	}
	if len(r.watch) > 0 {
		go agent.WatchConfig(ctx, agent.WatchOptions{
			Files: r.watch, Interval: r.every, Log: r.log, Loaded: r.loaded,
			Changed: func() { ask("configuration file changed") },
		})
	}
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-hup:
			ask("signal " + s.String())
		case why := <-asked:
			if ctx.Err() != nil {
				return // stopping: the stop drains what runs now
			}
			r.reload(why)
		}
	}
}

// reload reads the files and reloads the agent; a configuration with
// errors changes nothing, and every problem is logged.
func (r *reloader) reload(why string) {
	r.notify.Reloading()
	defer r.notify.Ready()
	r.log.Info("reloading configuration", "trigger", why)
	rejected := func(n int) {
		r.log.Error("reload rejected; the running configuration stays", "errors", n)
	}
	files := r.cf.configFiles(r.warn)
	f, err := config.LoadWith(config.Options{System: r.sys}, files...)
	if err != nil {
		r.log.Error("reload: read configuration", "err", err)
		rejected(1)
		return
	}
	ca := f.Agent(r.cf.name)
	rep, err := r.a.Reload(ca)
	for _, p := range ca.Problems.Warnings() {
		r.warn(p.String())
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			r.log.Error("reload: configuration error", "problem", p.String())
		}
		rejected(len(ce.Problems))
		return
	}
	if err != nil {
		r.log.Error("reload failed", "err", err)
		return
	}
	r.log.Info("configuration reloaded", "changes", rep.String(), "swap", rep.Swap.String(), "puts_paused", rep.PutsPaused.String())
}
