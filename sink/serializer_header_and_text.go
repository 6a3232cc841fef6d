package sink

import (
	"slices"
	"unicode/utf16"

	"github.com/flumed/flumed/channel"
)

// headerAndTextSerializer is Flume's HEADER_AND_TEXT: the headers as Java's
// AbstractMap.toString prints them ("{}" or "{k1=v1, k2=v2}"), one space, the
// body, then "\n" when asked. No escaping: a "=" or ", " inside a header is
// written as it is, as Flume does.
//
// Flume's headers are a java.util.HashMap, so Java prints them in the order
// of the map's buckets. For the bytes to be Flume's, the headers are written
// in that order: by bucket (String.hashCode spread as HashMap spreads it,
// masked by the table size a HashMap filled one put at a time has for that
// many entries). Keys sharing a bucket are in insertion order in Java, which
// a Go map has lost; they are written in key order instead (rare: it takes
// two keys of one event colliding in a table of 16 or more buckets).
type headerAndTextSerializer struct{ newline bool }

func (s headerAndTextSerializer) Append(buf []byte, events []channel.Event) ([]byte, error) {
	var keys []string
	for _, e := range events {
		keys = javaHashMapOrder(keys[:0], e.Headers)
		buf = append(buf, '{')
		for i, k := range keys {
			if i > 0 {
				buf = append(buf, ", "...)
			}
			buf = append(buf, k...)
			buf = append(buf, '=')
			buf = append(buf, e.Headers[k]...)
		}
		buf = append(buf, "} "...)
		buf = append(buf, e.Body...)
		if s.newline {
			buf = append(buf, '\n')
		}
	}
	return buf, nil
}

// javaHashMapOrder appends the keys of m to keys in the order a
// java.util.HashMap holding them iterates (see headerAndTextSerializer).
func javaHashMapOrder(keys []string, m map[string]string) []string {
	for k := range m {
		keys = append(keys, k)
	}
	// A HashMap starts with 16 buckets and doubles when it holds more than
	// three quarters of its buckets.
	buckets := 16
	for len(m) > buckets*3/4 {
		buckets *= 2
	}
	bucket := func(k string) uint32 {
		h := javaStringHash(k)
		return (h ^ h>>16) & uint32(buckets-1)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if ba, bb := bucket(a), bucket(b); ba != bb {
			if ba < bb {
				return -1
			}
			return 1
		}
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	})
	return keys
}

// javaStringHash is java.lang.String.hashCode: s[0]*31^(n-1) + ... over the
// string's UTF-16 code units, in 32-bit arithmetic.
func javaStringHash(s string) uint32 {
	var h uint32
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + uint32(u)
	}
	return h
}
