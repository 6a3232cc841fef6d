package source

// The line splitter of exec: Java readLine's terminators ("\n", "\r",
// "\r\n", also across reads), a last line without terminator, and lines cut
// at max bytes, with a line of exactly max bytes left whole.

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func TestLineReader(t *testing.T) {
	cases := []struct {
		name, in string
		max      int
		want     []string // a trailing "+" marks a piece that was split
	}{
		{"newline", "a\nb\n", 10, []string{"a", "b"}},
		{"carriage return and crlf", "a\r\nb\rc\n\nd", 10, []string{"a", "b", "c", "", "d"}},
		{"cr cr is an empty line", "a\r\rb", 10, []string{"a", "", "b"}},
		{"last line without terminator", "x\ny", 10, []string{"x", "y"}},
		{"empty input", "", 10, nil},
		{"long line is cut at max", "0123456789abcdefghijXYZ\n", 10, []string{"0123456789+", "abcdefghij+", "XYZ"}},
		{"a line of exactly max is whole", "0123456789\nnext\n", 10, []string{"0123456789", "next"}},
		{"exactly max then crlf", "0123456789\r\nnext", 10, []string{"0123456789", "next"}},
		{"binary bytes pass through", "\x00\xff\xfe\n", 10, []string{"\x00\xff\xfe"}},
	}
	for _, tc := range cases {
		for _, mode := range []string{"whole", "one byte per read"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tc.in)
				if mode != "whole" {
					r = iotest.OneByteReader(r)
				}
				lr := newLineReader(r, tc.max)
				var got []string
				for {
					line, split, err := lr.next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					s := string(line)
					if split {
						s += "+"
					}
					got = append(got, s)
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("lines %q, want %q", got, tc.want)
				}
			})
		}
	}
}
