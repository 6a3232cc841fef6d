package config

import (
	"fmt"
	"sort"
	"strings"
)

// tree builds one Agent from the merged keys and checks its structure:
// Flume's rules of FLUME.md §1.1 and §1.3, but every broken part is an error
// where Flume would drop it with a log line.
type tree struct {
	f      *File
	a      *Agent
	prefix string // "a1."
	lists  map[Kind]Prop
	// props of each component: kind -> name -> full key -> property. Keys with
	// empty values are reported and left out, as Flume drops them.
	props map[Kind]map[string]map[string]Prop
	// empty holds the full keys written with an empty value (reported as
	// such and left out), so that a key the tree or a component requires is
	// reported once ("empty value"), not again as missing.
	empty map[string]Pos
	// emptyList marks the agent's lists written with an empty value, whose
	// components are then not reported again as unlisted.
	emptyList map[Kind]bool
}

var kinds = []Kind{Sources, Channels, Sinks, SinkGroups}

// groupSpec is a sink group's own keys: none but the structural sinks and
// processor.* the tree reads.
var groupSpec = &Spec{Type: "sink group"}

func newTree(f *File, a *Agent) *tree {
	t := &tree{
		f: f, a: a, prefix: a.Name + ".",
		lists:     map[Kind]Prop{},
		props:     map[Kind]map[string]map[string]Prop{},
		empty:     map[string]Pos{},
		emptyList: map[Kind]bool{},
	}
	for _, k := range kinds {
		t.props[k] = map[string]map[string]Prop{}
	}
	return t
}

