package interceptor

import (
	"fmt"
	"strings"
	"time"
)

// jodaLayout is a compiled Joda-Time DateTimeFormat pattern, for the millis
// serializer of regex_extractor. flumed implements the subset that timestamps
// in logs use:
//
//	yyyy (or y, yyy...) year    yy  two-digit year, read as 20yy
//	MM / M  month number        MMM / MMMM  month name, English, any case
//	dd / d  day of month        HH / H  hour 0-23
//	mm / m  minute              ss / s  second
//	S...    fraction of second (SSS = milliseconds)
//	Z       offset -0800 (or -08:00, or Z)   ZZ  offset -08:00   ZZZ  zone id
//	'text'  quoted literal ('' is a quote); other non-letters are literals
//
// Any other pattern letter is a configuration error. As with Joda's
// parseMillis, the whole input must match, missing fields default to
// 1970-01-01T00:00:00.000, and without a zone field the local time zone is used.
type jodaLayout struct {
	pattern string
	fields  []jodaField
}

type jodaField struct {
	letter byte // 0 for a literal
	width  int
	lit    string
	// exact means the next field is numeric with nothing between, so this one
	// takes exactly width digits (Joda's rule for adjacent numeric fields).
	exact bool
}

func compileJoda(pattern string) (*jodaLayout, error) {
	l := &jodaLayout{pattern: pattern}
	for i := 0; i < len(pattern); {
		ch := pattern[i]
		switch {
		case ch == '\'':
			j := i + 1
			var lit strings.Builder
			for {
				if j >= len(pattern) {
					return nil, fmt.Errorf("unterminated quote in Joda pattern %q", pattern)
				}
				if pattern[j] == '\'' {
					if j+1 < len(pattern) && pattern[j+1] == '\'' {
						lit.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				lit.WriteByte(pattern[j])
				j++
			}
			if j == i+1 {
				lit.WriteByte('\'') // '' outside quotes is one quote
			}
			l.fields = append(l.fields, jodaField{lit: lit.String()})
			i = j + 1
		case (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'):
			j := i
			for j < len(pattern) && pattern[j] == ch {
				j++
			}
			if !strings.ContainsRune("yMdHmsSZ", rune(ch)) {
				return nil, fmt.Errorf("unsupported letter %q in Joda pattern %q (flumed supports y M d H m s S Z and quoted text)", ch, pattern)
			}
			l.fields = append(l.fields, jodaField{letter: ch, width: j - i})
			i = j
		default:
			l.fields = append(l.fields, jodaField{lit: string(ch)})
			i++
		}
	}
	for i := range l.fields {
		if i+1 < len(l.fields) && l.fields[i].numeric() && l.fields[i+1].numeric() {
			l.fields[i].exact = true
		}
	}
	return l, nil
}

func (f jodaField) numeric() bool {
	switch f.letter {
	case 'y', 'd', 'H', 'm', 's', 'S':
		return true
	case 'M':
		return f.width < 3
	}
	return false
}

var monthNames = []string{"january", "february", "march", "april", "may", "june", "july",
	"august", "september", "october", "november", "december"}

// parse reads s with the layout. loc is the zone used when the pattern has no
// zone field; nil means time.Local.
func (l *jodaLayout) parse(s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.Local
	}
	year, month, day, hour, minute, sec, nanos := 1970, 1, 1, 0, 0, 0, 0
	rest := s
	bad := func() (time.Time, error) {
		return time.Time{}, fmt.Errorf("%q does not match Joda pattern %q", s, l.pattern)
	}
	for _, f := range l.fields {
		if f.letter == 0 {
			if !strings.HasPrefix(rest, f.lit) {
				return bad()
			}
			rest = rest[len(f.lit):]
			continue
		}
		if f.letter == 'M' && f.width >= 3 {
			m := 0
			for i, name := range monthNames {
				for _, cand := range []string{name, name[:3]} {
					if len(rest) >= len(cand) && strings.EqualFold(rest[:len(cand)], cand) {
						m, rest = i+1, rest[len(cand):]
						break
					}
				}
				if m != 0 {
					break
				}
			}
			if m == 0 {
				return bad()
			}
			month = m
			continue
		}
		if f.letter == 'Z' {
			z, n, ok := parseZone(rest, f.width)
			if !ok {
				return bad()
			}
			loc, rest = z, rest[n:]
			continue
		}
		lo, hi := 1, 2
		if f.letter == 'y' || f.letter == 'S' {
			hi = 9
		}
		if f.exact || (f.letter == 'y' && f.width == 2) {
			lo, hi = f.width, f.width
		}
		n := 0
		for n < len(rest) && n < hi && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n < lo {
			return bad()
		}
		v := 0
		for _, d := range rest[:n] {
			v = v*10 + int(d-'0')
		}
		digits := n
		rest = rest[n:]
		switch f.letter {
		case 'y':
			if f.width == 2 {
				v += 2000
			}
			year = v
		case 'M':
			month = v
		case 'd':
			day = v
		case 'H':
			hour = v
		case 'm':
			minute = v
		case 's':
			sec = v
		case 'S':
			for ; digits < 9; digits++ {
				v *= 10
			}
			nanos = v
		}
	}
	if rest != "" || month < 1 || month > 12 || hour > 23 || minute > 59 || sec > 59 {
		return bad()
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, loc)
	if t.Day() != day {
		return bad() // Feb 30 and friends: Joda rejects them, time.Date would roll over
	}
	return t, nil
}

// parseZone reads a zone field at the start of s: an offset (+0100, +01:00,
// -08, or Z) for widths 1 and 2, a zone id (Europe/Paris) for 3 and more. It
// returns the location and how many bytes it consumed.
func parseZone(s string, width int) (*time.Location, int, bool) {
	if width >= 3 {
		n := 0
		for n < len(s) && (isAlnum(s[n]) || strings.IndexByte("/_+-", s[n]) >= 0) {
			n++
		}
		loc, err := time.LoadLocation(s[:n])
		if n == 0 || err != nil {
			return nil, 0, false
		}
		return loc, n, true
	}
	if strings.HasPrefix(s, "Z") {
		return time.UTC, 1, true
	}
	if len(s) < 3 || (s[0] != '+' && s[0] != '-') || !isDigit(s[1]) || !isDigit(s[2]) {
		return nil, 0, false
	}
	h := int(s[1]-'0')*10 + int(s[2]-'0')
	n, m := 3, 0
	rest := s[3:]
	if strings.HasPrefix(rest, ":") {
		rest, n = rest[1:], n+1
	}
	if len(rest) >= 2 && isDigit(rest[0]) && isDigit(rest[1]) {
		m = int(rest[0]-'0')*10 + int(rest[1]-'0')
		n += 2
	} else if n == 4 {
		return nil, 0, false // "+01:" with no minutes
	}
	if h > 23 || m > 59 {
		return nil, 0, false
	}
	off := (h*60 + m) * 60
	if s[0] == '-' {
		off = -off
	}
	return time.FixedZone(s[:n], off), n, true
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func isAlnum(b byte) bool {
	return isDigit(b) || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')
}
