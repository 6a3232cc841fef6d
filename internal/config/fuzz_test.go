package config

// FuzzParse feeds arbitrary bytes to the properties parser. Whatever the
// input, Parse must not panic, every line number must point into the input,
// and every property it returns, written back with escapes, must read back
// as the same key and value (the parser and its escapes agree).

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "config", "*.properties"))
	example, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "example", "*.properties"))
	for _, name := range append(seeds, example...) {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{"a=b\\\n  c", "k\\u00e9=\\uD83D\\uDE00", "#\\\r\n!x\r\ny", "a\\=b : c\\", "\\u12"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		props, problems := Parse("f", data)
		lines := bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) + 1
		for _, p := range problems {
			if p.Pos.Line < 1 || p.Pos.Line > lines {
				t.Fatalf("problem at line %d of %d", p.Pos.Line, lines)
			}
		}
		for _, p := range props {
			if p.Pos.Line < 1 || p.Pos.Line > lines {
				t.Fatalf("property %q at line %d of %d", p.Key, p.Pos.Line, lines)
			}
			again, probs := Parse("g", []byte(escapeProp(p.Key, p.Value)))
			if len(probs) != 0 || len(again) != 1 || again[0].Key != p.Key || again[0].Value != p.Value {
				t.Fatalf("%q=%q read back as %+v (%v)", p.Key, p.Value, again, probs)
			}
		}
	})
}

// FuzzAgent builds the agent tree from arbitrary text: whatever the keys,
// building and checking it must not panic, and every problem must name a
// position in the input (or the whole file).
func FuzzAgent(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "config", "*.properties"))
	for _, name := range seeds {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "")
		f.Add(data, "a1")
	}
	f.Add([]byte("a.sources=r\na.sources.r.channels=${a.sources.r.channels}\na..x=1\n.b=2\na.sinks.=3"), "a")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		file := Build(Options{LookupEnv: func(string) (string, bool) { return "", false }}, Source{Name: "f", Data: data})
		a := file.Agent(name)
		for _, cs := range [][]*Component{a.Sources, a.Channels, a.Sinks} {
			for _, c := range cs {
				c.Context.Check(&Spec{Type: "fuzz"}) // every key unknown: positions of those too
			}
		}
		for _, g := range a.SinkGroups {
			g.Processor.Check(&Spec{Type: "fuzz"})
		}
		lines := bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) + 1
		for _, p := range append(a.Problems.Errors(), a.Problems.Warnings()...) {
			if p.Pos.Line < 0 || p.Pos.Line > lines || (p.Pos.Line == 0 && p.Pos.File != "f") {
				t.Fatalf("problem at %v of %d lines: %s", p.Pos, lines, p)
			}
		}
	})
}
