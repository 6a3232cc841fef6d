package channel

// DumpEvent prints an event as Flume's EventHelper.dumpEvent does (FLUME.md
// §6): "{ headers:{k=v, …} body: <hexdump> }", the hexdump being commons-io
// HexDump of the first maxBytes bytes with the leading "00000000" and the
// final newline removed: uppercase hex, padded to 16 columns, the printable
// ASCII column after, "\n00000010 " before a second line. An empty body
// prints "body: }". Headers are printed in sorted order.

import (
	"strings"
	"testing"
)

func TestDumpEventMatchesFlumeExamples(t *testing.T) {
	sp := strings.Repeat
	for _, tc := range []struct {
		name string
		e    Event
		max  int
		want string
	}{
		{
			"Hello world with a carriage return (FLUME.md §6)",
			Event{Body: []byte("Hello world!\r")}, 16,
			"{ headers:{} body: 48 65 6C 6C 6F 20 77 6F 72 6C 64 21 0D          Hello world!. }",
		},
		{
			"three bytes pad 13 missing columns",
			Event{Body: []byte("ABC")}, 16,
			"{ headers:{} body: 41 42 43 " + sp(" ", 39) + "ABC }",
		},
		{
			"empty body dumps nothing",
			Event{Headers: map[string]string{}, Body: nil}, 16,
			"{ headers:{} body: }",
		},
		{
			"sixteen bytes fill one line",
			Event{Body: []byte("0123456789abcdef")}, 16,
			"{ headers:{} body: 30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 0123456789abcdef }",
		},
		{
			"a long body is cut at maxBytesToLog",
			Event{Body: []byte("0123456789abcdefXYZ")}, 16,
			"{ headers:{} body: 30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 0123456789abcdef }",
		},
		{
			"twenty bytes with maxBytesToLog 32 take two lines",
			Event{Body: []byte("ABCDEFGHIJKLMNOPQRST")}, 32,
			"{ headers:{} body: 41 42 43 44 45 46 47 48 49 4A 4B 4C 4D 4E 4F 50 ABCDEFGHIJKLMNOP\n" +
				"00000010 51 52 53 54 " + sp(" ", 36) + "QRST }",
		},
		{
			"non-printable and non-ASCII bytes show as dots",
			Event{Body: []byte{0x00, 0x1F, 0x7F, 0x80, 0xFF, 'a', 0xC3, 0xA9}}, 16,
			"{ headers:{} body: 00 1F 7F 80 FF 61 C3 A9 " + sp(" ", 24) + ".....a.. }",
		},
		{
			"headers print like a Java map, sorted",
			Event{Headers: map[string]string{"host": "web1", "empty": "", "a": "1"}, Body: []byte("x")}, 16,
			"{ headers:{a=1, empty=, host=web1} body: 78 " + sp(" ", 45) + "x }",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DumpEvent(tc.e, tc.max); got != tc.want {
				t.Fatalf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
