package flumefile

import (
	"strings"
	"unicode/utf8"
)

// javaString turns the bytes of a protobuf string field into the string
// Flume hands to its sinks: Java decodes them as UTF-8 (protobuf-java's
// toStringUtf8, new String(bytes, UTF_8)), replacing each malformed sequence
// with U+FFFD the way JDK 17's decoder delimits them. Flume writes these
// fields from Java strings, so they are valid UTF-8 and come back unchanged;
// the replacement only matters for bytes Flume never writes.
func javaString(b []byte) string {
	if utf8.Valid(b) { // Go and Java agree on what is valid (no surrogates, no overlong forms)
		return string(b)
	}
	const repl = "\uFFFD"
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	cont := func(c byte) bool { return c&0xc0 == 0x80 }
	i, n := 0, len(b)
	for i < n {
		c := b[i]
		i++
		switch {
		case c < 0x80:
			sb.WriteByte(c)
		case c>>5 == 0x6 && c&0x1e != 0: // two bytes, C2..DF
			if i < n {
				if cont(b[i]) {
					sb.Write(b[i-1 : i+1])
					i++
				} else {
					sb.WriteString(repl)
				}
				continue
			}
			sb.WriteString(repl)
			return sb.String()
		case c>>4 == 0xe: // three bytes
			if i+1 < n {
				b2, b3 := b[i], b[i+1]
				if (c == 0xe0 && b2&0xe0 == 0x80) || !cont(b2) || !cont(b3) {
					sb.WriteString(repl)
					if !(c == 0xe0 && b2&0xe0 == 0x80) && cont(b2) {
						i++ // the lead and one continuation are one malformed sequence
					}
					continue
				}
				r := rune(c&0x0f)<<12 | rune(b2&0x3f)<<6 | rune(b3&0x3f)
				if r >= 0xd800 && r <= 0xdfff {
					sb.WriteString(repl) // an encoded surrogate: one replacement for all three bytes
				} else {
					sb.Write(b[i-1 : i+2])
				}
				i += 2
				continue
			}
			if i < n && ((c == 0xe0 && b[i]&0xe0 == 0x80) || !cont(b[i])) {
				sb.WriteString(repl)
				continue
			}
			sb.WriteString(repl) // a sequence cut by the end: one replacement, and the end
			return sb.String()
		case c>>3 == 0x1e: // four bytes, F0..F7
			if i+2 < n {
				b2, b3, b4 := b[i], b[i+1], b[i+2]
				r := rune(c&0x07)<<18 | rune(b2&0x3f)<<12 | rune(b3&0x3f)<<6 | rune(b4&0x3f)
				if !cont(b2) || !cont(b3) || !cont(b4) || r < 0x10000 || r > 0x10ffff {
					sb.WriteString(repl)
					switch {
					case c > 0xf4 || (c == 0xf0 && (b2 < 0x90 || b2 > 0xbf)) || (c == 0xf4 && b2&0xf0 != 0x80) || !cont(b2):
					case !cont(b3):
						i++
					default:
						i += 2
					}
					continue
				}
				sb.Write(b[i-1 : i+3])
				i += 3
				continue
			}
			if c > 0xf4 || (i < n && ((c == 0xf0 && (b[i] < 0x90 || b[i] > 0xbf)) || (c == 0xf4 && b[i]&0xf0 != 0x80) || !cont(b[i]))) {
				sb.WriteString(repl)
				continue
			}
			i++
			sb.WriteString(repl)
			if i < n && !cont(b[i]) {
				continue
			}
			return sb.String()
		default:
			sb.WriteString(repl)
		}
	}
	return sb.String()
}
