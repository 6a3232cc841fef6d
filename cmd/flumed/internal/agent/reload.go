package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
)

// Reloads replace the running configuration by a new one without stopping
// what did not change. The rules, in the order a reload applies them:
//
//   - The whole new configuration is built first (Build: every problem at
//     once). If it has any error nothing changes: the running agent keeps
//     its configuration and the caller logs every problem.
//   - Every component is compared by fingerprint (its type and every key
//     and value, wherever written). A channel whose keys did not change is
//     kept open as it is: a file channel is never closed and reopened, so
//     its sources and sinks see no gap.
//   - A source restarts when its keys changed or one of its channels is
//     replaced; a sink group when its processor's keys, one of its sinks'
//     keys or one of its channels changed. Sources stop first, as at Stop.
//   - A sink group on a channel that stays stops like a runner does: the
//     batch in flight finishes (commits, or rolls back to the head of the
//     channel), the events left wait in the channel for the new group.
//     Nothing is lost and only that batch can be delivered twice.
//   - A channel that is removed or changed is drained first by its old sink
//     groups (at most DrainTimeout, as at Stop) once its sources stopped,
//     then closed. A file channel keeps what is left on disk and the log
//     says so; a memory channel's leftovers are logged as lost, as at Stop.
//   - New and changed parts then start in Flume's order: channels, sink
//     groups, sources.
//
// Reload and Stop are serialised: a stop during a reload waits for it and
// then drains as usual; a second reload waits for the first.

// ReloadReport says what a reload did.
type ReloadReport struct {
	Kept, Started, Stopped []string // unit ids: "channel c1", "sink group k1", "source r1"
	// Swap is how long the reload took from the end of the build (the new
	// configuration checked) to the last new part started.
	Swap time.Duration
	// PutsPaused is how long some source was stopped: from the first source
	// stopped to the last one started (zero when no source changed).
	PutsPaused time.Duration
}

// Changed reports whether the reload started or stopped anything.
func (r ReloadReport) Changed() bool { return len(r.Started)+len(r.Stopped) > 0 }

// fingerprints are the fingerprints of every unit an agent built from ca
// would have, keyed by unit id. A unit's fingerprint covers the keys of
// everything it is made of (a sink group's processor and sinks), not its
// channels': whether a channel was replaced is checked separately.
func fingerprints(ca *config.Agent) map[string]string {
	fps := map[string]string{}
	sinkFP := map[string]string{}
	for _, c := range ca.Channels {
		fps["channel "+c.Name] = c.Context.Fingerprint()
	}
	for _, c := range ca.Sinks {
		sinkFP[c.Name] = c.Context.Fingerprint()
	}
	grouped := map[string]bool{}
	for _, g := range ca.SinkGroups {
		var b strings.Builder
		b.WriteString("group\x00" + g.ProcessorType + "\x00" + g.Processor.Fingerprint())
		for _, n := range g.Sinks {
			grouped[n] = true
			b.WriteString("\x00" + n + "\x00" + sinkFP[n])
		}
		fps["sink group "+g.Name] = b.String()
	}
	for _, c := range ca.Sinks {
		if !grouped[c.Name] {
			fps["sink group "+c.Name] = "sink\x00" + sinkFP[c.Name]
		}
	}
	for _, c := range ca.Sources {
		fps["source "+c.Name] = c.Context.Fingerprint()
	}
	return fps
}

