package interceptor

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/source/internal/charset"
	"github.com/flumed/flumed/source/internal/logthrottle"
	"github.com/flumed/flumed/source/sourceapi"
)

// This file holds the interceptors that apply a regular expression to the
// body: regex_filter, regex_extractor and search_replace (FLUME.md §2.15).
// Flume uses java.util.regex; flumed uses Go's RE2, which accepts the common
// syntax but has no lookaround and no backreferences: such a pattern is a
// configuration error, never a silent mismatch.

// regexFilterInterceptor keeps the events whose body contains a match (or
// drops them, with excludeEvents). Like Java's find(), the match may be
// anywhere in the body.
type regexFilterInterceptor struct {
	re      *regexp.Regexp
	exclude bool
}

var (
	filterRegex   = config.String("regex", ".*", "events whose body contains a match are kept (RE2 syntax)")
	filterExclude = config.Bool("excludeEvents", false, "drop the matching events instead")
)

var regexFilterType = &config.Spec{Type: "regex_filter", Classes: []string{"org.apache.flume.interceptor.RegexFilteringInterceptor$Builder"},
	Doc: "regular expressions are Go's RE2: lookaround or backreferences are a configuration error", Keys: []config.Decl{filterRegex, filterExclude}}

func newRegexFilterInterceptor(c *config.Context, _ *slog.Logger) (Interceptor, error) {
	f := &regexFilterInterceptor{
		re:      compileRegex(c, filterRegex.Name(), filterRegex.Get(c), false),
		exclude: filterExclude.Get(c),
	}
	if f.re == nil {
		return nil, sourceapi.ErrConfig
	}
	return f, nil
}

func (f *regexFilterInterceptor) Intercept(events []channel.Event) []channel.Event {
	out := events[:0]
	for _, ev := range events {
		if f.re.Match(ev.Body) != f.exclude {
			out = append(out, ev)
		}
	}
	return out
}

// Serializer class names Flume's regex_extractor accepts in
// serializers.<s>.type; flumed also takes the short names.
const (
	passThroughSerializerClass = "org.apache.flume.interceptor.RegexExtractorInterceptorPassThroughSerializer"
	millisSerializerClass      = "org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer"
)

// regexExtractorInterceptor sets headers from the groups of the first match in
// the body: serializer i names the header for group i+1 and converts its text.
type regexExtractorInterceptor struct {
	re          *regexp.Regexp
	serializers []groupSerializer
	warn        *logthrottle.Log
}

type groupSerializer struct {
	header string
	// convert turns the group's text into the header value; nil is pass-through.
	convert func(string) (string, error)
}

var (
	extractorRegex       = config.String("regex", "", "the regular expression whose groups become headers (RE2 syntax)").Required()
	extractorSerializers = config.List("serializers", " ", "", "one serializer per group, in group order").Required()
	serializerName       = config.String("serializers.<s>.name", "", "the header set from the group; required")
	serializerType       = config.String("serializers.<s>.type", "passthrough", "passthrough, millis, or Flume's class name of either")
	serializerPattern    = config.String("serializers.<s>.pattern", "", "millis: the Joda-Time pattern the group is parsed with")
)

var regexExtractorType = &config.Spec{Type: "regex_extractor", Classes: []string{"org.apache.flume.interceptor.RegexExtractorInterceptor$Builder"},
	Doc:  "regular expressions are Go's RE2: lookaround or backreferences are a configuration error",
	Keys: []config.Decl{extractorRegex, extractorSerializers, serializerName, serializerType, serializerPattern}}

