package config

// Contract: a Spec is the whole truth about a component's keys. Check
// reports, all at once, keys no declaration matches (with a "did you mean"
// drawn from the declared names), values that are not of their key's type,
// the warning of an ignored Flume key and a missing required key; a factory
// then reads typed values, the declared default when a key is unset or bad;
// reading a key the spec does not declare is a flumed bug, reported as an
// error. A family's placeholder may be bound to the names a component knows.
// Reading a context no spec was checked against is a flumed bug too.

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	testSize    = Int("size", 100, "how many")
	testWait    = Millis("wait", 30*time.Second, "how long")
	testMode    = OneOf("mode", "fast", []string{"fast", "safe"}, "how")
	testHost    = String("host", "", "where").Required()
	testDirs    = List("dirs", ",", "", "where else")
	testOn      = Bool("on", false, "whether").Flumed()
	testPrio    = Int("priority.<sink>", 0, "a sink's priority")
	testPenalty = Millis("maxpenalty", 30*time.Second, "the longest penalty")
	testSpec    = &Spec{Type: "test", Classes: []string{"org.example.Test"}, Doc: "a test component",
		Keys: []Decl{testSize, testWait, testMode, testHost, testDirs, testOn, testPrio, testPenalty,
			Ignore("old", ""), Ignore("older", "gone since 1.10; ignored"), Refuse("renamed", "Flume's old name: write size")}}
)

func checked(kv map[string]string, bind ...string) *Context {
	c := FromMap("a1.sinks.k1.", kv)
	if len(bind) > 0 {
		c.Bind("<sink>", bind...)
	}
	c.Check(testSpec)
	return c
}

func problemStrings(ps []Problem) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.Key+": "+p.Msg)
	}
	return out
}

func TestCheckReportsEveryProblemOfTheSpecAtOnce(t *testing.T) {
	c := checked(map[string]string{
		"sise": "5", "size": "x", "wait": "1.5", "mode": "fsat", "on": "yes",
		"old": "1", "older": "2", "priority.maxpenality": "10", "renamed": "3",
	}, "k1", "k2")
	wantErrs := []string{
		`a1.sinks.k1.host: required key is missing`, // at the component's first line
		`a1.sinks.k1.mode: must be one of fast, safe, not "fsat" (did you mean fast?)`,
		`a1.sinks.k1.on: not a boolean (true or false): "yes"`,
		`a1.sinks.k1.priority.maxpenality: unknown key (did you mean maxpenalty?)`,
		`a1.sinks.k1.renamed: Flume's old name: write size`, // refused, never ignored
		`a1.sinks.k1.sise: unknown key (did you mean size?)`,
		`a1.sinks.k1.size: not an integer: "x"`,
		`a1.sinks.k1.wait: not an integer: "1.5"`,
	}
	if got := problemStrings(c.Problems().Errors()); !reflect.DeepEqual(got, wantErrs) {
		t.Errorf("errors\n got %q\nwant %q", got, wantErrs)
	}
	wantWarn := []string{
		"a1.sinks.k1.old: known to Flume but not used by flumed; ignored",
		"a1.sinks.k1.older: gone since 1.10; ignored",
	}
	if got := problemStrings(c.Problems().Warnings()); !reflect.DeepEqual(got, wantWarn) {
		t.Errorf("warnings\n got %q\nwant %q", got, wantWarn)
	}
	// Bad values read as the defaults, never twice reported.
	before := len(c.Problems().Errors())
	if testSize.Get(c) != 100 || testWait.Get(c) != 30*time.Second || testMode.Get(c) != "fast" {
		t.Errorf("bad values did not read as defaults: %d %s %s", testSize.Get(c), testWait.Get(c), testMode.Get(c))
	}
	if len(c.Problems().Errors()) != before {
		t.Errorf("reading reported again: %q", problemStrings(c.Problems().Errors()))
	}
}

func TestAFactoryReadsTypedValuesAndTheDeclaredDefaults(t *testing.T) {
	c := checked(map[string]string{"host": "h", "wait": "250", "mode": "SAFE", "dirs": "/a, /b c,", "priority.k2": "7"}, "k1", "k2")
	if err := c.Problems().Err(); err != nil {
		t.Fatal(err)
	}
	if v, set := testSize.Lookup(c); v != 100 || set {
		t.Errorf("size = %d, %v; want the default 100, unset", v, set)
	}
	if testWait.Get(c) != 250*time.Millisecond || testMode.Get(c) != "safe" || testHost.Get(c) != "h" {
		t.Errorf("wait %s mode %s host %s", testWait.Get(c), testMode.Get(c), testHost.Get(c))
	}
	if got := testDirs.Get(c); !reflect.DeepEqual(got, []string{"/a", " /b c"}) {
		// Trimming is the factory's: a comma list keeps the spaces of a path.
		t.Errorf("dirs = %q", got)
	}
	if p, set := testPrio.At(c, "k2"); p != 7 || !set {
		t.Errorf("priority.k2 = %d, %v", p, set)
	}
	if _, set := testPrio.At(c, "k1"); set {
		t.Error("priority.k1 reads as set")
	}
	if got := testPrio.Instances(c); len(got) != 1 || got[0].Key != "priority.k2" || got[0].Names[0] != "k2" || got[0].Value != 7 {
		t.Errorf("instances %+v", got)
	}
}