// Reload replaces the running configuration by ca, changing only what
// changed (see above). A configuration with errors changes nothing and comes
// back as the *config.Error of Build. A reload of an agent not started, or
// already stopping, fails.
func (a *Agent) Reload(ca *config.Agent) (ReloadReport, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	var rep ReloadReport
	a.mu.Lock()
	running := a.started && !a.stopped
	a.mu.Unlock()
	if !running {
		return rep, errors.New("reload: the agent is not running")
	}
	nb, err := Build(ca, a.opts)
	if err != nil {
		return rep, err
	}
	swapStart := time.Now()
	oldFP, newFP := fingerprints(a.conf), fingerprints(ca)

	// Channels: keep the unchanged ones, replace the others.
	oldCh := map[string]*chanUnit{}
	for _, c := range a.channels {
		oldCh[c.name] = c
	}
	replaced := map[*chanUnit]bool{} // old channels going away
	keptCh := map[*chanUnit]*chanUnit{}
	var channels, startCh []*chanUnit
	for _, c := range nb.channels {
		if old := oldCh[c.name]; old != nil && oldFP[c.id()] == newFP[c.id()] {
			keptCh[c] = old
			// The new build's sources put through c's proxy: point it at the
			// running channel's, which is set once that channel is open.
			c.proxy.set(old.proxy)
			channels = append(channels, old)
			rep.Kept = append(rep.Kept, old.id())
			continue
		}
		channels = append(channels, c)
		startCh = append(startCh, c)
	}
	for _, old := range a.channels {
		if !slices.Contains(channels, old) {
			replaced[old] = true
		}
	}
	remap := func(cs []*chanUnit) (changed bool) {
		for i, c := range cs {
			if old, ok := keptCh[c]; ok {
				cs[i] = old
			} else {
				changed = true
			}
		}
		return changed
	}
	onReplaced := func(cs []*chanUnit) bool {
		return slices.ContainsFunc(cs, func(c *chanUnit) bool { return replaced[c] })
	}

	// Sink groups and sources: keep those whose keys and channels stay.
	oldGroups := map[string]*groupUnit{}
	for _, g := range a.groups {
		oldGroups[g.name] = g
	}
	var groups, startGroups []*groupUnit
	keptGroups := map[*groupUnit]bool{}
	for _, g := range nb.groups {
		newChan := remap(g.chans)
		if old := oldGroups[g.name]; old != nil && !newChan && !onReplaced(old.chans) && oldFP[g.id()] == newFP[g.id()] {
			groups = append(groups, old)
			keptGroups[old] = true
			rep.Kept = append(rep.Kept, old.id())
			continue
		}
		groups = append(groups, g)
		startGroups = append(startGroups, g)
	}
	oldSources := map[string]*sourceUnit{}
	for _, s := range a.sources {
		oldSources[s.name] = s
	}
	var sources, startSources []*sourceUnit
	keptSources := map[*sourceUnit]bool{}
	for _, s := range nb.sources {
		newChan := remap(s.chans)
		if old := oldSources[s.name]; old != nil && !newChan && !onReplaced(old.chans) && oldFP[s.id()] == newFP[s.id()] {
			sources = append(sources, old)
			keptSources[old] = true
			rep.Kept = append(rep.Kept, old.id())
			continue
		}
		sources = append(sources, s)
		startSources = append(startSources, s)
	}

	// Stop what goes, sources first.
	var firstSourceStop time.Time
	for _, s := range slices.Clone(a.stages[stageSources].units) {
		if !keptSources[s.u.(*sourceUnit)] {
			if firstSourceStop.IsZero() {
				firstSourceStop = time.Now()
			}
			a.stopUnit(stageSources, s)
			rep.Stopped = append(rep.Stopped, s.u.id())
		}
	}
	a.drainReplaced(replaced, keptGroups)
	for _, s := range slices.Clone(a.stages[stageSinks].units) {
		if !keptGroups[s.u.(*groupUnit)] {
			a.stopUnit(stageSinks, s)
			rep.Stopped = append(rep.Stopped, s.u.id())
		}
	}
	for _, s := range slices.Clone(a.stages[stageChannels].units) {
		if c := s.u.(*chanUnit); replaced[c] {
			a.stopUnit(stageChannels, s)
			a.reportClosed(c, a.conf.Channel(c.name))
			rep.Stopped = append(rep.Stopped, c.id())
		}
	}

	// Start what is new, in Flume's order.
	a.mu.Lock()
	a.channels, a.groups, a.sources = channels, groups, sources
	a.conf = ca
	a.warnings = nb.warnings
	a.mu.Unlock()
	for _, c := range startCh {
		a.startUnit(stageChannels, c)
		rep.Started = append(rep.Started, c.id())
	}
	for _, g := range startGroups {
		a.startUnit(stageSinks, g)
		rep.Started = append(rep.Started, g.id())
	}
	for _, s := range startSources {
		a.startUnit(stageSources, s)
		rep.Started = append(rep.Started, s.id())
	}
	rep.Swap = time.Since(swapStart)
	if !firstSourceStop.IsZero() {
		rep.PutsPaused = time.Since(firstSourceStop)
	}
	return rep, nil
}

