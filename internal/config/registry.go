package config

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Registry holds every type of one kind of component (channel, sink, sink
// processor; later source, interceptor, selector, serializer): each type's
// Spec and its factory F, and the Flume types flumed does not have, so that
// naming one says "not supported by flumed" rather than "unknown".
//
// One lookup rule for every kind, Flume's own: the type is trimmed and
// compared with each spec's Type in any case (Flume upper-cases it and looks
// it up among its aliases), and otherwise with its Flume class names exactly
// (Flume loads anything that is not an alias as a class, and Java class
// names are case-sensitive). So a file flumed accepts names its components
// the way Flume would load them; a class name in the wrong case gets a "did
// you mean" with the right one.
type Registry[F any] struct {
	kind        string
	entries     []Entry[F]
	unsupported []Unsupported
}

// Entry is one component type: its spec and its factory.
type Entry[F any] struct {
	Spec *Spec
	New  F
}

// Unsupported is a Flume component type flumed does not have: its alias
// ("" when Flume has none) and class names.
type Unsupported struct {
	Type    string
	Classes []string
}

// NewRegistry makes the registry of kind ("sink": the word messages use)
// from every type's entry and the Flume types flumed lacks. A type or class
// name given twice, or a spec declaring a key twice, is a programming error:
// it panics, when the registry's package is initialised.
func NewRegistry[F any](kind string, entries []Entry[F], unsupported []Unsupported) *Registry[F] {
	r := &Registry[F]{kind: kind, entries: entries, unsupported: unsupported}
	seen := map[string]bool{}
	claim := func(name string) {
		if seen[name] {
			panic(fmt.Sprintf("config: %s type %s is registered twice", kind, name))
		}
		seen[name] = true
	}
	for _, e := range entries {
		e.Spec.index()
		claim(strings.ToLower(e.Spec.Type))
		for _, c := range e.Spec.Classes {
			claim(c)
		}
	}
	for _, u := range unsupported {
		if u.Type != "" {
			claim(strings.ToLower(u.Type))
		}
		for _, c := range u.Classes {
			claim(c)
		}
	}
	return r
}

// Kind is the word for the registry's components in messages ("sink").
func (r *Registry[F]) Kind() string { return r.kind }

// names reports whether typ names the type alias with classes, by the
// registry's one rule.
func names(typ, alias string, classes []string) bool {
	typ = strings.TrimSpace(typ)
	return (alias != "" && strings.EqualFold(typ, alias)) || slices.Contains(classes, typ)
}

// Lookup finds the type typ names.
func (r *Registry[F]) Lookup(typ string) (Entry[F], bool) {
	for _, e := range r.entries {
		if names(typ, e.Spec.Type, e.Spec.Classes) {
			return e, true
		}
	}
	return Entry[F]{}, false
}

// Resolve finds the type typ names for the component configured by c and
// checks c against its spec (see Context.Check). When typ names no type,
// the problem is recorded at c's "type" key: a Flume type flumed does not
// have, or an unknown type with a "did you mean".
func (r *Registry[F]) Resolve(c *Context, typ string) (Entry[F], bool) {
	e, ok := r.Lookup(typ)
	if !ok {
		c.Errorf("type", "%s", r.Unknown(typ))
		return e, false
	}
	c.Check(e.Spec)
	return e, true
}

// Unknown is the message for a type name that is not registered: a Flume
// type flumed does not have, or an unknown type with a "did you mean".
func (r *Registry[F]) Unknown(typ string) string {
	supported := strings.Join(r.Types(), ", ")
	for _, u := range r.unsupported {
		if names(typ, u.Type, u.Classes) {
			name := u.Type
			if name == "" || !strings.EqualFold(strings.TrimSpace(typ), u.Type) {
				name = strings.TrimSpace(typ)
			}
			return fmt.Sprintf("%s type %s is not supported by flumed (supported: %s)", r.kind, name, supported)
		}
	}
	msg := fmt.Sprintf("unknown %s type %q", r.kind, typ)
	cands := r.Types()
	if strings.Contains(typ, ".") {
		cands = nil
		for _, e := range r.entries {
			cands = append(cands, e.Spec.Classes...)
		}
	}
	if best := suggest(strings.ToLower(strings.TrimSpace(typ)), cands); best != "" {
		return msg + fmt.Sprintf(" (did you mean %s?)", best)
	}
	return msg + fmt.Sprintf(" (known: %s)", supported)
}

// Types lists the registered type names (not class names), sorted.
func (r *Registry[F]) Types() []string {
	out := make([]string, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, e.Spec.Type)
	}
	sort.Strings(out) // registration order is the file's; messages list them sorted
	return out
}

// Entries are the registered types in registration order.
func (r *Registry[F]) Entries() []Entry[F] { return slices.Clone(r.entries) }

// Unsupported are the Flume types flumed does not have.
func (r *Registry[F]) Unsupported() []Unsupported { return slices.Clone(r.unsupported) }