func TestReadingAnUndeclaredKeyIsAFlumedBug(t *testing.T) {
	c := checked(map[string]string{"host": "h"})
	undeclared := Int("nope", 1, "not in the spec")
	if undeclared.Get(c) != 1 {
		t.Error("an undeclared key did not read as its default")
	}
	testPrio.Get(c) // a family read without its names
	got := problemStrings(c.Problems().Errors())
	if len(got) != 2 || !strings.Contains(got[0], "flumed bug") || !strings.Contains(got[1], "flumed bug") {
		t.Errorf("problems %q, want two flumed bugs", got)
	}
}

func TestAnUnboundPlaceholderMatchesAnyName(t *testing.T) {
	c := checked(map[string]string{"host": "h", "priority.anything": "3"})
	if err := c.Problems().Err(); err != nil {
		t.Fatal(err)
	}
}

func TestABoundFamilySuggestsItsInstances(t *testing.T) {
	c := checked(map[string]string{"host": "h", "priority.k4": "3", "priorty.k2": "1"}, "k1", "k2")
	want := []string{
		"a1.sinks.k1.priority.k4: unknown key (did you mean priority.k1?)",
		"a1.sinks.k1.priorty.k2: unknown key (did you mean priority.k2?)",
	}
	if got := problemStrings(c.Problems().Errors()); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestReadingAContextNoSpecCheckedIsABug(t *testing.T) {
	c := FromMap("a1.sources.r1.", map[string]string{"size": "5"})
	if c.Checked() || testSize.Get(c) != 100 {
		t.Errorf("checked %v size %d: want the default from an unchecked context", c.Checked(), testSize.Get(c))
	}
	want := []string{"a1.sources.r1.size: flumed bug: the factory reads key size before its context was checked against a spec"}
	if got := problemStrings(c.Problems().Errors()); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestASpecDeclaringAKeyTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	s := &Spec{Type: "twice", Keys: []Decl{Int("a", 1, ""), &Group{Name: "g", Keys: []Decl{String("a", "", "")}}}}
	s.index()
}

func TestSecretValuesAreNotEchoedByTypeErrors(t *testing.T) {
	spec := &Spec{Type: "s", Keys: []Decl{Int("keystore-password", 0, "")}}
	c := FromMap("a1.sinks.k1.", map[string]string{"keystore-password": "hunter2"})
	c.Check(spec)
	for _, p := range c.Problems().Errors() {
		if strings.Contains(p.String(), "hunter2") {
			t.Errorf("secret echoed: %s", p)
		}
	}
}

func TestAFamilyWithATrailingStarTakesWhatNoOtherKeyDeclares(t *testing.T) {
	topic := Int("kafka.topic.partitions", 1, "partitions")
	pass := String("kafka.*", "", "passed to the client as written")
	spec := &Spec{Type: "kafka", Keys: []Decl{topic, pass}}
	c := FromMap("a1.sinks.k1.", map[string]string{"kafka.topic.partitions": "3", "kafka.producer.acks": "all", "kafka.linger.ms": "5"})
	c.Check(spec)
	if err := c.Problems().Err(); err != nil {
		t.Fatal(err)
	}
	got := pass.Instances(c)
	if len(got) != 2 || got[0].Key != "kafka.linger.ms" || got[0].Names[0] != "linger.ms" || got[1].Value != "all" {
		t.Errorf("instances %+v", got)
	}
	if topic.Get(c) != 3 {
		t.Errorf("partitions %d", topic.Get(c))
	}
}

func TestNestedComponentsKeysAreCheckedByTheirOwnSpec(t *testing.T) {
	list := List("interceptors", " ", "", "the interceptors, in order")
	outer := &Spec{Type: "seq", Keys: []Decl{list, Nested("interceptors.<name>.*", "each interceptor's keys")}}
	inner := &Spec{Type: "static", Keys: []Decl{String("key", "", "the header"), String("value", "", "its value")}}
	c := FromMap("a1.sources.r1.", map[string]string{"interceptors": "i1", "interceptors.i1.type": "static",
		"interceptors.i1.key": "k", "interceptors.i1.valeu": "v"})
	c.Check(outer)
	for _, name := range list.Get(c) {
		sub := c.Sub("interceptors." + name + ".")
		if typ, _ := sub.Take("type"); typ == "static" { // resolved in the interceptors' registry
			sub.Check(inner)
		}
	}
	want := []string{"a1.sources.r1.interceptors.i1.valeu: unknown key (did you mean value?)"}
	if got := problemStrings(c.Problems().Errors()); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
