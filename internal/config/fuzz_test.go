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
