package config

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Config filters (Flume 1.10+): an agent lists filters under configfilters
// and component values name them as ${f1['key']}, ${f1["key"]} or
// ${f1[key]} (key: letters, digits, '-' and '_'). Like Flume, the filters
// apply to the values of sources, channels, sinks and sink groups, each
// placeholder replaced by what its filter returns for the key:
//
//	env        the environment variable key
//	external   the first line the command prints when run with key as its
//	           last argument (split on blanks, no shell); charset UTF-8
//	           (also ISO-8859-1, US-ASCII)
//	hadoop     Hadoop's credential store: refused (no Hadoop client here)
//
// Unlike Flume, which keeps a placeholder literally when its filter returns
// nothing (an unset variable, a failing command), every such placeholder is
// an error, as is one naming a filter the agent does not list: a value is
// never used with a placeholder left in it. Values a filter returns are
// masked in every message, as secrets.

// filterRef is one ${name[key]} placeholder.
type filterRef struct {
	filter, key string
}

// parseFilterRef reads the inside of "${...}" as a config filter
// placeholder: name[key], name['key'] or name["key"].
func parseFilterRef(inner string) (filterRef, bool) {
	name, rest, ok := strings.Cut(inner, "[")
	if !ok || name == "" || strings.ContainsAny(name, ":${}") || !strings.HasSuffix(rest, "]") {
		return filterRef{}, false
	}
	key := rest[:len(rest)-1]
	if len(key) >= 2 && (key[0] == '\'' || key[0] == '"') && key[len(key)-1] == key[0] {
		key = key[1 : len(key)-1]
	}
	if key == "" {
		return filterRef{}, false
	}
	for _, r := range key {
		if !(r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return filterRef{}, false
		}
	}
	return filterRef{filter: name, key: key}, true
}

// configFilter resolves keys. ok is false when there is no value; why says
// why, without the value.
type configFilter interface {
	resolve(key string) (value string, ok bool, why string)
}

type envFilter struct{ env func(string) (string, bool) }

func (f envFilter) resolve(key string) (string, bool, string) {
	v, ok := f.env(key)
	return v, ok, "environment variable " + key + " is not set"
}

// externalTimeout bounds one run of an external filter's command: Flume
// waits forever, which would hang the agent's start.
const externalTimeout = 30 * time.Second

type externalFilter struct {
	argv    []string
	charset string // lower case
	warn    func(string)
}

func (f externalFilter) resolve(key string) (string, bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), externalTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.argv[0], append(f.argv[1:len(f.argv):len(f.argv)], key)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		if msg != "" {
			msg = " (stderr: " + msg + ")"
		}
		return "", false, fmt.Sprintf("command %s %s: %v%s", strings.Join(f.argv, " "), key, err, msg)
	}
	out := stdout.Bytes()
	if len(out) == 0 {
		return "", false, fmt.Sprintf("command %s %s printed nothing", strings.Join(f.argv, " "), key)
	}
	line, rest, _ := bytes.Cut(out, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(bytes.TrimSpace(rest)) > 0 {
		f.warn(fmt.Sprintf("command %s %s printed more than one line; the first is used, as Flume does", strings.Join(f.argv, " "), key))
	}
	switch f.charset {
	case "iso-8859-1", "us-ascii":
		rs := make([]rune, len(line))
		for i, b := range line {
			rs[i] = rune(b)
		}
		return string(rs), true, ""
	}
	if !utf8.Valid(line) {
		return "", false, fmt.Sprintf("command %s %s printed a line that is not UTF-8", strings.Join(f.argv, " "), key)
	}
	return string(line), true, ""
}

// The filter types, under Flume's aliases and class names.
var (
	envFilterClass      = "org.apache.flume.configfilter.EnvironmentVariableConfigFilter"
	externalFilterClass = "org.apache.flume.configfilter.ExternalProcessConfigFilter"
	hadoopFilterClass   = "org.apache.flume.configfilter.HadoopCredentialStoreConfigFilter"
)

// filterKeys are the keys each filter type takes besides type.
var filterKeys = map[string][]string{"env": nil, "external": {"command", "charset"}}

