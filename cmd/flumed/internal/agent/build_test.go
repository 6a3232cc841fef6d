package agent

// Build turns a configured agent into components through the registries and
// refuses to build anything when the configuration has a problem: unknown
// component types get a "did you mean" over the registered names, every
// component's unknown keys are errors, batch sizes above a channel's
// transactionCapacity are errors (named by the component's own batch size
// key), and every problem of the file, the tree's and the components', is
// reported at once, as "file:line: full.key: problem" — also when a
// component's factory failed on a bad value: its misspelt keys come with it,
// unless the factory failed without recording why (then it may not have
// read its keys, and only its error is reported).

import (
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/sink"
	"github.com/flumed/flumed/source"
)

const pipeline = `a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
`

func TestAValidPipelineBuilds(t *testing.T) {
	a := agentFrom(t, pipeline, Options{})
	if a.Name() != "a1" || len(a.channels) != 1 || len(a.groups) != 1 || len(a.sources) != 1 {
		t.Fatalf("agent %+v", a)
	}
	if a.groups[0].name != "k1" {
		t.Errorf("a lone sink runs in its own group named after it, got %q", a.groups[0].name)
	}
}

func TestTypeNamesAreCaseInsensitiveAndFlumeClassNamesWork(t *testing.T) {
	text := strings.NewReplacer(
		"r1.type = seq", "r1.type = org.apache.flume.source.SequenceGeneratorSource",
		"c1.type = memory", "c1.type = MEMORY",
		"k1.type = null", "k1.type = Null",
	).Replace(pipeline)
	agentFrom(t, text, Options{})
}