func newRegexExtractorInterceptor(c *config.Context, log *slog.Logger) (Interceptor, error) {
	x := &regexExtractorInterceptor{warn: logthrottle.New(log, logthrottle.DefaultEvery)}
	ok := true
	if src := extractorRegex.Get(c); src != "" {
		re, err := regexp.Compile(src)
		if err != nil {
			c.Errorf("regex", "not a valid regular expression (Go RE2 syntax: no lookaround, no backreferences): %v", err)
			ok = false
		}
		x.re = re
	} else {
		ok = false
	}
	names := extractorSerializers.Get(c)
	if len(names) == 0 {
		ok = false
	}
	listed := map[string]bool{}
	for _, s := range names {
		if listed[s] {
			c.Errorf("serializers", "serializer %s is listed twice", s)
			ok = false
			continue
		}
		listed[s] = true
		gs, good := buildSerializer(c, s)
		ok = ok && good
		x.serializers = append(x.serializers, gs)
	}
	for _, s := range c.Keys("serializers.") {
		if !listed[s] {
			sc := c.Sub("serializers." + s + ".")
			sc.Errorf(firstKey(c, "serializers."+s+"."), "serializer %s is configured but not listed in %s", s, c.FullKey("serializers"))
			ok = false
		}
	}
	if !ok {
		return nil, sourceapi.ErrConfig
	}
	return x, nil
}

// buildSerializer reads serializer s's keys (serializers.<s>.*).
func buildSerializer(c *config.Context, s string) (groupSerializer, bool) {
	key := func(k string) string { return "serializers." + s + "." + k }
	header, _ := serializerName.At(c, s)
	gs := groupSerializer{header: header}
	ok := gs.header != ""
	if !ok {
		c.Errorf(key("name"), "required key is missing")
	}
	typ, set := serializerType.At(c, s)
	if !set {
		typ = serializerType.Default()
	}
	switch typ {
	case passThroughSerializerClass, "passthrough", "DEFAULT": // DEFAULT: Flume's name for the pass-through one
	case millisSerializerClass, "millis":
		pattern, _ := serializerPattern.At(c, s)
		if pattern == "" {
			c.Errorf(key("pattern"), "required key is missing")
			return gs, false
		}
		layout, err := compileJoda(pattern)
		if err != nil {
			c.Errorf(key("pattern"), "%v", err)
			return gs, false
		}
		gs.convert = func(v string) (string, error) {
			t, err := layout.parse(v, nil)
			if err != nil {
				return "", err
			}
			return strconv.FormatInt(t.UnixMilli(), 10), nil
		}
	default:
		c.Errorf(key("type"), "unknown serializer %q (use %s or %s)", typ, passThroughSerializerClass, millisSerializerClass)
		ok = false
	}
	return gs, ok
}

func (x *regexExtractorInterceptor) Intercept(events []channel.Event) []channel.Event {
	for i := range events {
		m := x.re.FindSubmatchIndex(events[i].Body)
		if m == nil {
			continue
		}
		for g := 1; g < len(m)/2 && g <= len(x.serializers); g++ {
			if m[2*g] < 0 {
				continue // the group took no part in the match: Java puts null, Go cannot
			}
			s := x.serializers[g-1]
			v := string(events[i].Body[m[2*g]:m[2*g+1]])
			if s.convert != nil {
				conv, err := s.convert(v)
				if err != nil {
					x.warn.Warn(s.header, "regex_extractor cannot convert a match; header not set",
						slog.String("header", s.header), slog.Any("err", err))
					continue
				}
				v = conv
			}
			setHeader(&events[i], s.header, v, false)
		}
	}
	return events
}

// searchReplaceInterceptor rewrites the body with Java's String.replaceAll:
// every match of searchPattern is replaced by replaceString, where $n and
// ${name} insert groups and a backslash quotes the next character.
type searchReplaceInterceptor struct {
	re   *regexp.Regexp
	repl []replPiece
}

var (
	searchPattern = config.String("searchPattern", "", "the regular expression replaced everywhere in the body (RE2 syntax)").Required()
	replaceString = config.String("replaceString", "", "the replacement in Java's syntax: `$n` and `${name}` insert groups")
	searchCharset = config.String("charset", "UTF-8", "the body's charset: UTF-8, US-ASCII or ISO-8859-1")
)

var searchReplaceType = &config.Spec{Type: "search_replace", Classes: []string{"org.apache.flume.interceptor.SearchAndReplaceInterceptor$Builder"},
	Doc: "regular expressions are Go's RE2: lookaround or backreferences are a configuration error", Keys: []config.Decl{searchPattern, replaceString, searchCharset}}

