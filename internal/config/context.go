package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Pos is where a property was defined.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string {
	if p.Line == 0 && p.File != "" { // a problem about a whole file (or files)
		return p.File
	}
	if p.File == "" {
		return fmt.Sprintf("line %d", p.Line)
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Prop is one property as read from a file: the full key, its value after
// escapes and substitution, and where it was defined.
type Prop struct {
	Key   string
	Value string
	Pos   Pos
}

// Context is the properties of one component, addressed by keys relative to the
// component's prefix ("capacity" for "a1.channels.c1.capacity").
//
// A component declares its keys in a Spec; Check checks the context against
// it (unknown keys, type errors, ignored keys, missing required keys, every
// problem recorded as "file:line: full.key: what is wrong" rather than
// failing, so one pass reports everything), and the factory then reads typed
// values through its Keys. Contexts are not safe for concurrent use;
// configuration is single-threaded.
type Context struct {
	prefix   string
	props    map[string]Prop // relative key -> property
	problems *Problems
	// empty are keys written with an empty value. The tree reported each one
	// ("empty value") and left it out, as Flume drops it; a required key
	// must not be reported a second time as missing.
	empty map[string]Pos
	// parent is the context Sub was called on, nil for a component's own.
	parent *Context

	// spec is what Check checked the context against; vals are its keys'
	// parsed values (only the good ones); bound restricts placeholders.
	spec  *Spec
	vals  map[string]value
	bound map[string][]string

	// used are the keys read before Check (the tree's type, channel,
	// channels; a nested component's type); known are the keys asked for,
	// present or not: "did you mean" candidates.
	used  map[string]bool
	known map[string]bool
}

// NewContext makes a context for the component whose keys start with prefix
// ("a1.sources.r1."), from properties keyed by their full key. Problems found
// are added to problems (which may be shared by every component of a file).
func NewContext(prefix string, props map[string]Prop, problems *Problems) *Context {
	c := &Context{
		prefix:   prefix,
		props:    make(map[string]Prop),
		used:     make(map[string]bool),
		known:    make(map[string]bool),
		problems: problems,
	}
	for k, p := range props {
		if rel, ok := strings.CutPrefix(k, prefix); ok && rel != "" {
			c.props[rel] = p
		}
	}
	return c
}

// withEmpty records the full keys of empty set that belong to this context
// as written with an empty value (already reported).
func (c *Context) withEmpty(empty map[string]Pos) *Context {
	for k, pos := range empty {
		if rel, ok := strings.CutPrefix(k, c.prefix); ok && rel != "" {
			if c.empty == nil {
				c.empty = make(map[string]Pos)
			}
			c.empty[rel] = pos
		}
	}
	return c
}

// FromMap builds a context from plain relative keys, for tests and embedded use.
// Positions are "<inline>" with the line numbers in key order.
func FromMap(prefix string, kv map[string]string) *Context {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	props := make(map[string]Prop, len(kv))
	for i, k := range keys {
		props[prefix+k] = Prop{Key: prefix + k, Value: kv[k], Pos: Pos{File: "<inline>", Line: i + 1}}
	}
	return NewContext(prefix, props, &Problems{})
}

// Prefix is the full-key prefix of this component ("a1.sinks.k1.").
func (c *Context) Prefix() string { return c.prefix }

// Problems is where this context records what it finds.
func (c *Context) Problems() *Problems { return c.problems }

// FullKey turns a relative key into the key written in the file.
func (c *Context) FullKey(key string) string { return c.prefix + key }

func (c *Context) lookup(key string) (Prop, bool) {
	c.known[key] = true
	p, ok := c.props[key]
	if ok {
		c.used[key] = true
	}
	return p, ok
}

// Pos returns where key was defined (zero if it is not set).
func (c *Context) Pos(key string) Pos { return c.props[key].Pos }

// anyPos is the position used for problems about a missing key: the first line
// of the component, so the message still points into the file.
func (c *Context) anyPos() Pos {
	var best Pos
	for _, p := range c.props {
		if best.Line == 0 || (p.Pos.File == best.File && p.Pos.Line < best.Line) {
			best = p.Pos
		}
	}
	if best.Line == 0 && c.parent != nil {
		// A sub-context with no keys of its own (a sink group's processor
		// without processor.* keys) points at its component instead.
		return c.parent.anyPos()
	}
	return best
}

// Sub returns a context for the keys under prefix ("interceptors.i1."), sharing
// this context's problems: a nested component's, which its own spec checks
// (Take its "type", then its registry's Resolve). The sub-context's keys
// count as handled here.
func (c *Context) Sub(prefix string) *Context {
	sub := &Context{
		prefix:   c.prefix + prefix,
		props:    make(map[string]Prop),
		used:     make(map[string]bool),
		known:    make(map[string]bool),
		problems: c.problems,
		parent:   c,
	}
	for k, p := range c.props {
		if rel, ok := strings.CutPrefix(k, prefix); ok && rel != "" {
			sub.props[rel] = p
			c.used[k] = true
			c.known[k] = true
		}
	}
	for k, pos := range c.empty {
		if rel, ok := strings.CutPrefix(k, prefix); ok && rel != "" {
			if sub.empty == nil {
				sub.empty = make(map[string]Pos)
			}
			sub.empty[rel] = pos
		}
	}
	return sub
}

// Errorf records a problem with key (relative), at the key's line when it is set.
func (c *Context) Errorf(key, format string, args ...any) {
	pos := c.props[key].Pos
	if pos.Line == 0 {
		pos = c.anyPos()
	}
	c.problems.add(Problem{Pos: pos, Key: c.prefix + key, Msg: fmt.Sprintf(format, args...)})
}

// Warnf records a warning with key (relative).
func (c *Context) Warnf(key, format string, args ...any) {
	pos := c.props[key].Pos
	if pos.Line == 0 {
		pos = c.anyPos()
	}
	c.problems.add(Problem{Pos: pos, Key: c.prefix + key, Msg: fmt.Sprintf(format, args...), Warning: true})
}

// quote renders a value for a message, hiding values of keys that look secret.
func (c *Context) quote(key, v string) string {
	if IsSecret(key) {
		return "(value hidden)"
	}
	return strconv.Quote(v)
}

// IsSecret reports whether values of key must never be echoed in messages.
func IsSecret(key string) bool {
	k := strings.ToLower(key)
	return strings.Contains(k, "password") || strings.Contains(k, "secret") || strings.Contains(k, "token")
}

// Checked reports whether Check ran on c: a component built without the
// agent (a test, a tool) checks its context itself before reading it.
func (c *Context) Checked() bool { return c.spec != nil }

// Keys returns the distinct next key segments under prefix, sorted: for
// "priority." and keys priority.k1, priority.k2 it returns [k1 k2]: the names
// of a nested family's instances ("interceptors.<name>.*"). It reads no value.
func (c *Context) Keys(prefix string) []string {
	seen := map[string]bool{}
	var out []string
	for k := range c.props {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok || rest == "" {
			continue
		}
		seg, _, _ := strings.Cut(rest, ".")
		if !seen[seg] {
			seen[seg] = true
			out = append(out, seg)
		}
	}
	sort.Strings(out)
	return out
}

// Take returns the value of a structural key, one that is not the spec's
// but says how the component is put together (the tree's type, channel,
// channels and sinks; a nested component's type, to resolve in its
// registry), and marks it read so that Check does not call it unknown. Take
// before Check.
func (c *Context) Take(key string) (string, bool) {
	p, ok := c.lookup(key)
	return p.Value, ok
}

func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

// suggest returns the candidate closest to key, comparing whole keys and last
// segments (so priority.maxpenality finds maxpenalty), or "" if none is close.
func suggest(key string, candidates []string) string {
	last := func(s string) string {
		if i := strings.LastIndexByte(s, '.'); i >= 0 {
			return s[i+1:]
		}
		return s
	}
	best, bestD, bestWhole := "", 1<<30, 1<<30
	for _, cand := range candidates {
		whole := levenshtein(strings.ToLower(key), strings.ToLower(cand))
		d := min(whole, levenshtein(strings.ToLower(last(key)), strings.ToLower(last(cand))))
		// Ties go to the closer whole key: Java property names share last
		// segments ("ms", "bytes"), which alone would pick any of them.
		if d < bestD || d == bestD && whole < bestWhole {
			best, bestD, bestWhole = cand, d, whole
		}
	}
	limit := max(2, len(last(key))/3)
	if bestD > limit {
		return ""
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
