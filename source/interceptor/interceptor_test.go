package interceptor

// Each interceptor (FLUME.md §2.15) with its keys and defaults, one table per
// interceptor: what it sets, what preserveExisting keeps, what it drops or
// rewrites. Interceptors are built through the registry from the keys a user
// writes under interceptors.<name>., and unknown or bad keys are reported.

import (
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/source/internal/sourcetest"
)

// buildInterceptor builds an interceptor of typ from key=value lines and fails
// on any configuration problem.
func buildInterceptor(t *testing.T, typ, snippet string) Interceptor {
	t.Helper()
	b, ok := Lookup(typ)
	if !ok {
		t.Fatalf("no interceptor %q", typ)
	}
	c := config.FromMap("a1.sources.r1.interceptors.i1.", sourcetest.Props(t, snippet))
	in, err := b(c, sourcetest.DiscardLog())
	if ps := sourcetest.Problems(c); err != nil || len(ps) > 0 {
		t.Fatalf("build %s: %v\n%s", typ, err, strings.Join(ps, "\n"))
	}
	return in
}

// interceptorProblems builds an interceptor expected to be misconfigured.
func interceptorProblems(t *testing.T, typ, snippet string) string {
	t.Helper()
	b, _ := Lookup(typ)
	c := config.FromMap("a1.sources.r1.interceptors.i1.", sourcetest.Props(t, snippet))
	_, err := b(c, sourcetest.DiscardLog())
	ps := sourcetest.Problems(c)
	if err == nil && len(ps) == 0 {
		t.Fatalf("%s accepted:\n%s", typ, snippet)
	}
	return strings.Join(ps, "\n")
}

// headersAfter runs in over one event with the given headers and returns its
// headers afterwards.
func headersAfter(in Interceptor, headers map[string]string) map[string]string {
	out := in.Intercept([]channel.Event{{Headers: maps.Clone(headers), Body: []byte("b")}})
	return out[0].Headers
}

type headerCase struct {
	name    string
	snippet string
	in      map[string]string
	want    map[string]string
}