func newSearchReplaceInterceptor(c *config.Context, _ *slog.Logger) (Interceptor, error) {
	s := &searchReplaceInterceptor{}
	ok := true
	if src := searchPattern.Get(c); src != "" {
		re, err := regexp.Compile(src)
		if err != nil {
			c.Errorf("searchPattern", "not a valid regular expression (Go RE2 syntax: no lookaround, no backreferences): %v", err)
			ok = false
		}
		s.re = re
	} else {
		ok = false
	}
	// Flume drops keys with empty values, so an absent replaceString means
	// "replace with nothing".
	repl := replaceString.Get(c)
	if s.re != nil {
		pieces, err := parseJavaReplacement(repl, s.re)
		if err != nil {
			c.Errorf("replaceString", "%v", err)
			ok = false
		}
		s.repl = pieces
	}
	if cs := searchCharset.Get(c); !charset.Supported(cs) {
		c.Errorf("charset", "unsupported charset %q (flumed supports UTF-8, US-ASCII and ISO-8859-1)", cs)
		ok = false
	}
	if !ok {
		return nil, sourceapi.ErrConfig
	}
	return s, nil
}

func (s *searchReplaceInterceptor) Intercept(events []channel.Event) []channel.Event {
	for i := range events {
		body := events[i].Body
		matches := s.re.FindAllSubmatchIndex(body, -1)
		if matches == nil {
			continue
		}
		out := make([]byte, 0, len(body))
		last := 0
		for _, m := range matches {
			out = append(out, body[last:m[0]]...)
			out = expandReplacement(out, s.repl, body, m)
			last = m[1]
		}
		events[i].Body = append(out, body[last:]...)
	}
	return events
}

// replPiece is one part of a parsed Java replacement string: literal text, or
// a group reference (group >= 0).
type replPiece struct {
	lit   string
	group int
}

// parseJavaReplacement parses a replacement with java.util.regex.Matcher's
// rules: "\x" is a literal x; "$" followed by digits refers to a group, taking
// as many digits as still name an existing group; "${name}" refers to a named
// group. Anything else after "$" is an error, as in Java.
func parseJavaReplacement(s string, re *regexp.Regexp) ([]replPiece, error) {
	var out []replPiece
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			out = append(out, replPiece{lit: string(lit), group: -1})
			lit = nil
		}
	}
	groups := re.NumSubexp()
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; ch {
		case '\\':
			i++
			if i >= len(s) {
				return nil, errors.New("character to be escaped is missing at the end")
			}
			lit = append(lit, s[i])
		case '$':
			i++
			if i >= len(s) {
				return nil, errors.New("illegal group reference: group index is missing at the end")
			}
			if s[i] == '{' {
				end := i + 1
				for end < len(s) && s[end] != '}' {
					end++
				}
				if end >= len(s) {
					return nil, errors.New("named capturing group is missing trailing '}'")
				}
				name := s[i+1 : end]
				idx := re.SubexpIndex(name)
				if idx < 0 {
					return nil, fmt.Errorf("no group with name {%s}", name)
				}
				flush()
				out = append(out, replPiece{group: idx})
				i = end
				continue
			}
			if s[i] < '0' || s[i] > '9' {
				return nil, fmt.Errorf("illegal group reference $%c (write \\$ for a literal dollar)", s[i])
			}
			ref := int(s[i] - '0')
			if ref > groups {
				return nil, fmt.Errorf("no group %d: the pattern has %d", ref, groups)
			}
			for i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
				next := ref*10 + int(s[i+1]-'0')
				if next > groups {
					break
				}
				ref = next
				i++
			}
			flush()
			out = append(out, replPiece{group: ref})
		default:
			lit = append(lit, ch)
		}
	}
	flush()
	return out, nil
}

// expandReplacement appends the replacement for match m of src to dst. A group
// that took no part in the match inserts nothing, as in Java.
func expandReplacement(dst []byte, pieces []replPiece, src []byte, m []int) []byte {
	for _, p := range pieces {
		if p.group < 0 {
			dst = append(dst, p.lit...)
			continue
		}
		if start, end := m[2*p.group], m[2*p.group+1]; start >= 0 {
			dst = append(dst, src[start:end]...)
		}
	}
	return dst
}
