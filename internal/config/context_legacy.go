package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Transitional: the read-to-declare Context. Until the sources, interceptors
// and channel selectors are converted to specs, their factories get a
// context no spec was checked against, and declare their keys by reading
// them with the getters below (each taking its default as an argument);
// Finish then reports every key nobody read as unknown. A Key's Get on such a
// context reads the same way (see Context.value), so shared key groups (the
// TLS keys of the avro source) work on both paths.
//
// Delete this file, Context.used's role in Finish and agent's legacy source
// step once every registry holds specs: nothing else depends on it.

// Has reports whether key is set. It marks the key as known and read.
func (c *Context) Has(key string) bool {
	_, ok := c.lookup(key)
	return ok
}

// String returns the value of key, or def when it is not set.
// A key set to an empty value is a problem (Flume drops such keys).
func (c *Context) String(key, def string) string {
	p, ok := c.lookup(key)
	if !ok {
		return def
	}
	if p.Value == "" {
		c.Errorf(key, "empty value")
		return def
	}
	return p.Value
}

// Required returns the value of key and records a problem when it is missing.
// A key written with an empty value was already reported as such by the
// tree: it reads as "" without a second problem.
func (c *Context) Required(key string) string {
	p, ok := c.lookup(key)
	if !ok {
		if !c.empty[key] {
			c.problems.add(Problem{Pos: c.anyPos(), Key: c.prefix + key, Msg: "required key is missing"})
		}
		return ""
	}
	if p.Value == "" {
		c.Errorf(key, "empty value")
	}
	return p.Value
}

// Int returns key parsed as a decimal integer, or def when it is not set.
func (c *Context) Int(key string, def int) int {
	return int(c.Int64(key, int64(def)))
}

// Int64 returns key parsed as a decimal integer, or def when it is not set.
func (c *Context) Int64(key string, def int64) int64 {
	s := c.String(key, "")
	if s == "" {
		return def
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		c.Errorf(key, "not an integer: %s", c.quote(key, s))
		return def
	}
	return v
}

// Float returns key parsed as a number, or def when it is not set.
func (c *Context) Float(key string, def float64) float64 {
	s := c.String(key, "")
	if s == "" {
		return def
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		c.Errorf(key, "not a number: %s", c.quote(key, s))
		return def
	}
	return v
}

// Bool returns key as a boolean. Flume treats anything but "true" as false;
// flumed accepts true/false in any case and reports anything else.
func (c *Context) Bool(key string, def bool) bool {
	s := c.String(key, "")
	if s == "" {
		return def
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true
	case "false":
		return false
	}
	c.Errorf(key, "not a boolean (true or false): %s", c.quote(key, s))
	return def
}

// Duration returns key, a plain number in unit (Flume writes milliseconds or
// seconds depending on the key), as a duration; def when it is not set.
func (c *Context) Duration(key string, def, unit time.Duration) time.Duration {
	if !c.Has(key) {
		return def
	}
	return time.Duration(c.Int64(key, int64(def/unit))) * unit
}

// List returns key split on whitespace (Flume's component lists).
func (c *Context) List(key string) []string {
	return strings.Fields(c.String(key, ""))
}

// OneOf returns key lowercased when it is one of choices (compared case-
// insensitively), def when it is not set, and records a problem otherwise.
func (c *Context) OneOf(key, def string, choices ...string) string {
	s := c.String(key, "")
	if s == "" {
		return def
	}
	for _, ch := range choices {
		if strings.EqualFold(s, ch) {
			return strings.ToLower(ch)
		}
	}
	msg := fmt.Sprintf("must be one of %s, not %s", strings.Join(choices, ", "), c.quote(key, s))
	if best := suggest(strings.ToLower(s), lower(choices)); best != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", best)
	}
	c.Errorf(key, "%s", msg)
	return def
}

// Keys returns the distinct next key segments under prefix, sorted: for
// "priority." and keys priority.k1, priority.k2 it returns [k1 k2]. It does not
// mark anything as read; read the keys you accept with the getters.
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

// Ignore declares keys Flume knows that flumed has no use for: when one is set
// it gets a warning naming it, not an unknown-key error.
func (c *Context) Ignore(keys ...string) {
	for _, k := range keys {
		if p, ok := c.lookup(k); ok {
			c.problems.add(Problem{Pos: p.Pos, Key: p.Key, Msg: "known to Flume but not used by flumed; ignored", Warning: true})
		}
	}
}

// finishUnread reports every key of this context that was never read as
// unknown, suggesting the closest known key.
func (c *Context) finishUnread() {
	known := make([]string, 0, len(c.known))
	for k := range c.known {
		known = append(known, k)
	}
	sort.Strings(known)
	keys := make([]string, 0, len(c.props))
	for k := range c.props {
		if !c.used[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := c.props[k]
		msg := "unknown key"
		if best := suggest(k, known); best != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", best)
		}
		c.problems.add(Problem{Pos: p.Pos, Key: p.Key, Msg: msg})
	}
}
