package syslog

import (
	"bytes"
	"regexp"
	"slices"
	"testing"
)

// FuzzStream feeds arbitrary bytes to both framings and to the datagram
// parser: nothing panics, every event has Facility and Severity, and no body
// is longer than EventSize (with keepFields a body may grow by the fields
// put back: Java writes a missing stamp back as "null").
func FuzzStream(f *testing.F) {
	for _, s := range []string{
		"<10>1 2012-04-13T11:11:11.123456+08:00 host app - - msg\n",
		"<13>Jun  3 01:02:03 host tag: msg\n",
		"12 <10>1 - - - x\n", "<10F> bad\n", "<1\n>\n", "999999999 <1>",
		"<191>Feb 30 99:99:99 h m\r\n", "<0>9999-99-99T99:99:99Z - -",
	} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, in []byte, size uint8) {
		for i, o := range []Options{{}, {OctetCounting: true}, {KeepFields: ParseKeepFields("priority version timestamp hostname")}} {
			o.EventSize = int(size)
			p := NewParser(o)
			slack := 0
			if i == 2 {
				slack = len("null null 1 ")
			}
			s := NewStream(p, bytes.NewReader(in), 16)
			for {
				e, err := s.Next()
				if err != nil {
					break
				}
				checkEvent(t, p, e, slack)
			}
			if e, ok := p.Datagram(in); ok {
				checkEvent(t, p, e, slack)
			}
			ms := NewMultiportStream(p, bytes.NewReader(in), 16, MultiportLines{Latin1: i == 1})
			for {
				e, err := ms.Next()
				if err != nil {
					break
				}
				if len(e.Body) > p.EventSize()+slack {
					t.Fatalf("multiport body of %d bytes, EventSize %d", len(e.Body), p.EventSize())
				}
			}
		}
	})
}

func checkEvent(t *testing.T, p *Parser, e Event, slack int) {
	t.Helper()
	if len(e.Body) > p.EventSize()+slack {
		t.Fatalf("body of %d bytes, EventSize %d", len(e.Body), p.EventSize())
	}
	if e.Headers[HeaderFacility] == "" || e.Headers[HeaderSeverity] == "" {
		t.Fatalf("headers %v lack Facility or Severity", e.Headers)
	}
}

// Flume's two patterns up to the body (SyslogUtils), with Java's \s spelled
// out (Go's lacks \x0B): the reference the hand matchers of match.go are
// held to.
const javaSpace = `[ \t\n\x0B\f\r]`

var (
	rfc5424 = regexp.MustCompile(`^(?:<(\d{1,3})>)(?:(\d?)` + javaSpace + `?)` +
		`(?:(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:[+-]\d{2}:\d{2}|Z)?)|-)` +
		javaSpace + `(?:(\w[\w\d.@\-]*)|-)` + javaSpace)
	rfc3164 = regexp.MustCompile(`^(?:<(\d{1,3})>)(?:(\d)?` + javaSpace + `?)` +
		`([A-Z][a-z][a-z]` + javaSpace + `{1,2}\d{1,2}` + javaSpace + `\d{2}:\d{2}:\d{2})` +
		javaSpace + `(\w[\w\d.@-]*)` + javaSpace)
)

// FuzzMatchersAreFlumesPatterns checks that match5424 and match3164 find
// what Flume's patterns find, group by group, on any input.
func FuzzMatchersAreFlumesPatterns(f *testing.F) {
	for _, s := range []string{
		"<13>Apr 13 11:11:11 host body", "<13>1 2012-04-13T11:11:11Z host body\r",
		"<13>1 - - body", "<13>Apr  3 11:11:11 h b", "<1>1 - h x", "<10>2012-04-13T11:11:11+08:00 h m",
		"<10>12012-04-13T11:11:11.1234567Z h m", "<10>1\t2014-10-03T17:20:01.123456-07:00 h m",
		"<10>1Apr 13 11:11:11 h m", "<10>1 Apr 1 11:11:11 h m", "<10>2 - -  m", "<1234>1 - - m",
		"<10>1 2012-04-13T11:11:11Zx h m", "<10>1 2012-04-13T11:11:11. h m", "<10>- - m",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range []struct {
			name string
			re   *regexp.Regexp
			hand func(string) (match, bool)
		}{{"rfc5424", rfc5424, match5424}, {"rfc3164", rfc3164, match3164}} {
			want := c.re.FindStringSubmatchIndex(s)
			got, ok := c.hand(s)
			if ok != (want != nil) {
				t.Fatalf("%s %q: matcher says %v, pattern %v", c.name, s, ok, want)
			}
			if ok && !slices.Equal(got[:], want) {
				t.Fatalf("%s %q: matcher %v, pattern %v", c.name, s, got, want)
			}
		}
	})
}

