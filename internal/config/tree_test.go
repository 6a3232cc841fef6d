package config

// Agent builds one agent's component tree and checks what Flume checks (and
// forgives) in FLUME.md §1.1/§1.3, strictly: every structural problem of the
// file is an error reported at once, each as "file:line: full.key: problem".
// These tests build agents from .properties snippets and compare the exact
// messages.

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

// agentOf builds the named agent (or the only one, for "") from one snippet
// called a.properties.
func agentOf(t *testing.T, name, text string) *Agent {
	t.Helper()
	f := Build(Options{LookupEnv: func(string) (string, bool) { return "", false }},
		Source{Name: "a.properties", Data: []byte(text)})
	return f.Agent(name)
}

func messages(ps []Problem) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func sameMessages(t *testing.T, what string, got []Problem, want []string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if g := messages(got); !reflect.DeepEqual(g, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, strings.Join(g, "\n     "), strings.Join(want, "\n     "))
	}
}

const goodAgent = `a1.sources = r1
a1.channels = c1
a1.sinks = k1 k2
a1.sinkgroups = g1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
a1.sinks.k2.type = null
a1.sinks.k2.channel = c1
a1.sinkgroups.g1.sinks = k2 k1
a1.sinkgroups.g1.processor.type = failover
a1.sinkgroups.g1.processor.priority.k1 = 5
`

func TestAGoodAgentHasItsComponentsInListOrder(t *testing.T) {
	a := agentOf(t, "", goodAgent)
	if err := a.Err(); err != nil {
		t.Fatal(err)
	}
	if a.Name != "a1" || len(a.Sources) != 1 || len(a.Channels) != 1 || len(a.Sinks) != 2 || len(a.SinkGroups) != 1 {
		t.Fatalf("agent %+v", a)
	}
	r1 := a.Sources[0]
	if r1.Name != "r1" || r1.Type != "seq" || !reflect.DeepEqual(r1.Channels, []string{"c1"}) || r1.Context.Prefix() != "a1.sources.r1." {
		t.Errorf("source %+v", r1)
	}
	if a.Sinks[0].Name != "k1" || a.Sinks[1].Name != "k2" || a.Sink("k2").Type != "null" || a.Sink("k2").Channels[0] != "c1" {
		t.Errorf("sinks %+v %+v", a.Sinks[0], a.Sinks[1])
	}
	g := a.SinkGroups[0]
	g.Processor.Check(&Spec{Type: "failover", Keys: []Decl{testPrio, testPenalty}})
	if p, _ := testPrio.At(g.Processor, "k1"); !reflect.DeepEqual(g.Sinks, []string{"k2", "k1"}) || g.ProcessorType != "failover" || p != 5 {
		t.Errorf("group %+v", g)
	}
	// type and channels were read by the tree, so they are not unknown keys.
	r1.Context.Check(&Spec{Type: "seq"})
	a.Channels[0].Context.Check(&Spec{Type: "memory"})
	if err := a.Err(); err != nil {
		t.Fatal(err)
	}
}

// at is a message expected at the first line of the snippet that starts with
// line: "a.properties:<n>: " + msg.
type at struct{ line, msg string }

func expand(t *testing.T, text string, ats []at) []string {
	t.Helper()
	out := []string{}
	for _, a := range ats {
		n := 0
		for i, l := range strings.Split(text, "\n") {
			if a.line != "" && strings.HasPrefix(l, a.line) {
				n = i + 1
				break
			}
		}
		if n == 0 && a.line != "" {
			t.Fatalf("no line %q in the snippet", a.line)
		}
		if n == 0 {
			out = append(out, "a.properties: "+a.msg)
			continue
		}
		out = append(out, fmt.Sprintf("a.properties:%d: %s", n, a.msg))
	}
	return out
}