// drainReplaced lets the sink groups reading a channel that goes away
// deliver what it holds, once its sources stopped: at most DrainTimeout, as
// at Stop. Groups whose channels all stay are not drained: their channel
// keeps the events for the group that replaces them.
func (a *Agent) drainReplaced(replaced map[*chanUnit]bool, keptGroups map[*groupUnit]bool) {
	if len(replaced) == 0 {
		return
	}
	for c := range replaced {
		if q, ok := c.channel().(quiescer); ok {
			q.Quiesce() // no source puts into it any more
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.opts.DrainTimeout)
	defer cancel()
	done := make(chan struct{})
	n := 0
	for _, s := range a.stages[stageSinks].units {
		g := s.u.(*groupUnit)
		if keptGroups[g] || !s.up.Load() || !slices.ContainsFunc(g.chans, func(c *chanUnit) bool { return replaced[c] }) {
			continue
		}
		s.stopping.Store(true)
		n++
		go func() {
			defer func() { done <- struct{}{} }()
			if err := g.drain(ctx); err != nil {
				a.log.Warn("reload: channel not drained before its sink group stopped", "component", g.id(), "err", err)
			}
		}()
	}
	for range n {
		<-done
	}
}

// reportClosed says what a channel removed by a reload left behind.
func (a *Agent) reportClosed(c *chanUnit, conf *config.Component) {
	ch := c.channel()
	if ch == nil {
		return // never opened
	}
	left := ch.Stats().Size
	if conf != nil && (conf.Type == "file" || strings.HasSuffix(conf.Type, ".FileChannel")) {
		attrs := []any{"component", c.name, "events_left", left}
		if f, ok := ch.(interface{ Options() channel.FileOptions }); ok {
			o := f.Options()
			attrs = append(attrs, "checkpointDir", o.CheckpointDir, "dataDir", o.DataDir)
		}
		a.log.Warn("reload: file channel removed; its data stays on disk", attrs...)
		return
	}
	if left > 0 {
		a.log.Error("reload: channel closed with events its sinks could not drain", "component", c.name, "events_lost", left)
		return
	}
	a.log.Info("reload: channel closed", "component", c.name)
}

// stopUnit stops one supervised unit of a stage and removes it: its
// supervisor ends, then the unit stops gracefully (a sink group's batch in
// flight finishes; a channel checkpoints and closes).
func (a *Agent) stopUnit(stage int, s *supervised) {
	st := a.stages[stage]
	s.stopping.Store(true)
	s.cancel()
	if s.sup != nil {
		<-s.sup
	}
	if s.up.Swap(false) {
		a.stopWaking(s.u)
	}
	a.mu.Lock()
	st.units = slices.DeleteFunc(st.units, func(x *supervised) bool { return x == s })
	a.mu.Unlock()
	a.log.Info("reload: stopped", "component", s.u.id())
}

// wakeEvery is how often stopWaking wakes a stopping sink's channels.
const wakeEvery = 2 * time.Millisecond

// waker is a channel whose takes wait for puts and can be woken (the memory
// channel's keep-alive).
type waker interface{ WakeTakers() }

// stopWaking stops u. A sink group's runner finishes its Process in flight
// first, and on an idle memory channel that is a take waiting out its
// keep-alive (3 s by default) for puts: its channels' waiting takes are
// woken until the stop returns, so the swap does not wait for it. A take
// woken returns nothing; no event is involved.
func (a *Agent) stopWaking(u unit) {
	g, ok := u.(*groupUnit)
	if !ok {
		u.stop(a)
		return
	}
	var ws []waker
	for _, c := range g.chans {
		if w, ok := c.channel().(waker); ok {
			ws = append(ws, w)
		}
	}
	if len(ws) == 0 {
		u.stop(a)
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		u.stop(a)
	}()
	tick := time.NewTicker(wakeEvery)
	defer tick.Stop()
	for {
		for _, w := range ws {
			w.WakeTakers()
		}
		select {
		case <-done:
			return
		case <-tick.C:
		}
	}
}

// startUnit adds u to its stage and starts it as Start does.
func (a *Agent) startUnit(stage int, u unit) {
	st := a.stages[stage]
	s := newSupervised(st, u)
	a.mu.Lock()
	st.units = append(st.units, s)
	a.mu.Unlock()
	a.launch(st, s)
	a.log.Info("reload: started", "component", u.id())
}

// String summarises the report for the log.
func (r ReloadReport) String() string {
	if !r.Changed() {
		return "nothing changed"
	}
	return fmt.Sprintf("stopped %s; started %s; kept %d", list(r.Stopped), list(r.Started), len(r.Kept))
}

func list(ss []string) string {
	if len(ss) == 0 {
		return "nothing"
	}
	return strings.Join(ss, ", ")
}
