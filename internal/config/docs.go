package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// This file turns specs into the README's component tables, so that what a
// user reads about a key is what the code checks.

// DocKind is the specs of one kind of component, in the order to document them.
type DocKind struct {
	Kind  string // "channel", "sink processor"
	Specs []*Spec
}

// SummaryRows are one README table row per spec: | kind | `type` | doc |.
func SummaryRows(kinds []DocKind) []string {
	var out []string
	for _, k := range kinds {
		for _, s := range k.Specs {
			out = append(out, fmt.Sprintf("| %s | [`%s`](#%s) | %s |", k.Kind, s.Type, anchor(heading(k.Kind, s)), cell(s.Doc)))
		}
	}
	return out
}

// KeyTables is one section per spec listing its keys, then one per shared
// group the specs include, each group once.
func KeyTables(kinds []DocKind) string {
	var b strings.Builder
	var groups []*Group
	seen := map[*Group]bool{}
	for _, k := range kinds {
		for _, s := range k.Specs {
			fmt.Fprintf(&b, "#### %s\n\n", heading(k.Kind, s))
			if len(s.Classes) > 0 {
				fmt.Fprintf(&b, "Flume class: `%s`.", strings.Join(s.Classes, "`, `"))
			}
			if len(s.Keys) == 0 {
				b.WriteString(" No keys.\n\n")
				continue
			}
			b.WriteString("\n\n")
			writeKeyTable(&b, s.Keys)
			for _, d := range s.Keys {
				if g, ok := d.(*Group); ok && !seen[g] {
					seen[g] = true
					groups = append(groups, g)
				}
			}
		}
	}
	for i := 0; i < len(groups); i++ { // groups may include groups
		g := groups[i]
		fmt.Fprintf(&b, "#### %s\n\n%s\n\n", groupHeading(g), g.Doc)
		writeKeyTable(&b, g.Keys)
		for _, d := range g.Keys {
			if sub, ok := d.(*Group); ok && !seen[sub] {
				seen[sub] = true
				groups = append(groups, sub)
			}
		}
	}
	return b.String()
}

func heading(kind string, s *Spec) string { return fmt.Sprintf("%s %s", kind, s.Type) }

func groupHeading(g *Group) string { return g.Name + " keys" }

func writeKeyTable(b *strings.Builder, decls []Decl) {
	b.WriteString("| key | type | default | Flume | what it does |\n|---|---|---|---|---|\n")
	for _, decl := range decls {
		if g, ok := decl.(*Group); ok {
			fmt.Fprintf(b, "| [%s](#%s) | | | | %s |\n", groupHeading(g), anchor(groupHeading(g)), cell(g.Doc))
			continue
		}
		for _, d := range decl.defs() {
			fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s |\n", d.name, d.typeText(), d.defaultText(), d.status, cell(d.doc))
		}
	}
	b.WriteString("\n")
}

func (s Status) String() string {
	switch s {
	case Addition:
		return "flumed's"
	case Ignored:
		return "ignored"
	case Refused:
		return "refused"
	}
	return "yes"
}

var notInAnchor = regexp.MustCompile(`[^a-z0-9 _-]`)

// anchor is GitHub's anchor for a heading.
func anchor(h string) string {
	h = strings.ToLower(h)
	h = notInAnchor.ReplaceAllString(h, "")
	return strings.ReplaceAll(h, " ", "-")
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func (d *keyDef) typeText() string {
	switch d.kind {
	case kindInt, kindInt64:
		return "integer"
	case kindBytes:
		return "bytes"
	case kindBool:
		return "boolean"
	case kindFloat:
		return "number"
	case kindDuration:
		if d.unit == time.Millisecond {
			return "ms"
		}
		return "seconds"
	case kindOneOf:
		return "`" + strings.Join(d.choices, "`, `") + "`"
	case kindList:
		space, comma := strings.Contains(d.seps, " "), strings.Contains(d.seps, ",")
		switch {
		case space && comma:
			return "list (space- or comma-separated)"
		case comma:
			return "list (comma-separated)"
		}
		return "list (space-separated)"
	case kindPort:
		return "port"
	case kindIgnored, kindRefused:
		return ""
	case kindNested:
		return "keys of a nested component"
	}
	return "string"
}

func (d *keyDef) defaultText() string {
	switch {
	case d.defText != "":
		return d.defText
	case d.required:
		return "required"
	}
	switch v := d.def.(type) {
	case string:
		if v == "" {
			return ""
		}
		return "`" + v + "`"
	case int:
		return strconv.Itoa(v)
	case int64:
		if d.kind == kindBytes && v >= 1<<20 && v%(1<<20) == 0 {
			return fmt.Sprintf("%d (%d MiB)", v, v>>20)
		}
		return strconv.FormatInt(v, 10)
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case time.Duration:
		return strconv.FormatInt(int64(v/d.unit), 10)
	}
	return ""
}

// Samples are configurations of s for a test that runs a factory over
// every key the spec declares, to prove it reads none it does not declare:
// no key set; every key set to its default (or a value of its type); and
// that with every boolean flipped, so keys read only when a switch is on
// are read too. A family's placeholders are filled with "x".
func (s *Spec) Samples() []map[string]string {
	out := []map[string]string{{}, {}, {}}
	for _, d := range s.index().order {
		if d.kind == kindIgnored || d.kind == kindRefused || d.kind == kindNested {
			continue
		}
		name := d.name
		if d.family {
			name, _ = d.instance([]string{"x", "x", "x"}[:strings.Count(name, "<")+strings.Count(name, "*")])
		}
		v := d.sample()
		out[1][name], out[2][name] = v, v
		if b, ok := d.def.(bool); ok {
			out[2][name] = strconv.FormatBool(!b)
		}
	}
	return out
}

// sample is the default as written in a file, or a value of the key's type.
func (d *keyDef) sample() string {
	switch v := d.def.(type) {
	case string:
		if v != "" {
			return v
		}
		if d.kind == kindOneOf {
			return d.choices[0]
		}
		return "x"
	case int:
		if d.kind == kindPort {
			return "4141"
		}
		return strconv.Itoa(max(v, 1))
	case int64:
		return strconv.FormatInt(max(v, 1), 10)
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case time.Duration:
		return strconv.FormatInt(max(int64(v/d.unit), 1), 10)
	}
	return "x"
}