func runHeaderCases(t *testing.T, typ string, cases []headerCase, fix func(Interceptor)) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := buildInterceptor(t, typ, tc.snippet)
			if fix != nil {
				fix(in)
			}
			if got := headersAfter(in, tc.in); !maps.Equal(got, tc.want) {
				t.Errorf("headers %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTimestampInterceptor(t *testing.T) {
	now := time.UnixMilli(1700000000123)
	runHeaderCases(t, "timestamp", []headerCase{
		{"sets epoch milliseconds under timestamp", ``, nil,
			map[string]string{"timestamp": "1700000000123"}},
		{"overwrites by default", ``, map[string]string{"timestamp": "1"},
			map[string]string{"timestamp": "1700000000123"}},
		{"preserveExisting keeps the old value", `preserveExisting = true`, map[string]string{"timestamp": "1"},
			map[string]string{"timestamp": "1"}},
		{"headerName renames it", `headerName = ts`, map[string]string{"x": "y"},
			map[string]string{"ts": "1700000000123", "x": "y"}},
	}, func(in Interceptor) { in.(*timestampInterceptor).now = func() time.Time { return now } })
}

func TestHostInterceptor(t *testing.T) {
	runHeaderCases(t, "host", []headerCase{
		{"sets host", ``, nil, map[string]string{"host": "10.1.2.3"}},
		{"overwrites by default", ``, map[string]string{"host": "old"}, map[string]string{"host": "10.1.2.3"}},
		{"preserveExisting keeps", `preserveExisting = true`, map[string]string{"host": "old"}, map[string]string{"host": "old"}},
		{"hostHeader renames it", `hostHeader = origin`, nil, map[string]string{"origin": "10.1.2.3"}},
	}, func(in Interceptor) { in.(*hostInterceptor).host = "10.1.2.3" })

	t.Run("useIP resolves to an address, useIP=false to a name", func(t *testing.T) {
		ip := buildInterceptor(t, "host", ``).(*hostInterceptor).host
		if ip == "" {
			t.Skip("this machine's host name does not resolve and it has no non-loopback address")
		}
		if net.ParseIP(ip) == nil {
			t.Errorf("useIP=true gave %q, not an address", ip)
		}
		if name := buildInterceptor(t, "host", `useIP = false`).(*hostInterceptor).host; name == "" {
			t.Error("useIP=false gave no name")
		}
	})
}

func TestStaticInterceptor(t *testing.T) {
	runHeaderCases(t, "static", []headerCase{
		{"defaults are key=value", ``, nil, map[string]string{"key": "value"}},
		{"preserveExisting is true by default", ``, map[string]string{"key": "old"}, map[string]string{"key": "old"}},
		{"preserveExisting=false overwrites", `preserveExisting = false`, map[string]string{"key": "old"},
			map[string]string{"key": "value"}},
		{"key and value", "key = dc\nvalue = eu-1", nil, map[string]string{"dc": "eu-1"}},
	}, nil)
}

func TestRemoveHeaderInterceptor(t *testing.T) {
	all := map[string]string{"a": "1", "b": "2", "c": "3", "xa": "4", "ax": "5"}
	runHeaderCases(t, "remove_header", []headerCase{
		{"no keys removes nothing", ``, all, all},
		{"withName removes one", `withName = a`, all, map[string]string{"b": "2", "c": "3", "xa": "4", "ax": "5"}},
		{"fromList splits on commas with spaces", `fromList = a , b,c`, all, map[string]string{"xa": "4", "ax": "5"}},
		{"fromListSeparator is a regex", "fromList = a|b\nfromListSeparator = \\|", all,
			map[string]string{"c": "3", "xa": "4", "ax": "5"}},
		{"matching must match the whole name", `matching = x.*`, all, map[string]string{"a": "1", "b": "2", "c": "3", "ax": "5"}},
		{"all three together", "withName = c\nfromList = b\nmatching = a.?", all, map[string]string{"xa": "4"}},
	}, nil)
	if p := interceptorProblems(t, "remove_header", `matching = (?<=a)b`); !strings.Contains(p, "not a valid regular expression") {
		t.Errorf("lookbehind not reported: %s", p)
	}
}

func TestUUIDInterceptor(t *testing.T) {
	cases := []struct {
		name, snippet string
		in            map[string]string
		header        string
		keep          string // expected unchanged value, or "" for a new UUID
		prefix        string
	}{
		{"sets a v4 uuid under id", ``, nil, "id", "", ""},
		{"preserveExisting is true by default", ``, map[string]string{"id": "mine"}, "id", "mine", ""},
		{"preserveExisting=false overwrites", `preserveExisting = false`, map[string]string{"id": "mine"}, "id", "", ""},
		{"headerName and prefix", "headerName = eventId\nprefix = host1-", nil, "eventId", "", "host1-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := headersAfter(buildInterceptor(t, "uuid", tc.snippet), tc.in)[tc.header]
			if tc.keep != "" {
				if got != tc.keep {
					t.Errorf("%s = %q, want %q kept", tc.header, got, tc.keep)
				}
				return
			}
			rest, ok := strings.CutPrefix(got, tc.prefix)
			id, err := uuid.Parse(rest)
			if !ok || err != nil || id.Version() != 4 {
				t.Errorf("%s = %q, want %q + a version 4 UUID", tc.header, got, tc.prefix)
			}
		})
	}
}

