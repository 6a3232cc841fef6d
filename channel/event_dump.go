package channel

import (
	"fmt"
	"sort"
	"strings"
)

// Flume's textual dump of an event, the logger sink's line and `flumed wal
// dump`'s: it sits beside Event so that both can print an event without the
// command importing the sinks.

// DumpEvent renders an event the way Flume's EventHelper.dumpEvent does:
//
//	{ headers:{k1=v1, k2=v2} body: 41 42 43 <padding> ABC }
//
// Headers are printed like Java's Map.toString. Flume's HashMap order is
// unspecified; flumed sorts the keys so the output is stable. The body is a
// commons-io HexDump of its first maxBytes bytes with the leading "00000000"
// offset and the final newline removed; an empty body prints nothing.
func DumpEvent(e Event, maxBytes int) string {
	var b strings.Builder
	b.WriteString("{ headers:")
	writeJavaMap(&b, e.Headers)
	b.WriteString(" body:")
	body := e.Body
	if len(body) > maxBytes {
		body = body[:maxBytes]
	}
	if len(body) > 0 {
		dump := hexDump(body)
		dump = strings.TrimPrefix(dump, "00000000")
		dump = strings.TrimSuffix(dump, "\n")
		b.WriteString(dump)
	}
	b.WriteString(" }")
	return b.String()
}

func writeJavaMap(b *strings.Builder, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
	}
	b.WriteByte('}')
}

// hexDump is commons-io HexDump.dump(data, 0, out, 0): per 16 bytes, an 8-digit
// uppercase offset, a space, 16 columns of "XX " (or three spaces past the end),
// the bytes 0x20–0x7E as themselves and anything else as '.', then "\n".
func hexDump(data []byte) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for off := 0; off < len(data); off += 16 {
		line := data[off:min(off+16, len(data))]
		fmt.Fprintf(&b, "%08X ", off)
		for k := range 16 {
			if k < len(line) {
				b.WriteByte(hexDigits[line[k]>>4])
				b.WriteByte(hexDigits[line[k]&0x0F])
			} else {
				b.WriteString("  ")
			}
			b.WriteByte(' ')
		}
		for _, c := range line {
			if c >= ' ' && c < 127 {
				b.WriteByte(c)
			} else {
				b.WriteByte('.')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}
