package config

// Config filters (Flume 1.10+) resolve ${f['key']}, ${f["key"]} and ${f[key]}
// in the values of an agent's components: env from the environment,
// external from the first line a command prints for the key. Flume's
// builder class names work as types. A placeholder that cannot be resolved
// (unset variable, failing or silent command, unknown filter) is an error,
// never a literal value; resolved values are masked in messages.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func filteredAgent(t *testing.T, env map[string]string, text string) *Agent {
	t.Helper()
	f := Build(Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }},
		Source{Name: "a.properties", Data: []byte(text)})
	return f.Agent("a1")
}

const filterAgent = `a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
`

func valueOf(t *testing.T, c *Context, key string) string {
	t.Helper()
	p, ok := c.lookup(key)
	if !ok {
		t.Fatalf("%s is not set", key)
	}
	return p.Value
}

func TestTheEnvironmentFilterResolvesEveryQuoteStyle(t *testing.T) {
	a := filteredAgent(t, map[string]string{"agent_name": "web-1", "ROOT": "/var/flume", "EMPTY": ""}, filterAgent+`
a1.configfilters = f1
a1.configfilters.f1.type = env
a1.sinks.k1.sink.directory = ${f1["ROOT"]}/agent_${f1['agent_name']}/${f1[agent_name]}
a1.sinks.k1.sink.pathManager.prefix = x${f1['EMPTY']}
`)
	if err := a.Problems.Err(); err != nil {
		t.Fatal(err)
	}
	c := a.Sinks[0].Context
	if got := valueOf(t, c, "sink.directory"); got != "/var/flume/agent_web-1/web-1" {
		t.Fatalf("sink.directory = %q", got)
	}
	if got := valueOf(t, c, "sink.pathManager.prefix"); got != "x" {
		t.Fatalf("an empty variable is a value (Flume's too): %q", got)
	}
}

func TestAnUnresolvablePlaceholderIsAnErrorNeverALiteral(t *testing.T) {
	a := filteredAgent(t, nil, filterAgent+`
a1.configfilters = f1 f2
a1.configfilters.f1.type = org.apache.flume.configfilter.EnvironmentVariableConfigFilter
a1.configfilters.f2.type = env
a1.sinks.k1.sink.directory = /data/agent_${f1['agent_name']}
a1.channels.c1.capacity = ${f3['cap']}
`)
	got := messages(a.Problems.Errors())
	want := []string{
		"a.properties:13: a1.sinks.k1.sink.directory: ${f1['agent_name']}: config filter f1 has no value (environment variable agent_name is not set)",
		"a.properties:14: a1.channels.c1.capacity: ${f3['cap']}: no config filter f3 in a1.configfilters (did you mean f1?)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestTheExternalFilterRunsTheCommandWithTheKey(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "resolve.sh")
	// Prints one line per key; "multi" prints two, "fail" fails, "none" prints nothing.
	if err := os.WriteFile(script, []byte(`#!/bin/sh
case "$2" in
  db_password) echo "s3cr3t-$1" ;;
  multi) printf 'first\r\nsecond\n' ;;
  fail) echo "vault sealed" >&2; exit 3 ;;
  none) ;;
esac
`), 0o755); err != nil {
		t.Fatal(err)
	}
	a := filteredAgent(t, nil, filterAgent+`
a1.configfilters = f1
a1.configfilters.f1.type = external
a1.configfilters.f1.command = `+script+` --prefix
a1.configfilters.f1.charset = UTF-8
a1.sinks.k1.sink.directory = /d/${f1['db_password']}
a1.sinks.k1.sink.pathManager.prefix = ${f1[multi]}
a1.sinks.k1.sink.pathManager.extension = ${f1['fail']}
a1.sinks.k1.sink.batchSize = ${f1['none']}
`)
	c := a.Sinks[0].Context
	if got := valueOf(t, c, "sink.directory"); got != "/d/s3cr3t---prefix" {
		t.Fatalf("sink.directory = %q", got)
	}
	if got := valueOf(t, c, "sink.pathManager.prefix"); got != "first" {
		t.Fatalf("the first line, as Flume: %q", got)
	}
	errs := strings.Join(messages(a.Problems.Errors()), "\n")
	for _, w := range []string{
		"a1.sinks.k1.sink.pathManager.extension: ${f1['fail']}: config filter f1 has no value (command " + script + " --prefix fail: exit status 3 (stderr: vault sealed))",
		"a1.sinks.k1.sink.batchSize: ${f1['none']}: config filter f1 has no value (command " + script + " --prefix none printed nothing)",
	} {
		if !strings.Contains(errs, w) {
			t.Errorf("errors lack %q:\n%s", w, errs)
		}
	}
	warns := strings.Join(messages(a.Problems.Warnings()), "\n")
	if !strings.Contains(warns, "printed more than one line; the first is used") {
		t.Errorf("warnings: %s", warns)
	}
	// A resolved secret is masked in every later message.
	a.Problems.add(Problem{Key: "x", Msg: "value s3cr3t---prefix is bad"})
	if all := strings.Join(messages(a.Problems.Errors()), "\n"); strings.Contains(all, "s3cr3t") {
		t.Fatalf("a filtered value is echoed: %s", all)
	}
}

func TestConfigFilterDefinitionsAreChecked(t *testing.T) {
	a := filteredAgent(t, nil, filterAgent+`
a1.configfilters = f1 f2 f4
a1.configfilters.f1.type = external
a1.configfilters.f2.type = enviroment
a1.configfilters.f2.comand = x
a1.configfilters.f3.type = env
a1.configfilters.f4.type = env
a1.configfilters.f4.command = x
`)
	got := strings.Join(messages(a.Problems.Errors()), "\n")
	for _, w := range []string{
		"a1.configfilters.f1.command: required key is missing",
		`a1.configfilters.f2.type: config filter type enviroment is not supported by flumed (supported: env, external)`,
		"a1.configfilters.f4.command: unknown key",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("errors lack %q:\n%s", w, got)
		}
	}
	warns := strings.Join(messages(a.Problems.Warnings()), "\n")
	if w := "a1.configfilters.f3.type: config filter f3 is not listed in a1.configfilters; its keys are ignored (as Flume does)"; !strings.Contains(warns, w) {
		t.Errorf("warnings lack %q:\n%s", w, warns)
	}
}
