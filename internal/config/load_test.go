package config

// Load merges files in order (a later file's key wins, without a warning:
// that is what an override file is for), trims keys and values as Flume does,
// and substitutes ${...} in values deterministically: ${env:X}, ${sys:X},
// bare ${key} against the whole merged configuration (nested, recursive),
// ${x:-default}, $${x} for a literal. What does not resolve stays literal
// with a warning; a cycle is an error.

import (
	"os"
	"path/filepath"
	"testing"
)

func build(env map[string]string, srcs ...Source) *File {
	return Build(Options{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		System:    map[string]string{"flume.port": "41414"},
	}, srcs...)
}

func TestLaterFilesOverrideEarlierOnes(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.properties")
	override := filepath.Join(dir, "override.properties")
	if err := os.WriteFile(base, []byte("a1.channels = c1\na1.channels.c1.type = memory\na1.channels.c1.capacity = 10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(override, []byte("# ops override\na1.channels.c1.capacity = 500\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(base, override)
	if err != nil {
		t.Fatal(err)
	}
	p := f.Props["a1.channels.c1.capacity"]
	if p.Value != "500" || p.Pos != (Pos{File: override, Line: 2}) {
		t.Fatalf("merged %+v", p)
	}
	if ws := f.Problems.Warnings(); len(ws) != 0 {
		t.Fatalf("an override is not worth a warning: %v", ws)
	}
	if got := f.Keys(); len(got) != 3 || got[2] != "a1.channels.c1.capacity" {
		t.Fatalf("keys in definition order: %v", got)
	}
}

func TestAMissingFileIsAnError(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.properties")); err == nil {
		t.Fatal("no error for a missing file")
	}
}

func TestKeysAndValuesAreTrimmedAsFlumeDoes(t *testing.T) {
	f := build(nil, Source{Name: "a", Data: []byte("a1.x = value \\t\\u0020\n\\u0020a1.y\\u0020 = 1")})
	if f.Props["a1.x"].Value != "value" || f.Props["a1.y"].Value != "1" {
		t.Fatalf("%+v", f.Props)
	}
}

func TestSubstitution(t *testing.T) {
	env := map[string]string{"NC_PORT": "44444", "HOST": "collector", "WHICH": "HOST"}
	cases := []struct {
		name, text, key, want string
		problems              []string
	}{
		{"environment variables", "a1.p = ${env:NC_PORT}", "a1.p", "44444", nil},
		{"-D properties", "a1.p = ${sys:flume.port}", "a1.p", "41414", nil},
		{"another key, defined later in the file", "a1.p = ${NC_PORT}\nNC_PORT = 5", "a1.p", "5", nil},
		{"another key, itself substituted", "a1.h = ${base}:${env:NC_PORT}\nbase = ${env:HOST}.example", "a1.h", "collector.example:44444", nil},
		{"nested variable names", "a1.h = ${env:${env:WHICH}}", "a1.h", "collector", nil},
		{"a default when unresolved", "a1.p = ${env:NOPE:-4545}", "a1.p", "4545", nil},
		{"an escaped dollar is literal", "a1.p = $${env:NC_PORT}", "a1.p", "${env:NC_PORT}", nil},
		{"an unclosed variable is literal", "a1.p = ${env:NC_PORT", "a1.p", "${env:NC_PORT", nil},
		{"an unset variable stays literal with a warning", "a1.p = x${env:NOPE}", "a1.p", "x${env:NOPE}",
			[]string{"warning a:1: a1.p: ${env:NOPE} unresolved (environment variable NOPE is not set); kept literally"}},
		{"an unknown key stays literal with a warning", "a1.p = ${nope}", "a1.p", "${nope}",
			[]string{"warning a:1: a1.p: ${nope} unresolved (no key nope in the configuration); kept literally"}},
		{"unsupported lookups stay literal with a warning", "a1.p = ${date:yyyy}", "a1.p", "${date:yyyy}",
			[]string{"warning a:1: a1.p: ${date:yyyy} unresolved (date: lookups are not supported by flumed (only env:, sys: and other keys)); kept literally"}},
		{"a cycle is an error", "a1.a = ${b}\nb = ${c}\nc = ${b}", "a1.a", "${b}",
			[]string{"error a:3: c: substitution cycle: a1.a -> b -> c -> b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := build(env, Source{Name: "a", Data: []byte(tc.text)})
			if got := f.Props[tc.key].Value; got != tc.want {
				t.Errorf("%s = %q, want %q", tc.key, got, tc.want)
			}
			var got []string
			for _, p := range f.Problems.Errors() {
				got = append(got, "error "+p.String())
			}
			for _, p := range f.Problems.Warnings() {
				got = append(got, "warning "+p.String())
			}
			if len(got) != len(tc.problems) {
				t.Fatalf("problems %q, want %q", got, tc.problems)
			}
			for i := range got {
				if got[i] != tc.problems[i] {
					t.Errorf("problem %q, want %q", got[i], tc.problems[i])
				}
			}
		})
	}
}

func TestSubstitutionDoesNotDependOnFileOrder(t *testing.T) {
	a := Source{Name: "a", Data: []byte("a1.p = ${PORT}\nPORT = 1\n")}
	b := Source{Name: "b", Data: []byte("PORT = 2\n")}
	if got := build(nil, a, b).Props["a1.p"].Value; got != "2" {
		t.Fatalf("with the override last: %q", got)
	}
	if got := build(nil, b, a).Props["a1.p"].Value; got != "1" {
		t.Fatalf("with the override first: %q", got)
	}
}