func TestStructuralProblems(t *testing.T) {
	// one is a valid agent to break in one place each.
	one := func(edits ...string) string {
		lines := map[string]string{
			"a1.sources":             "r1",
			"a1.channels":            "c1",
			"a1.sinks":               "k1",
			"a1.sources.r1.type":     "seq",
			"a1.sources.r1.channels": "c1",
			"a1.channels.c1.type":    "memory",
			"a1.sinks.k1.type":       "null",
			"a1.sinks.k1.channel":    "c1",
		}
		order := []string{"a1.sources", "a1.channels", "a1.sinks", "a1.sources.r1.type", "a1.sources.r1.channels", "a1.channels.c1.type", "a1.sinks.k1.type", "a1.sinks.k1.channel"}
		var extra []string
		for _, e := range edits {
			k, v, _ := strings.Cut(e, "=")
			k = strings.TrimSpace(k)
			if _, ok := lines[k]; !ok {
				extra = append(extra, e)
				continue
			}
			lines[k] = strings.TrimSpace(v)
		}
		var b strings.Builder
		for _, k := range order {
			if v := lines[k]; v != "-" {
				fmt.Fprintf(&b, "%s = %s\n", k, v)
			}
		}
		for _, e := range extra {
			b.WriteString(e + "\n")
		}
		return b.String()
	}
	fills := func(ch string) at {
		return at{"a1.channels." + ch + ".type", "a1.channels." + ch + ": no sink takes from channel " + ch + ": it will fill up and then refuse events"}
	}
	cases := []struct {
		name  string
		agent string
		text  string
		errs  []at
		warns []at
	}{
		{"a listed source without a type", "", one("a1.sources.r1.type = -"),
			[]at{{"a1.sources =", "a1.sources.r1.type: required key is missing (source r1 is listed in a1.sources)"}}, nil},
		{"a source without channels", "", one("a1.sources.r1.channels = -"),
			[]at{{"a1.sources =", "a1.sources.r1.channels: required key is missing (a source puts into at least one channel)"}}, nil},
		{"a sink without a channel", "", one("a1.sinks.k1.channel = -"),
			[]at{{"a1.sinks =", "a1.sinks.k1.channel: required key is missing (a sink takes from one channel)"}},
			[]at{fills("c1")}},
		{"a sink naming an unknown channel", "", one("a1.sinks.k1.channel = cl"),
			[]at{{"a1.sinks.k1.channel", "a1.sinks.k1.channel: unknown channel cl (not listed in a1.channels); did you mean c1?"}},
			[]at{fills("c1")}},
		{"a sink with two channels", "", one("a1.channels = c1 c2", "a1.sinks.k1.channel = c1 c2", "a1.channels.c2.type = memory"),
			[]at{{"a1.sinks.k1.channel", "a1.sinks.k1.channel: a sink takes from exactly one channel, not 2 (c1 c2)"}}, nil},
		{"a source naming an unknown channel", "", one("a1.sources.r1.channels = c1 c9"),
			[]at{{"a1.sources.r1.channels", "a1.sources.r1.channels: unknown channel c9 (not listed in a1.channels); did you mean c1?"}}, nil},
		{"a channel nobody uses", "", one("a1.channels = c1 c2", "a1.channels.c2.type = memory"),
			[]at{{"a1.channels.c2.type", "a1.channels.c2: channel c2 is not used by any source or sink"}}, nil},
		{"a component with keys but not listed is ignored with a warning, as Flume ignores it", "", one("a1.sinks.k2.channel = c1", "a1.sinks.k2.type = null"),
			nil, []at{{"a1.sinks.k2.channel", "a1.sinks.k2.channel: sink k2 is not listed in a1.sinks; its keys are ignored (as Flume does); did you mean k1?"}}},
		{"the user guide's taildir example with its stray ri.maxBatchCount", "", one("a1.sources.r1.type = TAILDIR",
			"a1.sources.r1.filegroups = f1", "a1.sources.r1.filegroups.f1 = /var/log/test1/example.log", "a1.sources.ri.maxBatchCount = 1000"),
			nil, []at{{"a1.sources.ri.maxBatchCount", "a1.sources.ri.maxBatchCount: source ri is not listed in a1.sources; its keys are ignored (as Flume does); did you mean r1?"}}},
		{"keys outside the hierarchy", "", one("a1.sink.k1.batchSize = 5", "a1.sinks.k1 = x", "nodot = 1", "b.c = 2"),
			[]at{
				{"a1.sink.k1", "a1.sink.k1.batchSize: unknown key (did you mean a1.sinks.k1.batchSize?)"},
				{"a1.sinks.k1 =", "a1.sinks.k1: unknown key (expected a1.sinks.<name>.<property>)"},
				{"nodot", "nodot: not of the form <agent>.<property> (and no ${nodot} uses it)"},
				{"b.c", "b.c: b is not an agent of this configuration (it has no b.sources, .channels or .sinks)"}}, nil},
		{"keys used by ${key} may stand outside any agent", "", one("a1.sinks.k1.type = ${sink.type}", "sink.type = null"), nil, nil},
		{"an empty type is an error; another empty value is dropped with a warning, as Flume drops it", "", one("a1.channels.c1.type =", "a1.sinks.k1.batchSize = "),
			[]at{{"a1.channels.c1.type", "a1.channels.c1.type: empty value"}},
			[]at{{"a1.sinks.k1.batchSize", "a1.sinks.k1.batchSize: empty value; ignored, as Flume does (the key's default applies)"}}},
		{"search_replace's empty replaceString from Flume's user guide is accepted", "", one(
			"a1.sources.r1.interceptors.i1.replaceString = "),
			nil, []at{{"a1.sources.r1.interceptors.i1.replaceString", "a1.sources.r1.interceptors.i1.replaceString: empty value; ignored, as Flume does (the key's default applies)"}}},
		{"an empty channel value of a sink is reported once, as empty, not again as missing", "", one("a1.sinks.k1.channel ="),
			[]at{{"a1.sinks.k1.channel", "a1.sinks.k1.channel: empty value"}}, []at{fills("c1")}},
		{"an empty channels value of a source is reported once, as empty, not again as missing", "", one("a1.sources.r1.channels ="),
			[]at{{"a1.sources.r1.channels", "a1.sources.r1.channels: empty value"}}, nil},
		{"an empty sinks value of a sink group is reported once, as empty, not again as missing", "", one("a1.sinkgroups = g1", "a1.sinkgroups.g1.sinks ="),
			[]at{{"a1.sinkgroups.g1.sinks", "a1.sinkgroups.g1.sinks: empty value"}}, nil},
		{"an empty list is reported once, its components not again as unlisted", "", one("a1.sinks ="),
			[]at{{"a1.sinks =", "a1.sinks: empty value"}}, []at{fills("c1")}},
		{"sink groups: unknown sinks, a sink in two groups, a missing sinks key, unknown group keys", "",
			one("a1.sinks = k1 k2", "a1.sinkgroups = g1 g2 g3", "a1.sinks.k2.type = null", "a1.sinks.k2.channel = c1",
				"a1.sinkgroups.g1.sinks = k1 k3", "a1.sinkgroups.g2.sinks = k2 k1", "a1.sinkgroups.g3.processor.type = failover", "a1.sinkgroups.g2.sinkz = k2"),
			[]at{
				{"a1.sinkgroups =", "a1.sinkgroups.g3.sinks: required key is missing (sink group g3 is listed in a1.sinkgroups)"},
				{"a1.sinkgroups.g1.sinks", "a1.sinkgroups.g1.sinks: unknown sink k3 (not listed in a1.sinks); did you mean k1?"},
				{"a1.sinkgroups.g2.sinks", "a1.sinkgroups.g2.sinks: sink k1 is already in sink group g1 (a sink belongs to at most one group)"},
				{"a1.sinkgroups.g2.sinkz", "a1.sinkgroups.g2.sinkz: unknown key (did you mean sinks?)"}}, nil},
		{"a name listed twice", "", one("a1.sinks = k1 k1", "a1.sources.r1.channels = c1 c1"),
			[]at{{"a1.sinks =", "a1.sinks: sink k1 is listed twice"}, {"a1.sources.r1.channels", "a1.sources.r1.channels: channel c1 is named twice"}}, nil},
		{"a key set twice in one file warns naming both lines", "", one("a1.sinks.k1.batchSize = 1", "a1.sinks.k1.batchSize = 2"),
			nil, []at{{"a1.sinks.k1.batchSize = 2", "a1.sinks.k1.batchSize: set again; this line replaces line 9"}}},
		{"a listed config filter needs a type", "", one("a1.configfilters = f1"),
			[]at{{"a1.configfilters", "a1.configfilters.f1.type: required key is missing (config filter f1 is listed in a1.configfilters)"}}, nil},
		{"a placeholder naming no config filter is an error, never a literal value", "", one("a1.sinks.k1.type = ${f1['sink_type']}"),
			[]at{{"a1.sinks.k1.type", "a1.sinks.k1.type: ${f1['sink_type']}: no config filter f1 in a1.configfilters"}}, nil},
		{"the Hadoop credential store filter is refused", "", one("a1.configfilters = f1", "a1.configfilters.f1.type = hadoop",
			"a1.configfilters.f1.credential.provider.path = jceks://file/x.jceks"),
			[]at{{"a1.configfilters.f1.type", "a1.configfilters.f1.type: the Hadoop credential store config filter is not supported by flumed (it has no Hadoop client); use type = env, or type = external with a command that reads the store (e.g. `hadoop credential`)"}}, nil},
		{"-n naming no agent", "a2", goodAgent,
			[]at{{"", "no agent a2 in the configuration (it defines a1; did you mean a1?)"}}, nil},
		{"several agents and no -n", "", goodAgent + "b1.channels = c1\nb1.channels.c1.type = memory\n",
			[]at{{"", "the configuration defines agents a1, b1; choose one with -n"}}, nil},
		{"a file without agents", "", "x.y = 1\n",
			[]at{{"", "no agent defined (no <agent>.sources, .channels or .sinks keys)"}, {"x.y", "x.y: x is not an agent of this configuration (it has no x.sources, .channels or .sinks)"}}, nil},
		{"the keys of other agents are left alone", "b1", goodAgent + strings.ReplaceAll(one(), "a1.", "b1."), nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := agentOf(t, tc.agent, tc.text)
			sameMessages(t, "errors", a.Problems.Errors(), expand(t, tc.text, tc.errs))
			sameMessages(t, "warnings", a.Problems.Warnings(), expand(t, tc.text, tc.warns))
		})
	}
}