func (t *tree) errorf(pos Pos, key, format string, args ...any) {
	t.a.Problems.add(Problem{Pos: pos, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (t *tree) warnf(pos Pos, key, format string, args ...any) {
	t.a.Problems.add(Problem{Pos: pos, Key: key, Msg: fmt.Sprintf(format, args...), Warning: true})
}

func (t *tree) build() {
	t.sortKeys()
	t.buildSources()
	t.buildChannels()
	t.buildSinks()
	t.buildGroups()
	t.checkUnlisted()
	t.checkChannelUse()
}

// sortKeys files every key of the agent under its list or component, and
// reports keys that fit nowhere.
func (t *tree) sortKeys() {
	// Config filters first: component values are filtered as they are filed.
	filterProps := map[string]Prop{}
	for k, p := range t.f.Props {
		if rest, ok := strings.CutPrefix(k, t.prefix); ok && (rest == "configfilters" || strings.HasPrefix(rest, "configfilters.")) {
			filterProps[k] = p
		}
	}
	filters, broken := t.configFilters(filterProps)
	filtered := map[filterRef]string{}
	for _, k := range t.f.Keys() {
		rest, ok := strings.CutPrefix(k, t.prefix)
		if !ok {
			continue
		}
		p := t.f.Props[k]
		part, tail, hasTail := strings.Cut(rest, ".")
		kind := Kind(part)
		if hasTail && contains(kindNames(), part) {
			p = t.applyFilters(p, filters, filtered, broken)
		}
		switch {
		case part == "configfilters":
			continue
		case !contains(kindNames(), part):
			msg := "unknown key"
			if best := suggest(part, kindNames()); best != "" {
				msg += fmt.Sprintf(" (did you mean %s%s?)", t.prefix, strings.Replace(rest, part, best, 1))
			}
			t.errorf(p.Pos, k, "%s", msg)
			continue
		case !hasTail:
			if p.Value == "" {
				t.errorf(p.Pos, k, "empty value")
				t.emptyList[kind] = true
				continue
			}
			t.lists[kind] = p
			continue
		}
		name, rel, _ := strings.Cut(tail, ".")
		if name == "" || rel == "" {
			t.errorf(p.Pos, k, "unknown key (expected %s%s.<name>.<property>)", t.prefix, kind)
			continue
		}
		if p.Value == "" {
			// Flume drops a key written with an empty value (with a log
			// line), so the key's default applies: its user guide relies on
			// it (search_replace's replaceString). Structural keys stay
			// errors: an empty type or channel list is a broken component,
			// and a required key left empty is reported by Check.
			last := rel[strings.LastIndexByte(rel, '.')+1:]
			if last == "type" || last == "channels" || last == "channel" || last == "sinks" {
				t.errorf(p.Pos, k, "empty value")
			} else {
				t.warnf(p.Pos, k, "empty value; ignored, as Flume does (the key's default applies)")
			}
			t.empty[k] = p.Pos
			continue
		}
		if t.props[kind][name] == nil {
			t.props[kind][name] = map[string]Prop{}
		}
		t.props[kind][name][k] = p
	}
}

func kindNames() []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = string(k)
	}
	return out
}

// listed returns the names in the agent's list of kind, in order, reporting
// names listed twice.
func (t *tree) listed(kind Kind) ([]string, Pos) {
	p, ok := t.lists[kind]
	if !ok {
		return nil, Pos{}
	}
	var out []string
	for _, n := range strings.Fields(p.Value) {
		if contains(out, n) {
			t.errorf(p.Pos, p.Key, "%s %s is listed twice", kind.singular(), n)
			continue
		}
		out = append(out, n)
	}
	return out, p.Pos
}

// component makes the component and reads its type.
func (t *tree) component(kind Kind, name string, listPos Pos) *Component {
	prefix := fmt.Sprintf("%s%s.%s.", t.prefix, kind, name)
	c := &Component{
		Kind:    kind,
		Name:    name,
		Context: NewContext(prefix, t.props[kind][name], t.a.Problems).withEmpty(t.empty),
		Pos:     listPos,
	}
	c.Type, _ = c.Context.Take("type")
	if c.Type == "" && !t.isEmpty(prefix+"type") {
		t.errorf(listPos, prefix+"type", "required key is missing (%s %s is listed in %s%s)", kind.singular(), name, t.prefix, kind)
	}
	return c
}

func (t *tree) buildChannels() {
	names, pos := t.listed(Channels)
	for _, n := range names {
		t.a.Channels = append(t.a.Channels, t.component(Channels, n, pos))
	}
}

func (t *tree) buildSources() {
	names, pos := t.listed(Sources)
	channels, _ := t.listedQuiet(Channels)
	for _, n := range names {
		c := t.component(Sources, n, pos)
		list, listed := c.Context.Take("channels")
		for _, ch := range strings.Fields(list) {
			if contains(c.Channels, ch) {
				c.Context.Errorf("channels", "channel %s is named twice", ch)
				continue
			}
			c.Channels = append(c.Channels, ch)
			t.checkChannelRef(c.Context, "channels", ch, channels)
		}
		if len(c.Channels) == 0 && !listed && !t.isEmpty(c.Context.FullKey("channels")) {
			t.errorf(pos, c.Context.FullKey("channels"), "required key is missing (a source puts into at least one channel)")
		}
		t.a.Sources = append(t.a.Sources, c)
	}
}

func (t *tree) buildSinks() {
	names, pos := t.listed(Sinks)
	channels, _ := t.listedQuiet(Channels)
	for _, n := range names {
		c := t.component(Sinks, n, pos)
		list, set := c.Context.Take("channel")
		chs := strings.Fields(list)
		switch {
		case len(chs) == 0 && !set && !t.isEmpty(c.Context.FullKey("channel")):
			t.errorf(pos, c.Context.FullKey("channel"), "required key is missing (a sink takes from one channel)")
		case len(chs) > 1:
			c.Context.Errorf("channel", "a sink takes from exactly one channel, not %d (%s)", len(chs), strings.Join(chs, " "))
			c.Channels = chs // so the channels do not also read as unused
		case len(chs) == 1:
			c.Channels = chs
			t.checkChannelRef(c.Context, "channel", chs[0], channels)
		}
		t.a.Sinks = append(t.a.Sinks, c)
	}
}

// listedQuiet is listed without reporting duplicates again.
func (t *tree) listedQuiet(kind Kind) ([]string, Pos) {
	p := t.lists[kind]
	return strings.Fields(p.Value), p.Pos
}

func (t *tree) checkChannelRef(c *Context, key, ch string, channels []string) {
	if contains(channels, ch) {
		return
	}
	msg := fmt.Sprintf("unknown channel %s (not listed in %schannels)", ch, t.prefix)
	if best := closeName(ch, channels); best != "" {
		msg += fmt.Sprintf("; did you mean %s?", best)
	}
	c.Errorf(key, "%s", msg)
}

func (t *tree) buildGroups() {
	names, pos := t.listed(SinkGroups)
	sinks, _ := t.listedQuiet(Sinks)
	owner := map[string]string{} // sink -> the group that has it
	for _, n := range names {
		ctx := NewContext(fmt.Sprintf("%ssinkgroups.%s.", t.prefix, n), t.props[SinkGroups][n], t.a.Problems).withEmpty(t.empty)
		g := &SinkGroup{Name: n, Pos: pos}
		list, listed := ctx.Take("sinks")
		for _, s := range strings.Fields(list) {
			switch {
			case contains(g.Sinks, s):
				ctx.Errorf("sinks", "sink %s is named twice", s)
				continue
			case !contains(sinks, s):
				msg := fmt.Sprintf("unknown sink %s (not listed in %ssinks)", s, t.prefix)
				if best := closeName(s, sinks); best != "" {
					msg += fmt.Sprintf("; did you mean %s?", best)
				}
				ctx.Errorf("sinks", "%s", msg)
				continue
			case owner[s] != "":
				ctx.Errorf("sinks", "sink %s is already in sink group %s (a sink belongs to at most one group)", s, owner[s])
				continue
			}
			owner[s] = n
			g.Sinks = append(g.Sinks, s)
		}
		if !listed && !t.isEmpty(ctx.FullKey("sinks")) {
			t.errorf(pos, ctx.FullKey("sinks"), "required key is missing (sink group %s is listed in %ssinkgroups)", n, t.prefix)
		}
		g.Processor = ctx.Sub("processor.")
		typ, set := g.Processor.Take("type")
		switch {
		case set:
			g.ProcessorType = typ
		case t.isEmpty(g.Processor.FullKey("type")):
			g.ProcessorType = "" // reported; not the default processor either
		default:
			g.ProcessorType = "default"
		}
		// Every key of the group itself is structural (read above): the
		// rest are unknown.
		ctx.Check(groupSpec)
		t.a.SinkGroups = append(t.a.SinkGroups, g)
	}
}

// checkUnlisted warns about components that have keys but are not in their
// agent's list: they run nothing, in Flume (which says nothing) as here, but
// a typo or a half-removed component hides behind them, so the warning
// names the closest listed component. Flume's own user guide has such keys
// (the taildir example's stray ri.maxBatchCount): an error would refuse it.
func (t *tree) checkUnlisted() {
	for _, kind := range kinds {
		if t.emptyList[kind] {
			continue // the empty list is the one problem
		}
		listed, _ := t.listedQuiet(kind)
		names := make([]string, 0, len(t.props[kind]))
		for n := range t.props[kind] {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if contains(listed, n) {
				continue
			}
			first := firstProp(t.props[kind][n])
			msg := fmt.Sprintf("%s %s is not listed in %s%s; its keys are ignored (as Flume does)", kind.singular(), n, t.prefix, kind)
			if best := closeName(n, listed); best != "" {
				msg += fmt.Sprintf("; did you mean %s?", best)
			}
			t.warnf(first.Pos, first.Key, "%s", msg)
		}
	}
}

// checkChannelUse reports channels no source or sink uses, and warns about
// channels that are filled but never drained.
func (t *tree) checkChannelUse() {
	for _, ch := range t.a.Channels {
		fed, drained := false, false
		for _, s := range t.a.Sources {
			fed = fed || contains(s.Channels, ch.Name)
		}
		for _, s := range t.a.Sinks {
			drained = drained || contains(s.Channels, ch.Name)
		}
		pos := ch.Pos
		if p, ok := ch.Context.props["type"]; ok {
			pos = p.Pos
		}
		key := strings.TrimSuffix(ch.Context.Prefix(), ".")
		switch {
		case !fed && !drained:
			t.errorf(pos, key, "channel %s is not used by any source or sink", ch.Name)
		case !drained:
			t.warnf(pos, key, "no sink takes from channel %s: it will fill up and then refuse events", ch.Name)
		}
	}
}

// firstProp is the property defined first (by file name, then line).
func firstProp(props map[string]Prop) Prop {
	var best Prop
	for _, p := range props {
		if best.Key == "" || p.Pos.File < best.Pos.File ||
			(p.Pos.File == best.Pos.File && p.Pos.Line < best.Pos.Line) {
			best = p
		}
	}
	return best
}

// isEmpty reports whether the full key k was written with an empty value.
func (t *tree) isEmpty(k string) bool {
	_, ok := t.empty[k]
	return ok
}