// Flume's patterns whole, as Java runs them (matches(), body (.*)$): the
// parser's split (prefix pattern + lineBody) must agree with them.
var (
	javaDot     = `[^\n\r\x{85}\x{2028}\x{2029}]`
	full5424    = regexp.MustCompile(rfc5424.String() + `(` + javaDot + `*)\z`)
	full3164    = regexp.MustCompile(rfc3164.String() + `(` + javaDot + `*)\z`)
	fullFormats = []*regexp.Regexp{full5424, full3164}
)

// FuzzFieldsAgreeWithFlumesPatterns checks that the fast split finds the
// same fields as Flume's whole patterns.
func FuzzFieldsAgreeWithFlumesPatterns(f *testing.F) {
	for _, s := range []string{
		"<13>Apr 13 11:11:11 host body", "<13>1 2012-04-13T11:11:11Z host body\r",
		"<13>1 - - body\u2028x", "<13>Apr  3 11:11:11 h\rb", "<1>1 - h \x85", "<1>1 - h \xc2\x85",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want []string
		for _, re := range fullFormats {
			if m := re.FindStringSubmatch(s); m != nil {
				want = m[1:]
				break
			}
		}
		h := map[string]string{}
		p := NewParser(Options{KeepFields: ParseKeepFields("all")})
		_, ok, _ := p.fields(s, h)
		if ok != (want != nil) {
			t.Fatalf("%q: parser matched %v, Flume's patterns %v", s, ok, want != nil)
		}
		if ok && (h[HeaderPriority] != want[0] || h[HeaderVersion] != want[1] || h[HeaderHost] != want[3]) {
			t.Fatalf("%q: headers %v, Flume's groups %q", s, h, want)
		}
	})
}

// TestMatchersAreFlumesPatternsOnCombinedFields holds the matchers to the
// patterns on every combination of well-formed, almost-formed and broken
// pieces, where random fuzzing would rarely build a whole header.
func TestMatchersAreFlumesPatternsOnCombinedFields(t *testing.T) {
	pris := []string{"<1>", "<13>", "<191>", "<1234>", "<>", "13>"}
	versions := []string{"", "1", "12", " ", "1 ", "1\t", "1\x0B", " 1"}
	stamps := []string{
		"2012-04-13T11:11:11", "2012-04-13T11:11:11Z", "2012-04-13T11:11:11.1", "2012-04-13T11:11:11.123456",
		"2012-04-13T11:11:11.1234567", "2012-04-13T11:11:11+08:00", "2012-04-13T11:11:11.12-07:00",
		"2012-04-13T11:11:11+0800", "2012-04-13T11:11:11.", "2012-04-13T11:11:11Zx", "2012-04-13 11:11:11",
		"-", "--", "Apr 13 11:11:11", "Apr  3 11:11:11", "Apr 3 11:11:11", "Apr  13 11:11:11",
		"Apr 131 11:11:11", "apr 13 11:11:11", "APR 13 11:11:11", "Apr 13 1:11:11", "Apr\t\t3\r11:11:11",
	}
	seps := []string{" ", "", "  ", "\t", "\n", "x"}
	hosts := []string{"host", "-", "_h.x@y-1", ".h", ""}
	bodies := []string{"", "body"} // the matchers stop before the body
	n := 0
	for _, pr := range pris {
		for _, v := range versions {
			for _, st := range stamps {
				for _, s1 := range seps {
					for _, h := range hosts {
						for _, s2 := range seps[:3] {
							for _, b := range bodies {
								s := pr + v + st + s1 + h + s2 + b
								n++
								for _, c := range []struct {
									re   *regexp.Regexp
									hand func(string) (match, bool)
								}{{rfc5424, match5424}, {rfc3164, match3164}} {
									want := c.re.FindStringSubmatchIndex(s)
									got, ok := c.hand(s)
									if ok != (want != nil) || ok && !slices.Equal(got[:], want) {
										t.Fatalf("%q: matcher %v %v, pattern %v", s, ok, got, want)
									}
								}
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d messages", n)
}
