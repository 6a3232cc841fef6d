package config

import (
	"fmt"
	"strings"
)

// resolver substitutes ${...} in values, as Flume 1.10+ does with commons-text's
// StringSubstitutor, but deterministically: a bare ${key} is looked up in the
// fully merged configuration and resolved recursively, whatever the order of
// the files and lines.
//
//	${env:NAME}    the environment variable NAME
//	${sys:NAME}    the -D property NAME of the command line
//	${key}         the (substituted) value of another key of the configuration
//	${name:-def}   def when name does not resolve
//	$${x}          the literal text ${x}
//	${f1['key']}   left for the agent's config filter f1 (configfilter.go)
//
// Variable names may themselves contain ${...} (nested substitution). What
// does not resolve stays literal, with a warning; a cycle is an error.
type resolver struct {
	raw        map[string]Prop
	env        func(string) (string, bool)
	sys        map[string]string
	done       map[string]string // keys already resolved
	active     map[string]bool   // keys being resolved: the cycle check
	chain      []string          // active keys in order, for the cycle message
	problems   *Problems
	referenced map[string]bool
}

// value returns the substituted value of key.
func (r *resolver) value(key string) string {
	if v, ok := r.done[key]; ok {
		return v
	}
	p := r.raw[key]
	r.active[key] = true
	r.chain = append(r.chain, key)
	v := r.expand(p.Value, p)
	r.chain = r.chain[:len(r.chain)-1]
	delete(r.active, key)
	r.done[key] = v
	return v
}

// expand substitutes every ${...} of s, a value (or part of one) of owner.
func (r *resolver) expand(s string, owner Prop) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(s[i])
			i++
			continue
		}
		end := matchingBrace(s, i+2)
		if end < 0 { // no closing brace: the rest is literal
			b.WriteString(s[i:])
			break
		}
		inner := r.expand(s[i+2:end], owner)
		b.WriteString(r.lookup(inner, s[i:end+1], owner))
		i = end + 1
	}
	return b.String()
}

// matchingBrace returns the index of the '}' closing the variable whose name
// starts at from, counting nested "${", or -1.
func matchingBrace(s string, from int) int {
	depth := 0
	for j := from; j < len(s); j++ {
		switch {
		case strings.HasPrefix(s[j:], "${"):
			depth++
			j++
		case s[j] == '}':
			if depth == 0 {
				return j
			}
			depth--
		}
	}
	return -1
}

// lookup resolves one variable name; literal is the text to keep when it
// does not resolve.
func (r *resolver) lookup(name, literal string, owner Prop) string {
	name, def, hasDef := strings.Cut(name, ":-")
	var (
		v     string
		found bool
		what  string
	)
	switch prefix, rest, ok := strings.Cut(name, ":"); {
	case ok && prefix == "env":
		v, found = r.env(rest)
		what = fmt.Sprintf("environment variable %s is not set", rest)
	case ok && prefix == "sys":
		v, found = r.sys[rest]
		what = fmt.Sprintf("property %s is not set with -D", rest)
	case ok && !strings.Contains(prefix, "."):
		what = fmt.Sprintf("%s: lookups are not supported by flumed (only env:, sys: and other keys)", prefix)
	case !hasDef && isFilterRef(name):
		// ${f1['key']}: a config filter's, resolved per agent (configfilter.go).
		return literal
	default:
		r.referenced[name] = true
		if _, ok := r.raw[name]; !ok {
			what = fmt.Sprintf("no key %s in the configuration", name)
			break
		}
		if r.active[name] {
			r.problems.add(Problem{Pos: owner.Pos, Key: owner.Key,
				Msg: fmt.Sprintf("substitution cycle: %s -> %s", strings.Join(r.chain, " -> "), name)})
			return literal
		}
		v, found = r.value(name), true
	}
	if found {
		return v
	}
	if hasDef {
		return def
	}
	r.problems.add(Problem{Pos: owner.Pos, Key: owner.Key, Warning: true,
		Msg: fmt.Sprintf("%s unresolved (%s); kept literally", literal, what)})
	return literal
}

func isFilterRef(name string) bool {
	_, ok := parseFilterRef(name)
	return ok
}
