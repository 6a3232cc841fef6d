package config

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Spec declares one component type: the names it is known by, one line of
// documentation, and every key it accepts. Everything users see about a key
// comes from here: whether it is known, its type errors, its default, the
// warning for a Flume key flumed ignores, and its row in the README.
//
// Specs are package-level values built once; a Registry indexes them at init
// and panics on a spec that declares a key twice.
type Spec struct {
	// Type is the type name written in "type = ..." (Flume's alias, matched
	// in any case).
	Type string
	// Classes are Flume's class names for the type (matched exactly, as Java
	// loads classes).
	Classes []string
	// Doc is one line: what the component does where it differs from Flume.
	Doc string
	// Keys are the component's keys and the shared groups it includes.
	Keys []Decl

	once sync.Once
	idx  *specIndex
}

// Status says what Flume makes of a key.
type Status int

const (
	// Honoured is a Flume key that flumed reads with Flume's meaning.
	Honoured Status = iota
	// Addition is a key of flumed's own, unknown to Flume.
	Addition
	// Refused is a Flume key flumed does not take: setting it is an error
	// that says what to write instead (never accepted and then ignored).
	Refused
	// Ignored is a Flume key flumed accepts and does not use: setting it
	// gets a warning, never an unknown-key error.
	Ignored
)

// Decl is what a Spec or Group lists: a key (Key, Ignore) or a Group.
type Decl interface {
	defs() []*keyDef
}

// Group is a set of keys several components share (Flume's TLS keys, a
// serializer's keys, Kafka's pass-through families). A spec includes it by
// listing it among its Keys; it is documented once, under its Name.
type Group struct {
	Name string // a heading: "TLS (server side)"
	Doc  string // one line
	Keys []Decl
}

func (g *Group) defs() []*keyDef {
	var out []*keyDef
	for _, d := range g.Keys {
		out = append(out, d.defs()...)
	}
	return out
}

// kind is how a key's value is written and parsed.
type kind int

const (
	kindString kind = iota
	kindInt
	kindInt64
	kindBytes
	kindBool
	kindFloat
	kindDuration
	kindOneOf
	kindList
	kindPort
	kindIgnored
	kindRefused
	kindNested
)

// keyDef is one declared key, whatever its Go type.
type keyDef struct {
	name     string   // relative: "capacity", "priority.<sink>", "kafka.producer.*"
	segs     []string // name split on "."
	family   bool     // name has a <placeholder> or ends in ".*"
	kind     kind
	def      any    // the default, of the key's Go type
	defText  string // how the docs show the default, when not derived from def
	doc      string
	required bool
	status   Status
	warning  string        // Ignored: the warning given when the key is set
	unit     time.Duration // kindDuration: the unit the number is written in
	choices  []string      // kindOneOf
	seps     string        // kindList: the separators (a space stands for any white space)
	minPort  int           // kindPort: 0 for a listening port, else 1
	classes  string        // kindOneOf: the problem for a class name, "" when none is expected
}

func newDef(name string, k kind, def any, doc string) *keyDef {
	d := &keyDef{name: name, segs: strings.Split(name, "."), kind: k, def: def, doc: doc}
	for i, s := range d.segs {
		if isPlaceholder(s) || (s == "*" && i == len(d.segs)-1) {
			d.family = true
		}
	}
	return d
}

func (d *keyDef) defs() []*keyDef { return []*keyDef{d} }

func isPlaceholder(seg string) bool {
	return len(seg) > 2 && seg[0] == '<' && seg[len(seg)-1] == '>'
}

// Key is a declared key whose value a factory reads as a T. Declare keys as
// package-level variables with the constructors below (String, Int, Millis,
// OneOf, ...) and list them in the component's Spec; the default given there
// is the only place the default is written.
type Key[T any] struct{ d *keyDef }

func (k Key[T]) defs() []*keyDef { return []*keyDef{k.d} }

// Name is the key relative to its component ("capacity").
func (k Key[T]) Name() string { return k.d.name }

// Default is the value the key has when it is not set.
func (k Key[T]) Default() T { return k.d.def.(T) }

// Required makes a missing key a problem ("required key is missing").
func (k Key[T]) Required() Key[T] { k.d.required = true; return k }

// Flumed marks a key of flumed's own (Flume does not have it).
func (k Key[T]) Flumed() Key[T] { k.d.status = Addition; return k }

// RefusingClasses gives a OneOf key the problem reported for a value that
// looks like a Java class name (it has a dot): where Flume takes a custom
// class, flumed says it does not load classes rather than list the choices.
func (k Key[T]) RefusingClasses(msg string) Key[T] { k.d.classes = msg; return k }

// DefaultText is how the documentation shows a default that is computed
// (a home directory, a share of the memory limit) rather than the value.
func (k Key[T]) DefaultText(s string) Key[T] { k.d.defText = s; return k }

// Get returns the key's value in c, or its default when it is not set or
// its value was reported as bad.
func (k Key[T]) Get(c *Context) T {
	v, _ := k.Lookup(c)
	return v
}

