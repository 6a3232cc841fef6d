package config

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong (or worth a warning) in a configuration, placed
// at a file and line and naming the full key.
type Problem struct {
	Pos     Pos
	Key     string
	Msg     string
	Warning bool
}

func (p Problem) String() string {
	if p.Key == "" {
		return fmt.Sprintf("%s: %s", p.Pos, p.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", p.Pos, p.Key, p.Msg)
}

// Problems collects every problem of one configuration so they can be
// reported together. The zero value is ready to use.
type Problems struct {
	list []Problem
	// secrets are values of secret-looking keys (IsSecret): whatever code
	// writes a message, they are masked before it is recorded.
	secrets []string
}

func (ps *Problems) add(p Problem) {
	p.Msg = ps.mask(p.Msg)
	ps.list = append(ps.list, p)
}

// hideValues makes every later problem mask these values.
func (ps *Problems) hideValues(vs ...string) {
	for _, v := range vs {
		// A very short value would mask ordinary words; those are left to the
		// getters, which never quote secret keys' values.
		if len(v) >= 4 {
			ps.secrets = append(ps.secrets, v)
		}
	}
}

func (ps *Problems) mask(msg string) string {
	for _, v := range ps.secrets {
		msg = strings.ReplaceAll(msg, v, "(value hidden)")
	}
	return msg
}

// Add records a problem found outside a Context (agent-level checks).
func (ps *Problems) Add(p Problem) { ps.add(p) }

// Errors returns the problems that are errors, in file and line order.
func (ps *Problems) Errors() []Problem { return ps.filter(false) }

// Warnings returns the problems that are warnings, in file and line order.
func (ps *Problems) Warnings() []Problem { return ps.filter(true) }

func (ps *Problems) filter(warn bool) []Problem {
	var out []Problem
	for _, p := range ps.list {
		if p.Warning == warn {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Pos.File != out[j].Pos.File {
			return out[i].Pos.File < out[j].Pos.File
		}
		if out[i].Pos.Line != out[j].Pos.Line {
			return out[i].Pos.Line < out[j].Pos.Line
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// Err returns nil when there are no errors, else an *Error listing them all.
func (ps *Problems) Err() error {
	errs := ps.Errors()
	if len(errs) == 0 {
		return nil
	}
	return &Error{Problems: errs}
}

// Error is a configuration that must not start: every error found, one per line.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
