package syslog

import (
	"bytes"
	"regexp"
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