// Lookup is Get that also says whether the key is set to a good value.
func (k Key[T]) Lookup(c *Context) (T, bool) {
	if k.d.family {
		c.bug(k.d.name, "reads family key %s without its names (use At)", k.d.name)
		return k.Default(), false
	}
	return k.value(c, k.d.name)
}

// At returns a family key's value for the names filling its placeholders in
// order: priority.At(c, "k1") reads "priority.k1".
func (k Key[T]) At(c *Context, names ...string) (T, bool) {
	rel, ok := k.d.instance(names)
	if !ok {
		c.bug(k.d.name, "reads %s with %d names", k.d.name, len(names))
		return k.Default(), false
	}
	return k.value(c, rel)
}

// Instance is one key of a family that is set, with the names it fills the
// placeholders with ("mapping.CA" of "mapping.<value>": Names [CA]).
type Instance[T any] struct {
	Key   string // relative
	Names []string
	Value T
}

// Instances returns every set key of a family whose value is good, sorted.
func (k Key[T]) Instances(c *Context) []Instance[T] {
	var out []Instance[T]
	for _, rel := range c.relKeys() {
		if !k.d.matches(strings.Split(rel, "."), c.bound) {
			continue
		}
		if v, ok := k.value(c, rel); ok {
			out = append(out, Instance[T]{Key: rel, Names: k.d.names(rel), Value: v})
		}
	}
	return out
}

func (k Key[T]) value(c *Context, rel string) (T, bool) {
	v, ok := c.value(k.d, rel)
	if !ok {
		return k.Default(), false
	}
	return v.(T), true
}

// instance fills the placeholders (and a trailing "*") with names.
func (d *keyDef) instance(names []string) (string, bool) {
	segs := slices.Clone(d.segs)
	n := 0
	for i, s := range segs {
		if isPlaceholder(s) || (s == "*" && i == len(segs)-1) {
			if n >= len(names) {
				return "", false
			}
			segs[i] = names[n]
			n++
		}
	}
	return strings.Join(segs, "."), n == len(names)
}

// names are the segments of rel that fill d's placeholders.
func (d *keyDef) names(rel string) []string {
	segs := strings.Split(rel, ".")
	var out []string
	for i, s := range d.segs {
		switch {
		case s == "*" && i == len(d.segs)-1:
			out = append(out, strings.Join(segs[i:], "."))
		case isPlaceholder(s):
			out = append(out, segs[i])
		}
	}
	return out
}

// matches reports whether the key split into segs is d, or one of d's
// family. A placeholder matches one segment (one of bound[placeholder] when
// the component bound it); a trailing "*" matches one or more segments.
func (d *keyDef) matches(segs []string, bound map[string][]string) bool {
	for i, p := range d.segs {
		if p == "*" && i == len(d.segs)-1 {
			return len(segs) > i
		}
		if i >= len(segs) {
			return false
		}
		if isPlaceholder(p) {
			if vals, ok := bound[p]; ok && !slices.Contains(vals, segs[i]) {
				return false
			}
			continue
		}
		if p != segs[i] {
			return false
		}
	}
	return len(segs) == len(d.segs)
}

// The constructors. Every one takes the key's name relative to its component,
// its default where it has one, and one line of documentation.

// String declares a key whose value is used as written.
func String(name, def, doc string) Key[string] {
	return Key[string]{newDef(name, kindString, def, doc)}
}

// Int declares a decimal integer key.
func Int(name string, def int, doc string) Key[int] {
	return Key[int]{newDef(name, kindInt, def, doc)}
}

// Int64 declares a decimal integer key that may exceed 32 bits.
func Int64(name string, def int64, doc string) Key[int64] {
	return Key[int64]{newDef(name, kindInt64, def, doc)}
}

// Bytes declares a size in bytes, written as a plain decimal number.
func Bytes(name string, def int64, doc string) Key[int64] {
	return Key[int64]{newDef(name, kindBytes, def, doc)}
}

// Bool declares a true/false key (in any case; anything else is a problem,
// where Flume would read false).
func Bool(name string, def bool, doc string) Key[bool] {
	return Key[bool]{newDef(name, kindBool, def, doc)}
}

// Float declares a decimal number key.
func Float(name string, def float64, doc string) Key[float64] {
	return Key[float64]{newDef(name, kindFloat, def, doc)}
}

// Millis declares a duration written as a whole number of milliseconds.
func Millis(name string, def time.Duration, doc string) Key[time.Duration] {
	return duration(name, time.Millisecond, def, doc)
}

// Seconds declares a duration written as a whole number of seconds.
func Seconds(name string, def time.Duration, doc string) Key[time.Duration] {
	return duration(name, time.Second, def, doc)
}

func duration(name string, unit, def time.Duration, doc string) Key[time.Duration] {
	if def%unit != 0 {
		panic(fmt.Sprintf("config: default %s of %s is not a whole number of %s", def, name, unit))
	}
	d := newDef(name, kindDuration, def, doc)
	d.unit = unit
	return Key[time.Duration]{d}
}