func TestRegexFilterInterceptor(t *testing.T) {
	bodies := []string{"INFO start", "ERROR disk", "warn: ERROR later", ""}
	cases := []struct {
		name, snippet string
		want          []string
	}{
		{"default .* keeps everything", ``, bodies},
		{"keeps bodies containing a match anywhere", `regex = ERROR`, []string{"ERROR disk", "warn: ERROR later"}},
		{"anchors work", `regex = ^ERROR`, []string{"ERROR disk"}},
		{"excludeEvents drops the matches", "regex = ERROR\nexcludeEvents = true", []string{"INFO start", ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var events []channel.Event
			for _, b := range bodies {
				events = append(events, channel.Event{Body: []byte(b)})
			}
			var got []string
			for _, e := range buildInterceptor(t, "regex_filter", tc.snippet).Intercept(events) {
				got = append(got, string(e.Body))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("kept %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRegexExtractorInterceptor(t *testing.T) {
	cases := []struct {
		name, snippet, body string
		want                map[string]string
	}{
		{"pass-through serializers name the groups in order",
			"regex = (\\w+):(\\d+)\nserializers = s1 s2\nserializers.s1.name = host\nserializers.s2.name = port",
			"connect db01:5432 now", map[string]string{"host": "db01", "port": "5432"}},
		{"only the first match counts",
			"regex = (\\d+)\nserializers = n\nserializers.n.name = num", "a 12 b 34", map[string]string{"num": "12"}},
		{"no match sets nothing",
			"regex = (\\d+)\nserializers = n\nserializers.n.name = num", "no digits", nil},
		{"groups beyond the serializers are ignored",
			"regex = (a)(b)(c)\nserializers = s\nserializers.s.name = first", "abc", map[string]string{"first": "a"}},
		{"a group that did not take part sets nothing",
			"regex = (a)|(b)\nserializers = x y\nserializers.x.name = x\nserializers.y.name = y", "b", map[string]string{"y": "b"}},
		{"the user guide's serializers.s1.type = DEFAULT is the pass-through one",
			"regex = (\\d):(\\d):(\\d)\nserializers = s1 s2 s3\nserializers.s1.type = DEFAULT\nserializers.s1.name = one\nserializers.s2.name = two\nserializers.s3.name = three",
			"1:2:3.4foobar5", map[string]string{"one": "1", "two": "2", "three": "3"}},
		{"explicit pass-through class name",
			"regex = (.+)\nserializers = s\nserializers.s.name = all\nserializers.s.type = " + passThroughSerializerClass,
			"xyz", map[string]string{"all": "xyz"}},
		{"millis serializer parses with a Joda pattern",
			"regex = at (\\S+)\nserializers = t\nserializers.t.name = timestamp\nserializers.t.type = " + millisSerializerClass +
				"\nserializers.t.pattern = yyyy-MM-dd'T'HH:mm:ss.SSSZ",
			"at 2023-11-14T22:13:20.123+0000 ok", map[string]string{"timestamp": "1700000000123"}},
		{"millis serializer leaves the header out when the text does not parse",
			"regex = (\\S+)\nserializers = t\nserializers.t.name = ts\nserializers.t.type = millis\nserializers.t.pattern = yyyy-MM-dd",
			"yesterday", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := buildInterceptor(t, "regex_extractor", tc.snippet)
			got := in.Intercept([]channel.Event{{Body: []byte(tc.body)}})[0].Headers
			if !maps.Equal(got, tc.want) {
				t.Errorf("headers %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRegexExtractorConfigurationMistakes(t *testing.T) {
	cases := []struct{ name, snippet, want string }{
		{"regex is required", "serializers = s\nserializers.s.name = n", "regex: required key is missing"},
		{"serializers are required", `regex = (a)`, "serializers: required key is missing"},
		{"a serializer needs a name", "regex = (a)\nserializers = s\nserializers.s.type = millis\nserializers.s.pattern = yyyy",
			"serializers.s.name: required key is missing"},
		{"millis needs a pattern", "regex = (a)\nserializers = s\nserializers.s.name = n\nserializers.s.type = millis",
			"serializers.s.pattern: required key is missing"},
		{"unsupported Joda letters are named", "regex = (a)\nserializers = s\nserializers.s.name = n\nserializers.s.type = millis\nserializers.s.pattern = EEE yyyy",
			"unsupported letter 'E'"},
		{"unknown serializer type", "regex = (a)\nserializers = s\nserializers.s.name = n\nserializers.s.type = com.example.Mine",
			"unknown serializer"},
		{"serializer configured but not listed", "regex = (a)\nserializers = s\nserializers.s.name = n\nserializers.t.name = m",
			"serializer t is configured but not listed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if p := interceptorProblems(t, "regex_extractor", tc.snippet); !strings.Contains(p, tc.want) {
				t.Errorf("problems do not mention %q:\n%s", tc.want, p)
			}
		})
	}
}

func TestSearchReplaceInterceptor(t *testing.T) {
	cases := []struct{ name, snippet, body, want string }{
		{"replaces every match", "searchPattern = o\nreplaceString = 0", "foo boo", "f00 b00"},
		{"no replaceString deletes the matches", `searchPattern = \s+`, "a b  c", "abc"},
		{"$1 inserts a group", "searchPattern = (\\w+)@(\\w+)\nreplaceString = $2 at $1", "me@host", "host at me"},
		{"${name} inserts a named group", "searchPattern = (?P<user>\\w+)@\\w+\nreplaceString = <${user}>", "me@host", "<me>"},
		{"$ digits stop where no group exists", "searchPattern = (a)\nreplaceString = $10", "a", "a0"},
		{"backslash quotes a dollar", "searchPattern = cost\nreplaceString = \\$5", "cost", "$5"},
		{"Go's $$ is not special: \\$ is the Java way", "searchPattern = x\nreplaceString = \\$\\$", "x", "$$"},
		{"no match keeps the body", "searchPattern = zzz\nreplaceString = y", "abc", "abc"},
		{"empty matches work like Java", "searchPattern = x*\nreplaceString = -", "abc", "-a-b-c-"},
		{"charset UTF-8 is accepted", "searchPattern = é\nreplaceString = e\ncharset = UTF-8", "café", "cafe"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := buildInterceptor(t, "search_replace", tc.snippet)
			got := in.Intercept([]channel.Event{{Body: []byte(tc.body)}})[0].Body
			if string(got) != tc.want {
				t.Errorf("body %q, want %q", got, tc.want)
			}
		})
	}
	bad := []struct{ name, snippet, want string }{
		{"searchPattern is required", `replaceString = x`, "searchPattern: required key is missing"},
		{"a bare $ is an error as in Java", "searchPattern = a\nreplaceString = $x", "illegal group reference"},
		{"a missing group is an error", "searchPattern = a\nreplaceString = $1", "no group 1"},
		{"an unknown named group is an error", "searchPattern = a\nreplaceString = ${nope}", "no group with name {nope}"},
		{"a trailing backslash is an error", "searchPattern = a\nreplaceString = x\\", "character to be escaped is missing"},
		{"charsets flumed cannot keep as bytes", "searchPattern = a\ncharset = UTF-16", "unsupported charset"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if p := interceptorProblems(t, "search_replace", tc.snippet); !strings.Contains(p, tc.want) {
				t.Errorf("problems do not mention %q:\n%s", tc.want, p)
			}
		})
	}
}

func TestInterceptorTypesListsEveryAlias(t *testing.T) {
	want := []string{"host", "regex_extractor", "regex_filter", "remove_header", "search_replace", "static", "timestamp", "uuid"}
	if got := Registry().Types(); !slices.Equal(got, want) {
		t.Errorf("Types() = %q", got)
	}
	for _, class := range []string{
		"org.apache.flume.interceptor.TimestampInterceptor$Builder",
		"org.apache.flume.interceptor.HostInterceptor$Builder",
		"org.apache.flume.interceptor.StaticInterceptor$Builder",
		"org.apache.flume.interceptor.RemoveHeaderInterceptor$Builder",
		"org.apache.flume.interceptor.RegexFilteringInterceptor$Builder",
		"org.apache.flume.interceptor.RegexExtractorInterceptor$Builder",
		"org.apache.flume.interceptor.SearchAndReplaceInterceptor$Builder",
		"org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder",
		"TIMESTAMP", "Regex_Filter",
	} {
		if _, ok := Lookup(class); !ok {
			t.Errorf("%s is not accepted", class)
		}
	}
}
