package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Bind restricts a family's placeholder to names known at build time: a sink
// group's processor binds "<sink>" to the group's sinks, so that
// "priority.maxpenality" is an unknown key (with a "did you mean") rather
// than the priority of a sink called maxpenality. Call it before Check.
func (c *Context) Bind(placeholder string, names ...string) {
	if c.bound == nil {
		c.bound = map[string][]string{}
	}
	c.bound[placeholder] = names
}

// Check declares s's keys on c and checks every key of c against them, all
// at once and whatever the factory does next: a key no declaration matches
// is unknown (with a "did you mean" drawn from the declared names), a value
// that does not parse as its key's type is a problem, an ignored Flume key
// gets its warning, and a missing required key is reported. Keys the tree
// already read (type, channel, channels) are not the component's.
//
// After Check, a factory reads typed values through its Keys; reading a key
// s does not declare is a flumed bug, reported as an error.
func (c *Context) Check(s *Spec) {
	idx := s.index()
	c.spec = s
	c.vals = map[string]value{}
	for _, rel := range c.relKeys() {
		if c.used[rel] {
			continue // read by the tree: type, channel, channels
		}
		p := c.props[rel]
		d := idx.match(rel, c.bound)
		switch {
		case d == nil:
			msg := "unknown key"
			cands := append(idx.candidates(rel, c.bound), c.knownKeys()...)
			if best := suggest(rel, cands); best != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", best)
			}
			c.problems.add(Problem{Pos: p.Pos, Key: p.Key, Msg: msg})
		case d.kind == kindIgnored:
			c.problems.add(Problem{Pos: p.Pos, Key: p.Key, Msg: d.warning, Warning: true})
		case d.kind == kindRefused:
			c.problems.add(Problem{Pos: p.Pos, Key: p.Key, Msg: d.warning})
		case d.kind == kindNested:
			// A nested component's key: its own spec checks it.
		default:
			if v, ok := d.parse(c, rel, p.Value); ok {
				c.vals[rel] = value{d, v}
			}
		}
	}
	for _, d := range idx.order {
		if _, set := c.props[d.name]; d.required && !d.family && !set {
			if pos, empty := c.empty[d.name]; empty {
				// The tree only warned (Flume drops an empty value): here
				// the key is needed.
				c.problems.add(Problem{Pos: pos, Key: c.prefix + d.name, Msg: "empty value (a required key)"})
				continue
			}
			c.problems.add(Problem{Pos: c.anyPos(), Key: c.prefix + d.name, Msg: "required key is missing"})
		}
	}
}

// value is a key's parsed value and the declaration that parsed it.
type value struct {
	def *keyDef
	v   any
}

// value is the parsed value of the key rel declared by d, and whether it is
// set to a good value.
func (c *Context) value(d *keyDef, rel string) (any, bool) {
	if c.spec != nil {
		if !c.spec.index().all[d] {
			c.bug(rel, "reads key %s, which the %s spec does not declare", rel, c.spec.Type)
			return nil, false
		}
		v, ok := c.vals[rel]
		if !ok || v.def != d {
			// Unset, bad, or another declaration's: an exact key inside a
			// family's range ("kafka.topic" and "kafka.*") is not the family's.
			return nil, false
		}
		return v.v, true
	}
	c.bug(rel, "reads key %s before its context was checked against a spec", rel)
	return nil, false
}

// bug records a programming error of a factory: it stops the agent, and the
// test over every registered spec finds it before a user does.
func (c *Context) bug(rel, format string, args ...any) {
	c.problems.add(Problem{Pos: c.anyPos(), Key: c.prefix + rel,
		Msg: "flumed bug: the factory " + fmt.Sprintf(format, args...)})
}

// relKeys are the context's relative keys, sorted.
func (c *Context) relKeys() []string {
	keys := make([]string, 0, len(c.props))
	for k := range c.props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// knownKeys are the keys asked for so far (the tree's): more candidates for
// a "did you mean" ("chanel" -> "channel").
func (c *Context) knownKeys() []string {
	out := make([]string, 0, len(c.known))
	for k := range c.known {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// parse reads raw as d's type, recording a problem for rel when it does not
// parse.
func (d *keyDef) parse(c *Context, rel, raw string) (any, bool) {
	if raw == "" {
		c.Errorf(rel, "empty value") // only from FromMap: the tree drops empty values
		return nil, false
	}
	s := strings.TrimSpace(raw)
	switch d.kind {
	case kindString:
		return raw, true
	case kindInt:
		v, err := strconv.ParseInt(s, 10, strconv.IntSize)
		if err != nil {
			c.Errorf(rel, "not an integer: %s", c.quote(rel, raw))
			return nil, false
		}
		return int(v), true
	case kindInt64, kindBytes:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			c.Errorf(rel, "not an integer: %s", c.quote(rel, raw))
			return nil, false
		}
		return v, true
	case kindDuration:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			c.Errorf(rel, "not an integer: %s", c.quote(rel, raw))
			return nil, false
		}
		return time.Duration(v) * d.unit, true
	case kindFloat:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			c.Errorf(rel, "not a number: %s", c.quote(rel, raw))
			return nil, false
		}
		return v, true
	case kindBool:
		switch strings.ToLower(s) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
		c.Errorf(rel, "not a boolean (true or false): %s", c.quote(rel, raw))
		return nil, false
	case kindOneOf:
		if d.classes != "" && strings.Contains(raw, ".") {
			c.Errorf(rel, "%s", d.classes)
			return nil, false
		}
		for _, ch := range d.choices {
			if strings.EqualFold(raw, ch) {
				return strings.ToLower(ch), true
			}
		}
		msg := fmt.Sprintf("must be one of %s, not %s", strings.Join(d.choices, ", "), c.quote(rel, raw))
		if best := suggest(strings.ToLower(raw), lower(d.choices)); best != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", best)
		}
		c.Errorf(rel, "%s", msg)
		return nil, false
	case kindList:
		return splitList(raw, d.seps), true
	case kindPort:
		n, err := strconv.Atoi(s)
		if err != nil || n < d.minPort || n > 65535 {
			c.Errorf(rel, "not a port number (%d-65535): %s", d.minPort, c.quote(rel, raw))
			return nil, false
		}
		return n, true
	}
	panic(fmt.Sprintf("config: key %s of kind %d cannot be read", d.name, d.kind))
}