// configFilters builds the agent's filters from <agent>.configfilters and
// <agent>.configfilters.<name>.*, reporting problems; the result maps each
// listed filter that could be built to its resolver, and broken holds the
// listed ones that could not (their placeholders are not reported again).
// props are the agent's configfilters keys by full key.
func (t *tree) configFilters(props map[string]Prop) (filters map[string]configFilter, broken map[string]bool) {
	listKey := t.prefix + "configfilters"
	list, hasList := props[listKey]
	var names []string
	if hasList {
		names = strings.Fields(list.Value)
		if len(names) == 0 {
			t.errorf(list.Pos, listKey, "empty value")
		}
	}
	byFilter := map[string]map[string]Prop{}
	for k, p := range props {
		if k == listKey {
			continue
		}
		name, rel, _ := strings.Cut(strings.TrimPrefix(k, listKey+"."), ".")
		if name == "" || rel == "" {
			t.errorf(p.Pos, k, "unknown key (expected %s.<name>.<property>)", listKey)
			continue
		}
		if byFilter[name] == nil {
			byFilter[name] = map[string]Prop{}
		}
		byFilter[name][rel] = p
	}
	var unlisted []string
	for n := range byFilter {
		if !contains(names, n) {
			unlisted = append(unlisted, n)
		}
	}
	sort.Strings(unlisted)
	for _, n := range unlisted {
		first := firstProp(byFilter[n])
		msg := fmt.Sprintf("config filter %s is not listed in %s; its keys are ignored (as Flume does)", n, listKey)
		if best := closeName(n, names); best != "" {
			msg += fmt.Sprintf("; did you mean %s?", best)
		}
		t.warnf(first.Pos, first.Key, "%s", msg)
	}
	filters, broken = map[string]configFilter{}, map[string]bool{}
	defer func() {
		for _, n := range names {
			if filters[n] == nil {
				broken[n] = true
			}
		}
	}()
	for _, n := range names {
		keys := byFilter[n]
		typeKey := listKey + "." + n + ".type"
		typ, ok := keys["type"]
		if !ok {
			t.errorf(list.Pos, typeKey, "required key is missing (config filter %s is listed in %s)", n, listKey)
			continue
		}
		kind := strings.ToLower(strings.TrimSpace(typ.Value))
		switch strings.TrimSpace(typ.Value) {
		case envFilterClass:
			kind = "env"
		case externalFilterClass:
			kind = "external"
		case hadoopFilterClass:
			kind = "hadoop"
		}
		switch kind {
		case "hadoop":
			t.errorf(typ.Pos, typeKey, "the Hadoop credential store config filter is not supported by flumed (it has no Hadoop "+
				"client); use type = env, or type = external with a command that reads the store (e.g. `hadoop credential`)")
			continue
		case "env", "external":
		default:
			msg := fmt.Sprintf("config filter type %s is not supported by flumed (supported: env, external)", strings.TrimSpace(typ.Value))
			if best := closeName(kind, []string{"env", "external", "hadoop"}); best != "" && !strings.Contains(typ.Value, ".") {
				msg = fmt.Sprintf("unknown config filter type %q (did you mean %s?)", typ.Value, best)
			}
			t.errorf(typ.Pos, typeKey, "%s", msg)
			continue
		}
		bad := false
		for rel, p := range keys {
			if rel == "type" || contains(filterKeys[kind], rel) {
				continue
			}
			msg := "unknown key"
			if best := suggest(rel, filterKeys[kind]); best != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", best)
			}
			t.errorf(p.Pos, p.Key, "%s", msg)
			bad = true
		}
		if bad {
			continue
		}
		if kind == "env" {
			filters[n] = envFilter{env: t.f.env}
			continue
		}
		cmd, ok := keys["command"]
		argv := strings.Fields(cmd.Value)
		if !ok || len(argv) == 0 {
			t.errorf(typ.Pos, listKey+"."+n+".command", "required key is missing (the command an external config filter runs)")
			continue
		}
		charset := "utf-8"
		if cs, ok := keys["charset"]; ok {
			charset = strings.ToLower(strings.TrimSpace(cs.Value))
			switch charset {
			case "utf-8", "utf8", "iso-8859-1", "us-ascii":
			default:
				t.errorf(cs.Pos, cs.Key, "charset %s is not supported by flumed (UTF-8, ISO-8859-1 or US-ASCII)", cs.Value)
				continue
			}
		}
		pos, key := cmd.Pos, cmd.Key
		filters[n] = externalFilter{argv: argv, charset: charset, warn: func(msg string) { t.warnf(pos, key, "%s", msg) }}
	}
	return filters, broken
}

// applyFilters replaces the config filter placeholders of p's value. A
// placeholder that names no filter of the agent, or whose filter has no
// value, is an error (and the value is then not used: the agent does not
// start). Results are cached per filter and key, so a command runs once per
// key whatever the number of values using it.
func (t *tree) applyFilters(p Prop, filters map[string]configFilter, cache map[filterRef]string, broken map[string]bool) Prop {
	s := p.Value
	if !strings.Contains(s, "${") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], "${")
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		b.WriteString(s[i : i+j])
		i += j
		end := strings.IndexByte(s[i:], '}')
		ref, ok := filterRef{}, false
		if end > 0 {
			ref, ok = parseFilterRef(s[i+2 : i+end])
		}
		if !ok {
			b.WriteString("${")
			i += 2
			continue
		}
		literal := s[i : i+end+1]
		i += end + 1
		if v, done := cache[ref]; done {
			b.WriteString(v)
			continue
		}
		f, known := filters[ref.filter]
		switch {
		case broken[ref.filter]:
			// Its definition is reported already.
		case !known:
			msg := fmt.Sprintf("%s: no config filter %s in %sconfigfilters", literal, ref.filter, t.prefix)
			names := make([]string, 0, len(filters))
			for n := range filters {
				names = append(names, n)
			}
			sort.Strings(names)
			if best := closeName(ref.filter, names); best != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", best)
			}
			t.errorf(p.Pos, p.Key, "%s", msg)
		default:
			v, ok, why := f.resolve(ref.key)
			if !ok {
				t.errorf(p.Pos, p.Key, "%s: config filter %s has no value (%s)", literal, ref.filter, why)
				break
			}
			cache[ref] = v
			if len(v) >= 4 { // masking shorter strings would garble every message
				t.a.Problems.hideValues(v)
			}
			b.WriteString(v)
			continue
		}
		b.WriteString(literal) // reported: the agent will not start with it
	}
	p.Value = b.String()
	return p
}