func TestBuildProblems(t *testing.T) {
	cases := []struct {
		name string
		text string
		want []string
	}{
		{"unknown types get a did-you-mean over the registered names",
			strings.NewReplacer("type = seq", "type = sequ", "type = memory", "type = memroy", "type = null", "type = nul").Replace(pipeline),
			[]string{
				`t.properties:4: a1.sources.r1.type: unknown source type "sequ" (did you mean seq?)`,
				`t.properties:6: a1.channels.c1.type: unknown channel type "memroy" (did you mean memory?)`,
				`t.properties:7: a1.sinks.k1.type: unknown sink type "nul" (did you mean null?)`,
			}},
		{"Flume types flumed does not implement say so",
			strings.Replace(pipeline, "type = null", "type = hbase", 1),
			[]string{`t.properties:7: a1.sinks.k1.type: sink type hbase is not supported by flumed (supported: ` + strings.Join(realRegistries().sinks.Types(), ", ") + `)`}},
		{"unknown keys of every component",
			pipeline + "a1.sources.r1.batchSise = 5\na1.channels.c1.capacty = 10\na1.sinks.k1.batchsize = 5\n",
			[]string{
				"t.properties:9: a1.sources.r1.batchSise: unknown key (did you mean batchSize?)",
				"t.properties:10: a1.channels.c1.capacty: unknown key (did you mean capacity?)",
				"t.properties:11: a1.sinks.k1.batchsize: unknown key (did you mean batchSize?)",
			}},
		{"batch sizes above the channel's transactionCapacity",
			pipeline + "a1.channels.c1.transactionCapacity = 10\na1.sources.r1.batchSize = 20\na1.sinks.k1.batchSize = 50\n",
			[]string{
				"t.properties:10: a1.sources.r1.batchSize: batch size 20 is above channel c1's transactionCapacity 10",
				"t.properties:11: a1.sinks.k1.batchSize: batch size 50 is above channel c1's transactionCapacity 10",
			}},
		{"a default batch size above the transactionCapacity",
			pipeline + "a1.channels.c1.transactionCapacity = 10\n",
			[]string{"t.properties:7: a1.sinks.k1.batchSize: the default batch size 100 is above channel c1's transactionCapacity 10"}},
		{"the seed's misspelt maxpenalty",
			strings.Replace(pipeline, "a1.sinks = k1", "a1.sinks = k1 k2", 1) + `a1.sinks.k2.type = null
a1.sinks.k2.channel = c1
a1.sinkgroups = g1
a1.sinkgroups.g1.sinks = k1 k2
a1.sinkgroups.g1.processor.type = failover
a1.sinkgroups.g1.processor.priority.k1 = 10
a1.sinkgroups.g1.processor.priority.k2 = 5
a1.sinkgroups.g1.processor.priority.maxpenality = 10000
`,
			[]string{"t.properties:16: a1.sinkgroups.g1.processor.priority.maxpenality: unknown key (did you mean maxpenalty?)"}},
		{"duplicate failover priorities are reported once",
			strings.Replace(pipeline, "a1.sinks = k1", "a1.sinks = k1 k2", 1) + `a1.sinks.k2.type = null
a1.sinks.k2.channel = c1
a1.sinkgroups = g1
a1.sinkgroups.g1.sinks = k1 k2
a1.sinkgroups.g1.processor.type = failover
a1.sinkgroups.g1.processor.priority.k1 = 5
a1.sinkgroups.g1.processor.priority.k2 = 5
`,
			[]string{"t.properties:15: a1.sinkgroups.g1.processor.priority.k2: priority 5 is also given to sink k1 at t.properties:14; failover priorities must be unique"}},
		{"an unknown sink processor type",
			pipeline + "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1\na1.sinkgroups.g1.processor.type = failovr\n",
			[]string{`t.properties:11: a1.sinkgroups.g1.processor.type: unknown sink processor type "failovr" (did you mean failover?)`}},
		{"a failed source's misspelt key is reported with the problem that failed it",
			strings.Replace(pipeline, "type = seq", "type = netcat", 1) + "a1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = 99999\na1.sources.r1.max-line-lenght = 10\n",
			[]string{
				`t.properties:10: a1.sources.r1.port: not a port number (0-65535): "99999"`,
				"t.properties:11: a1.sources.r1.max-line-lenght: unknown key (did you mean max-line-length?)",
			}},
		{"a failed source's selector and interceptors are still checked",
			strings.Replace(pipeline, "type = seq", "type = netcat", 1) + "a1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = x\n" +
				"a1.sources.r1.selector.typ = replicating\na1.sources.r1.interceptors = i1\na1.sources.r1.interceptors.i1.type = timestamp\na1.sources.r1.interceptors.i1.preserveExisitng = true\n",
			[]string{
				`t.properties:10: a1.sources.r1.port: not a port number (0-65535): "x"`,
				"t.properties:11: a1.sources.r1.selector.typ: unknown key (did you mean type?)",
				"t.properties:14: a1.sources.r1.interceptors.i1.preserveExisitng: unknown key (did you mean preserveExisting?)",
			}},
		{"a failed sink's misspelt key is reported with the problem that failed it",
			strings.Replace(pipeline, "type = null", "type = avro", 1) + "a1.sinks.k1.hostname = 127.0.0.1\na1.sinks.k1.port = 0\na1.sinks.k1.batch-sise = 10\n",
			[]string{
				`t.properties:10: a1.sinks.k1.port: not a port number (1-65535): "0"`,
				"t.properties:11: a1.sinks.k1.batch-sise: unknown key (did you mean batch-size?)",
			}},
		{"a group with a failed member still has its processor keys checked",
			strings.Replace(pipeline, "a1.sinks = k1", "a1.sinks = k1 k2", 1) + `a1.sinks.k2.type = avro
a1.sinks.k2.channel = c1
a1.sinks.k2.hostname = 127.0.0.1
a1.sinks.k2.port = 99999
a1.sinkgroups = g1
a1.sinkgroups.g1.sinks = k1 k2
a1.sinkgroups.g1.processor.type = failover
a1.sinkgroups.g1.processor.priority.k2 = 10
a1.sinkgroups.g1.processor.maxpenality = 10000
`,
			[]string{
				`t.properties:12: a1.sinks.k2.port: not a port number (1-65535): "99999"`,
				"t.properties:17: a1.sinkgroups.g1.processor.maxpenality: unknown key (did you mean maxpenalty?)",
			}},
		{"a default batch size is reported under the component's own key",
			strings.NewReplacer("a1.sinks = k1", "a1.sinks = k1 k2", "k1.type = null", "k1.type = file_roll").Replace(pipeline) +
				`a1.channels.c1.transactionCapacity = 10
a1.sinks.k1.sink.directory = /nonexistent
a1.sinks.k2.type = avro
a1.sinks.k2.channel = c1
a1.sinks.k2.hostname = 127.0.0.1
a1.sinks.k2.port = 4141
`,
			[]string{
				"t.properties:7: a1.sinks.k1.sink.batchSize: the default batch size 100 is above channel c1's transactionCapacity 10",
				"t.properties:11: a1.sinks.k2.batch-size: the default batch size 100 is above channel c1's transactionCapacity 10",
			}},
		{"a group of two sinks without a processor type, pointed at by its first line",
			strings.Replace(pipeline, "a1.sinks = k1", "a1.sinks = k1 k2", 1) + "a1.sinks.k2.type = null\na1.sinks.k2.channel = c1\na1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1 k2\n",
			[]string{"t.properties:12: a1.sinkgroups.g1.processor.type: the default processor runs exactly one sink; group g1 has 2 (use failover or load_balance)"}},
		{"every problem at once: the tree's and the components'",
			strings.Replace(pipeline, "type = memory", "type = memroy", 1) + "a1.sinks.k1.batchSize = x\na1.sink.k1.type = null\nstray = 1\n",
			[]string{
				`t.properties:6: a1.channels.c1.type: unknown channel type "memroy" (did you mean memory?)`,
				`t.properties:9: a1.sinks.k1.batchSize: not an integer: "x"`,
				"t.properties:10: a1.sink.k1.type: unknown key (did you mean a1.sinks.k1.type?)",
				"t.properties:11: stray: not of the form <agent>.<property> (and no ${stray} uses it)",
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := buildErrors(t, tc.text); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tc.want, "\n     "))
			}
		})
	}
}