func TestARequiredKeyWrittenEmptyIsReportedOnceAsEmpty(t *testing.T) {
	a := agentOf(t, "", `a1.sources = r1
a1.channels = c1
a1.sources.r1.type = netcat
a1.sources.r1.channels = c1
a1.sources.r1.bind =
a1.channels.c1.type = memory
a1.sinkgroups = g1
a1.sinkgroups.g1.processor.priority.k1 =
`)
	r1 := a.Sources[0].Context
	bind, port := String("bind", "", "").Required(), Port("port", "").Required()
	r1.Check(&Spec{Type: "netcat", Keys: []Decl{bind, port}})
	if v := bind.Get(r1); v != "" {
		t.Errorf("bind reads %q, want empty", v)
	}
	g := a.SinkGroups[0].Processor
	g.Check(&Spec{Type: "failover", Keys: []Decl{testPrio}})
	if _, set := testPrio.At(g, "k1"); set {
		t.Errorf("an empty processor key reads as set")
	}
	sameMessages(t, "errors", a.Problems.Errors(), []string{
		"a.properties:3: a1.sources.r1.port: required key is missing",
		"a.properties:5: a1.sources.r1.bind: empty value (a required key)",
		"a.properties:7: a1.sinkgroups.g1.sinks: required key is missing (sink group g1 is listed in a1.sinkgroups)",
	})
	sameMessages(t, "warnings", a.Problems.Warnings(), []string{
		"a.properties:5: a1.sources.r1.bind: empty value; ignored, as Flume does (the key's default applies)",
		"a.properties:6: a1.channels.c1: no sink takes from channel c1: it will fill up and then refuse events",
		"a.properties:8: a1.sinkgroups.g1.processor.priority.k1: empty value; ignored, as Flume does (the key's default applies)",
	})
}

