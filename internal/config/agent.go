package config

import (
	"fmt"
	"sort"
	"strings"
)

// Kind is the kind of a component, named as in Flume's keys.
type Kind string

// The component kinds, as the list keys spell them.
const (
	Sources    Kind = "sources"
	Channels   Kind = "channels"
	Sinks      Kind = "sinks"
	SinkGroups Kind = "sinkgroups"
)

// singular is the kind's name in messages ("source r1").
func (k Kind) singular() string { return strings.TrimSuffix(string(k), "s") }

// Component is one source, channel or sink of an agent.
type Component struct {
	Kind Kind
	Name string
	// Type is the value of the "type" key as written ("" when missing).
	Type string
	// Channels are a source's channels, or a sink's single channel.
	Channels []string
	// Context holds the component's keys relative to "<agent>.<kind>.<name>.".
	// The keys "type" and "channels" (sources) or "channel" (sinks) have been
	// read; its type's spec checks the rest (Registry.Resolve).
	Context *Context
	// Pos is where the component is listed ("a1.sinks = k1 k2").
	Pos Pos
}

// SinkGroup is one entry of "<agent>.sinkgroups".
type SinkGroup struct {
	Name  string
	Sinks []string
	// ProcessorType is processor.type, "default" when not set, "" when
	// written with an empty value (an error already reported).
	ProcessorType string
	// Processor holds the processor.* keys with "processor." removed; its
	// "type" has been read.
	Processor *Context
	Pos       Pos
}

// Agent is one agent of a File: its components in the order of their lists,
// and every problem found so far. The problems include the File's.
type Agent struct {
	Name       string
	Sources    []*Component
	Channels   []*Component
	Sinks      []*Component
	SinkGroups []*SinkGroup
	Problems   *Problems
}

// Err returns every error found, or nil.
func (a *Agent) Err() error { return a.Problems.Err() }

// Channel returns the channel called name, or nil.
func (a *Agent) Channel(name string) *Component { return find(a.Channels, name) }

// Sink returns the sink called name, or nil.
func (a *Agent) Sink(name string) *Component { return find(a.Sinks, name) }

func find(cs []*Component, name string) *Component {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Agents returns the names of the agents defined in the file, sorted: the
// first segments of keys that have a source, channel, sink or sink group part.
func (f *File) Agents() []string {
	set := map[string]bool{}
	for k := range f.Props {
		agent, rest, ok := strings.Cut(k, ".")
		if !ok || agent == "" || f.referenced[k] {
			continue
		}
		part, _, _ := strings.Cut(rest, ".")
		switch Kind(part) {
		case Sources, Channels, Sinks, SinkGroups:
			set[agent] = true
		}
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Agent builds the agent called name, or the file's only agent when name is
// empty, checking everything that can be checked without knowing the
// component types: the key grammar, the lists, types present, channel
// references, sink groups. Component types, their keys and batch sizes are
// checked by whoever builds the components from the returned tree, into the
// same Problems. Call it once per File and agent.
func (f *File) Agent(name string) *Agent {
	a := &Agent{Name: name, Problems: &Problems{}}
	for k, p := range f.Props {
		if IsSecret(k) {
			a.Problems.hideValues(p.Value)
		}
	}
	for _, p := range f.Problems.list {
		a.Problems.add(p)
	}
	f.checkStrayKeys(a.Problems)
	agents := f.Agents()
	where := Pos{File: strings.Join(f.names, ", ")}
	switch {
	case name == "" && len(agents) == 1:
		a.Name = agents[0]
	case name == "" && len(agents) == 0:
		a.Problems.add(Problem{Pos: where, Msg: "no agent defined (no <agent>.sources, .channels or .sinks keys)"})
		return a
	case name == "":
		a.Problems.add(Problem{Pos: where, Msg: fmt.Sprintf("the configuration defines agents %s; choose one with -n", strings.Join(agents, ", "))})
		return a
	case !contains(agents, name):
		msg := fmt.Sprintf("no agent %s in the configuration", name)
		if len(agents) > 0 {
			msg += fmt.Sprintf(" (it defines %s", strings.Join(agents, ", "))
			if best := closeName(name, agents); best != "" {
				msg += fmt.Sprintf("; did you mean %s?", best)
			}
			msg += ")"
		}
		a.Problems.add(Problem{Pos: where, Msg: msg})
		return a
	}
	newTree(f, a).build()
	return a
}

// checkStrayKeys reports keys that belong to no agent and that no ${key}
// uses: Flume logs and drops them; here they are errors.
func (f *File) checkStrayKeys(ps *Problems) {
	agents := f.Agents()
	for _, k := range f.Keys() {
		if f.referenced[k] {
			continue
		}
		p := f.Props[k]
		agent, _, ok := strings.Cut(k, ".")
		switch {
		case !ok || agent == "":
			ps.add(Problem{Pos: p.Pos, Key: k, Msg: "not of the form <agent>.<property> (and no ${" + k + "} uses it)"})
		case !contains(agents, agent):
			msg := fmt.Sprintf("%s is not an agent of this configuration (it has no %s.sources, .channels or .sinks)", agent, agent)
			if best := closeName(agent, agents); best != "" {
				msg += fmt.Sprintf("; did you mean %s?", best)
			}
			ps.add(Problem{Pos: p.Pos, Key: k, Msg: msg})
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// closeName is the candidate at most one edit (or a third of the name) away
// from name: stricter than key suggestions, since names are short and a far
// suggestion ("b" -> "a1") misleads.
func closeName(name string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := levenshtein(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD > max(1, len(name)/3) {
		return ""
	}
	return best
}