func TestSecretValuesNeverAppearInBuildErrors(t *testing.T) {
	const secret = "s3cr3t-value"
	text := pipeline + "a1.sinks.k1.batchSize = " + secret + "\na1.sinks.k1.ssl.password = " + secret + "\n"
	got := buildErrors(t, strings.Replace(text, "a1.sinks.k1.batchSize", "a1.sinks.k1.token.batchSize", 1))
	if len(got) == 0 {
		t.Fatal("no problems reported")
	}
	for _, m := range got {
		if strings.Contains(m, secret) {
			t.Errorf("secret echoed: %s", m)
		}
	}
}

func TestTheSeedAgentHasExactlyOneProblemItsMisspeltMaxpenalty(t *testing.T) {
	// The seed forwards with avro sinks: the test needs them registered.
	name := "../../../../testdata/config/broken/seed-failover.properties"
	f, err := config.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build(f.Agent("a1"), Options{})
	want := name + ":32: a1.sinkgroups.g1.processor.priority.maxpenality: unknown key (did you mean maxpenalty?)"
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}

func TestAFactoryThatFailsWithoutRecordingAProblemGetsOnlyItsError(t *testing.T) {
	// A component's keys are its spec's, so pluginKey is known whatever the
	// factory does: only the factory's error is reported.
	pluginKey := config.Int("pluginKey", 0, "a key of the plugin")
	reg := realRegistries()
	reg.sinks = wrapFactories(reg.sinks, func(f sink.Factory) sink.Factory { return f },
		config.Entry[sink.Factory]{Spec: &config.Spec{Type: "broken", Keys: []config.Decl{pluginKey}},
			New: func(string, *config.Context, *slog.Logger) (sink.Sink, error) {
				return nil, errors.New("cannot load the plugin")
			}})
	reg.sources = wrapFactories(reg.sources, func(f source.Factory) source.Factory { return f },
		config.Entry[source.Factory]{Spec: &config.Spec{Type: "broken", Keys: []config.Decl{pluginKey, source.ProcessorKeys}},
			New: func(string, *config.Context, *slog.Logger) (source.Source, error) {
				return nil, errors.New("cannot load the source plugin")
			}})
	for _, tc := range []struct{ kind, want string }{
		{"sinks.k1", "t.properties:7: a1.sinks.k1.type: cannot load the plugin"},
		{"sources.r1", "t.properties:4: a1.sources.r1.type: cannot load the source plugin"},
	} {
		text := strings.Replace(pipeline, tc.kind+".type = ", tc.kind+".type = broken\n#", 1) + "a1." + tc.kind + ".pluginKey = 1\n"
		ca := config.Build(config.Options{}, config.Source{Name: "t.properties", Data: []byte(text)}).Agent("")
		_, err := Build(ca, Options{lookup: reg})
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: got\n%v\nwant\n%s", tc.kind, err, tc.want)
		}
	}
}