// OneOf declares a key whose value is one of choices, in any case; Get
// (and Default) return it lower-cased.
func OneOf(name, def string, choices []string, doc string) Key[string] {
	d := newDef(name, kindOneOf, strings.ToLower(def), doc)
	d.choices = choices
	return Key[string]{d}
}

// List declares a list split on any of the separators in seps (a space
// stands for any white space): " " for Flume's component lists, "," for
// dataDirs. def is the default as written in a file.
func List(name, seps, def, doc string) Key[[]string] {
	d := newDef(name, kindList, splitList(def, seps), doc)
	d.seps = seps
	if def != "" {
		d.defText = "`" + def + "`"
	}
	return Key[[]string]{d}
}

func splitList(s, seps string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return strings.ContainsRune(seps, r) || (strings.ContainsRune(seps, ' ') && unicode.IsSpace(r))
	})
}

// Port declares a port to connect to (1-65535).
func Port(name, doc string) Key[int] {
	d := newDef(name, kindPort, 0, doc)
	d.minPort = 1
	return Key[int]{d}
}

// ListenPort declares a port to listen on, TCP or UDP (0-65535; 0 picks a free one).
func ListenPort(name, doc string) Key[int] {
	return Key[int]{newDef(name, kindPort, 0, doc)}
}

// Ignore declares a Flume key flumed accepts and does not use. Setting it
// gets warning, or "known to Flume but not used by flumed; ignored" when
// warning is empty.
func Ignore(name, warning string) Decl {
	if warning == "" {
		warning = "known to Flume but not used by flumed; ignored"
	}
	d := newDef(name, kindIgnored, nil, warning)
	d.status, d.warning = Ignored, warning
	return d
}

// Refuse declares a Flume key that flumed does not take, such as an old
// name Flume still translates: setting it is an error with problem, which
// says what to write instead. Use it where ignoring the key could change
// what happens to events (a consumer group, a topic, acknowledgements).
func Refuse(name, problem string) Decl {
	d := newDef(name, kindRefused, nil, problem)
	d.status, d.warning = Refused, problem
	return d
}

// Nested declares the keys of components configured inside this one, each
// checked against its own spec: "interceptors.<name>.*" for a source's
// interceptors, "sink.serializer.*" for a serializer. This spec accepts them
// as they are; the component checks them with c.Sub(prefix).Check(theirSpec)
// (or the registry of their kind's Resolve).
func Nested(name, doc string) Decl {
	return newDef(name, kindNested, nil, doc)
}

// specIndex is a spec's keys, flattened out of its groups.
type specIndex struct {
	exact    map[string]*keyDef
	families []*keyDef
	all      map[*keyDef]bool
	order    []*keyDef // declaration order
}

// index builds (once) and returns the spec's index. A key declared twice,
// under the same name or not, is a programming error: it panics.
func (s *Spec) index() *specIndex {
	s.once.Do(func() {
		idx := &specIndex{exact: map[string]*keyDef{}, all: map[*keyDef]bool{}}
		for _, decl := range s.Keys {
			for _, d := range decl.defs() {
				if idx.all[d] {
					continue // a group included twice through two others
				}
				if prev := idx.lookupName(d.name); prev != nil {
					panic(fmt.Sprintf("config: spec %s declares key %s twice", s.Type, d.name))
				}
				idx.all[d] = true
				idx.order = append(idx.order, d)
				if d.family {
					idx.families = append(idx.families, d)
				} else {
					idx.exact[d.name] = d
				}
			}
		}
		s.idx = idx
	})
	return s.idx
}

func (idx *specIndex) lookupName(name string) *keyDef {
	if d := idx.exact[name]; d != nil {
		return d
	}
	for _, d := range idx.families {
		if d.name == name {
			return d
		}
	}
	return nil
}

// match finds the declaration of the relative key rel.
func (idx *specIndex) match(rel string, bound map[string][]string) *keyDef {
	if d := idx.exact[rel]; d != nil {
		return d
	}
	segs := strings.Split(rel, ".")
	for _, d := range idx.families {
		if d.matches(segs, bound) {
			return d
		}
	}
	return nil
}

// candidates are the names a "did you mean" for rel may suggest: every
// declared name, with a family's placeholders filled with its bound names,
// or else with rel's own segments (so "priorty.k1" finds "priority.k1").
func (idx *specIndex) candidates(rel string, bound map[string][]string) []string {
	segs := strings.Split(rel, ".")
	var out []string
	for _, d := range idx.order {
		if !d.family {
			out = append(out, d.name)
			continue
		}
		insts := []string{""}
		for i, p := range d.segs {
			var fill []string
			switch {
			case isPlaceholder(p) && len(bound[p]) > 0:
				fill = bound[p]
			case (isPlaceholder(p) || p == "*") && i < len(segs):
				fill = []string{segs[i]}
			default:
				fill = []string{p}
			}
			var next []string
			for _, pre := range insts {
				for _, f := range fill {
					if pre == "" {
						next = append(next, f)
					} else {
						next = append(next, pre+"."+f)
					}
				}
			}
			insts = next
		}
		out = append(out, insts...)
	}
	return out
}
