// Package interceptor holds Flume's interceptors (FLUME.md §2.15), their
// registry, and what the channel processor uses to build and run a source's
// chain of them. An interceptor sees copies of a source's events between the
// source and the channel selector: it must never modify an event's Body in
// place, and never block on I/O while events wait.
package interceptor

import (
	"log/slog"
	"maps"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
)

// Interceptor inspects and rewrites events between a source and the channel
// selector (Flume's Interceptor). The channel processor runs a source's
// interceptors in the order of its "interceptors" list.
//
// Intercept may change the events of the slice in place: the channel
// processor hands it copies whose Headers maps it owns (Headers may be nil;
// an interceptor that adds a header allocates the map). It must never modify a Body in place, only
// replace it. It returns the events to keep, which may share the input's
// backing array; an empty result drops them all. Intercept is called from many
// goroutines at once (netcat and avro connections) and must be safe for that.
type Interceptor interface {
	Intercept(events []channel.Event) []channel.Event
}

// Builder builds one interceptor from its keys (the context of
// "interceptors.<name>.", checked against its type's spec), recording
// problems in c.
// A nil Interceptor with a nil error is not allowed; on a configuration
// problem it returns an error and c says why.
type Builder func(c *config.Context, log *slog.Logger) (Interceptor, error)

// Chain builds the interceptors names lists (the source's "interceptors"
// key), each from its "interceptors.<name>.*" keys checked against its
// type's spec. Problems go into c, the source's context; ok is false when
// any interceptor could not be built.
func Chain(c *config.Context, names []string, log *slog.Logger) (chain []Interceptor, ok bool) {
	ok = true
	listed := make(map[string]bool, len(names))
	for _, name := range names {
		if listed[name] {
			c.Errorf("interceptors", "interceptor %s is listed twice", name)
			ok = false
			continue
		}
		listed[name] = true
		prefix := "interceptors." + name + "."
		if len(c.Keys(prefix)) == 0 {
			c.Errorf("interceptors", "interceptor %s has no configuration (set %s)", name, c.FullKey(prefix+"type"))
			ok = false
			continue
		}
		ic := c.Sub(prefix)
		typ, set := ic.Take("type")
		if !set {
			ic.Errorf("type", "required key is missing")
			ok = false
			continue
		}
		e, found := registry.Resolve(ic, typ)
		if !found {
			ok = false
			continue
		}
		in, err := e.New(ic, log.With(slog.String("interceptor", name)))
		if err != nil || in == nil {
			ok = false
			continue
		}
		chain = append(chain, in)
	}
	// Flume silently ignores interceptors that are configured but not listed;
	// that is almost always a typo in the list, so say so.
	for _, name := range c.Keys("interceptors.") {
		if !listed[name] {
			ic := c.Sub("interceptors." + name + ".")
			ic.Errorf(firstKey(c, "interceptors."+name+"."), "interceptor %s is configured but not listed in %s",
				name, c.FullKey("interceptors"))
			ok = false
		}
	}
	return chain, ok
}

// firstKey returns one key under prefix, relative to the prefix, so an error
// about the whole group can point at a line of the file.
func firstKey(c *config.Context, prefix string) string {
	keys := c.Keys(prefix)
	if len(keys) == 0 {
		return ""
	}
	k := keys[0]
	for {
		deeper := c.Keys(prefix + k + ".")
		if len(deeper) == 0 {
			return k
		}
		k += "." + deeper[0]
	}
}

// Apply runs the chain over copies of events, so a source that retries the
// same slice after a failure never sees its events rewritten twice.
func Apply(chain []Interceptor, events []channel.Event) []channel.Event {
	out := make([]channel.Event, len(events))
	for i, ev := range events {
		out[i] = channel.Event{Headers: maps.Clone(ev.Headers), Body: ev.Body}
	}
	for _, in := range chain {
		if len(out) == 0 {
			break
		}
		out = in.Intercept(out)
	}
	return out
}

// setHeader sets ev's header k to v, unless preserve is set and the header is
// already present (Flume's preserveExisting).
func setHeader(ev *channel.Event, k, v string, preserve bool) {
	if preserve {
		if _, ok := ev.Headers[k]; ok {
			return
		}
	}
	if ev.Headers == nil {
		ev.Headers = make(map[string]string, 1)
	}
	ev.Headers[k] = v
}
