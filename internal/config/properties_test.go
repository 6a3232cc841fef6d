package config

// Parse must read text exactly as java.util.Properties.load does: the same
// separators, comments, continuations and escapes, the same keys and values
// (trailing blanks of values kept; trimming is Flume's, done at merge time),
// and duplicates returned in file order so the merge can warn about them.
// Each property carries the line its logical line starts on. A malformed
// \uXXXX, which makes Java throw, is a problem for that line only.

import (
	"reflect"
	"strings"
	"testing"
)

type kv struct {
	Key, Value string
	Line       int
}

func parsed(t *testing.T, text string) ([]kv, []Problem) {
	t.Helper()
	props, problems := Parse("t.properties", []byte(text))
	out := []kv{}
	for _, p := range props {
		if p.Pos.File != "t.properties" {
			t.Fatalf("prop %q has file %q", p.Key, p.Pos.File)
		}
		out = append(out, kv{p.Key, p.Value, p.Pos.Line})
	}
	return out, problems
}

func TestParseFollowsJavaPropertiesLoad(t *testing.T) {
	cases := []struct {
		name string
		text string
		want []kv
	}{
		{"equals separates key and value", "key=value", []kv{{"key", "value", 1}}},
		{"blanks around the separator are skipped", "key = value", []kv{{"key", "value", 1}}},
		{"a colon separates too", "key:value\nk2 : v2", []kv{{"key", "value", 1}, {"k2", "v2", 2}}},
		{"a blank separates too", "key value\nk2\tv2\nk3\fv3", []kv{{"key", "value", 1}, {"k2", "v2", 2}, {"k3", "v3", 3}}},
		{"a key alone has an empty value", "key\nk2=\nk3 :", []kv{{"key", "", 1}, {"k2", "", 2}, {"k3", "", 3}}},
		{"only one separator is skipped", "a==b\nc = = d\ne :=f\ng = :h", []kv{{"a", "=b", 1}, {"c", "= d", 2}, {"e", "=f", 3}, {"g", ":h", 4}}},
		{"leading blanks of a line are skipped", "   \t key=value", []kv{{"key", "value", 1}}},
		{"trailing blanks of a value are kept", "key=value  \t", []kv{{"key", "value  \t", 1}}},
		{"hash and bang start comments", "# c1\n! c2\n  # c3\nkey=v # not a comment", []kv{{"key", "v # not a comment", 4}}},
		{"blank lines are skipped", "\n\n  \t\nkey=v\n\n", []kv{{"key", "v", 4}}},
		{"a trailing backslash continues the line without the next line's leading blanks",
			"key=first \\\n     second\\\n\tthird\nnext=1", []kv{{"key", "first secondthird", 1}, {"next", "1", 4}}},
		{"an escaped backslash at the end does not continue", "key=a\\\\\nb=c", []kv{{"key", `a\`, 1}, {"b", "c", 2}}},
		{"three backslashes continue after one escaped backslash", "key=a\\\\\\\n  b", []kv{{"key", `a\b`, 1}}},
		{"a comment ending in a backslash does not continue", "# c \\\nkey=v", []kv{{"key", "v", 2}}},
		{"a continuation line starting with a hash is not a comment", "key=a\\\n#b", []kv{{"key", "a#b", 1}}},
		{"an empty continuation line ends the logical line", "key=a\\\n\nb=c", []kv{{"key", "a", 1}, {"b", "c", 3}}},
		{"a backslash at the end of the file is dropped", "key=a\\", []kv{{"key", "a", 1}}},
		{"the key of a continued line may itself be continued", "ke\\\n  y=v", []kv{{"key", "v", 1}}},
		{"CRLF line ends", "a=1\r\nb=2\\\r\n  3\r\nc=4", []kv{{"a", "1", 1}, {"b", "23", 2}, {"c", "4", 4}}},
		{"CR line ends", "a=1\rb=2\\\r  3\rc=4", []kv{{"a", "1", 1}, {"b", "23", 2}, {"c", "4", 4}}},
		{"control escapes", `key=a\tb\nc\rd\fe`, []kv{{"key", "a\tb\nc\rd\fe", 1}}},
		{"any other escaped character stands for itself", `re=\d+\.\\d \q`, []kv{{"re", `d+.\d q`, 1}}},
		{"unicode escapes", `key=\u0041\u00e9\u20AC`, []kv{{"key", "Aé€", 1}}},
		{"a surrogate pair of unicode escapes is one character", `key=\uD83D\uDE00`, []kv{{"key", "😀", 1}}},
		{"escaped separators belong to the key", "a\\=b=c\nd\\:e:f\ng\\ h i\nj\\\tk l", []kv{{"a=b", "c", 1}, {"d:e", "f", 2}, {"g h", "i", 3}, {"j\tk", "l", 4}}},
		{"an escaped hash at the start is a key", `\#notcomment=x`, []kv{{"#notcomment", "x", 1}}},
		{"UTF-8 passes through", "clé=värde ✓", []kv{{"clé", "värde ✓", 1}}},
		{"duplicates are all returned in order", "a=1\nb=2\na=3", []kv{{"a", "1", 1}, {"b", "2", 2}, {"a", "3", 3}}},
		{"an empty key", "=value", []kv{{"", "value", 1}}},
		{"a last line without newline", "a=1\nb=2", []kv{{"a", "1", 1}, {"b", "2", 2}}},
		{"a file of comments", "# only\n! comments\n", []kv{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, problems := parsed(t, tc.text)
			if len(problems) != 0 {
				t.Fatalf("problems: %v", problems)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse(%q)\n got %+v\nwant %+v", tc.text, got, tc.want)
			}
		})
	}
}

func TestParseReportsMalformedUnicodeEscapesAndGoesOn(t *testing.T) {
	got, problems := parsed(t, "a=\\u00G1\nb=2\nc=\\u12\nd\\u004=x\ne=5")
	want := []kv{{"b", "2", 2}, {"e", "5", 5}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	var msgs []string
	for _, p := range problems {
		msgs = append(msgs, p.String())
	}
	wantMsgs := []string{
		`t.properties:1: malformed \uXXXX escape; line ignored`,
		`t.properties:3: malformed \uXXXX escape; line ignored`,
		`t.properties:4: malformed \uXXXX escape; line ignored`,
	}
	if !reflect.DeepEqual(msgs, wantMsgs) {
		t.Fatalf("problems\n got %q\nwant %q", msgs, wantMsgs)
	}
}

// escapeProp writes key and value so that Parse reads them back unchanged,
// as Properties.store does (every blank escaped, to keep it simple).
func escapeProp(key, value string) string {
	esc := func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			switch c := s[i]; c {
			case '\\', '=', ':', '#', '!', ' ':
				b.WriteByte('\\')
				b.WriteByte(c)
			case '\t':
				b.WriteString(`\t`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\f':
				b.WriteString(`\f`)
			default:
				b.WriteByte(c)
			}
		}
		return b.String()
	}
	return esc(key) + "=" + esc(value)
}

func TestEscapedPropertiesReadBackUnchanged(t *testing.T) {
	pairs := [][2]string{{"a b", " lead and trail "}, {"x=y:z", `C:\dir\#1`}, {"#k", "!v"}, {"tab\tkey", "line\nbreak\r\f"}, {"", ""}}
	var text strings.Builder
	for _, p := range pairs {
		text.WriteString(escapeProp(p[0], p[1]) + "\n")
	}
	got, problems := parsed(t, text.String())
	if len(problems) != 0 || len(got) != len(pairs) {
		t.Fatalf("got %+v, problems %v", got, problems)
	}
	for i, p := range pairs {
		if got[i].Key != p[0] || got[i].Value != p[1] {
			t.Errorf("pair %d: got %q=%q, want %q=%q", i, got[i].Key, got[i].Value, p[0], p[1])
		}
	}
}

func TestAByteOrderMarkIsNotPartOfTheFirstKey(t *testing.T) {
	props, problems := Parse("a.properties", []byte("\xef\xbb\xbfa1.sources = r1\na1.channels = c1\n"))
	if len(problems) != 0 || len(props) != 2 || props[0].Key != "a1.sources" || props[0].Pos.Line != 1 {
		t.Fatalf("props %+v, problems %v", props, problems)
	}
}