func TestEveryProblemOfABrokenFileIsReportedAtOnce(t *testing.T) {
	f, err := Load("../../testdata/config/broken.properties")
	if err != nil {
		t.Fatal(err)
	}
	a := f.Agent("a1")
	p := "../../testdata/config/broken.properties:"
	sameMessages(t, "errors", a.Problems.Errors(), []string{
		p + "2: a1.sources.r1.channels: required key is missing (a source puts into at least one channel)",
		p + "3: a1.channels.c3: channel c3 is not used by any source or sink",
		p + "3: a1.channels.c3.type: required key is missing (channel c3 is listed in a1.channels)",
		p + "4: a1.sinks.k2.channel: required key is missing (a sink takes from one channel)",
		p + "10: a1.sources.r2.channels: unknown channel c9 (not listed in a1.channels); did you mean c1?",
		p + "21: a1.sinks.k3.channel: a sink takes from exactly one channel, not 2 (c1 c2)",
		p + "24: a1.sinkgroups.g2.sinks: sink k1 is already in sink group g1 (a sink belongs to at most one group)",
		p + "24: a1.sinkgroups.g2.sinks: unknown sink k4 (not listed in a1.sinks); did you mean k1?",
		p + "29: a1.sink.k1.batchSize: unknown key (did you mean a1.sinks.k1.batchSize?)",
		p + "31: port: not of the form <agent>.<property> (and no ${port} uses it)",
	})
	sameMessages(t, "warnings", a.Problems.Warnings(), []string{
		p + "28: a1.sinks.k5.type: sink k5 is not listed in a1.sinks; its keys are ignored (as Flume does); did you mean k1?",
		p + "30: a1.channels.c1.capacity: empty value; ignored, as Flume does (the key's default applies)",
	})
}

func TestTheSeedsMisspeltMaxpenaltyGetsADidYouMean(t *testing.T) {
	f, err := Load("../../testdata/config/seed-failover.properties")
	if err != nil {
		t.Fatal(err)
	}
	a := f.Agent("a1")
	if err := a.Err(); err != nil {
		t.Fatal(err)
	}
	// The failover processor's keys (FLUME.md §2.13), <sink> bound to the group's.
	g := a.SinkGroups[0]
	g.Processor.Bind("<sink>", g.Sinks...)
	g.Processor.Check(&Spec{Type: "failover", Keys: []Decl{testPrio, testPenalty}})
	sameMessages(t, "errors", a.Problems.Errors(), []string{
		"../../testdata/config/seed-failover.properties:32: a1.sinkgroups.g1.processor.priority.maxpenality: unknown key (did you mean maxpenalty?)",
	})
}

func TestSecretValuesNeverAppearInMessages(t *testing.T) {
	const secret = "hunter2-s3cr3t"
	text := goodAgent +
		"a1.sinks.k1.truststore-password = " + secret + "\n" +
		"a1.sinks.k1.truststore-password = " + secret + "\n" +
		"a1.sinks.k1.api.token = " + secret + "\n" +
		"a1.sinks.k1.secretKey = ${env:NOPE}" + secret + "\n" +
		"a1.sinks.k9.password = " + secret + "\n"
	a := agentOf(t, "a1", text)
	k1 := a.Sink("k1").Context
	k1.Check(&Spec{Type: "null", Keys: []Decl{Int("truststore-password", 0, ""), Bool("api.token", false, ""),
		OneOf("secretKey", "x", []string{"x", "y"}, "")}})
	// A careless component quoting the value itself is masked too.
	k1.Errorf("truststore-password", "cannot open truststore with password %q", secret)
	all := append(a.Problems.Errors(), a.Problems.Warnings()...)
	if len(all) < 7 {
		t.Fatalf("expected a problem per secret key, got %s", messages(all))
	}
	for _, m := range messages(all) {
		if strings.Contains(m, secret) || strings.Contains(m, "hunter") {
			t.Errorf("secret echoed: %s", m)
		}
	}
}

func TestTheExampleAgentIsValid(t *testing.T) {
	name := "../../testdata/example/agent.properties"
	if _, err := os.Stat(name); err != nil {
		t.Skip("the bundled example is not there yet")
	}
	f, err := Load(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Agent("a1").Err(); err != nil {
		t.Fatal(err)
	}
}
