package syslog

import (
	"bytes"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
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
		}{{"rfc5424", rfc5424, match5424[string]}, {"rfc3164", rfc3164, match3164[string]}} {
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
								}{{rfc5424, match5424[string]}, {rfc3164, match3164[string]}} {
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

// FuzzAStreamsCachesChangeNoEvent builds the lines of the input with one
// stream's caches (stamps, body blocks) and afresh, and checks every event
// is the same, the earlier ones checked again at the end: a body block
// handed out twice, or a stale stamp, would show.
func FuzzAStreamsCachesChangeNoEvent(f *testing.F) {
	f.Add([]byte("<13>Apr 13 11:11:11 web01 app: one\n<13>Apr 13 11:11:11 web02 app: two\n"+
		"<10>1 2012-04-13T11:11:11Z h m\n<10>1 2012-04-13T11:11:11Z h m2\nbad\n<13>x\n<13>Apr 13 11:11:12 h \n"), uint8(0))
	f.Add([]byte(strings.Repeat("<13>Apr 13 11:11:11 h "+strings.Repeat("x", 300)+"\n", 40)), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, keep uint8) {
		kf := []string{"none", "all", "hostname timestamp", "priority version"}[keep%4]
		p := NewParser(Options{KeepFields: ParseKeepFields(kf), Location: zone, Clock: clockAt(time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC))})
		var c streamCache
		var got, want []Event
		for _, line := range bytes.Split(in, []byte("\n")) {
			bad, _ := priEnd(append(line, 0))
			raw := bytes.Clone(line)
			got = append(got, p.buildCached(raw, bad, false, &c))
			want = append(want, p.build(line, bad, false))
			clear(raw) // the caller may reuse its buffer
		}
		for i := range got {
			if !maps.Equal(got[i].Headers, want[i].Headers) || !bytes.Equal(got[i].Body, want[i].Body) ||
				got[i].BadTimestamp != want[i].BadTimestamp {
				t.Fatalf("event %d: cached %v %q, afresh %v %q", i, got[i].Headers, got[i].Body, want[i].Headers, want[i].Body)
			}
		}
	})
}

// FuzzWholeMessagesAreFramedAsByteByByte reads the input through a stream
// that takes whole messages from its buffer and through one that reads byte
// by byte (Flume's state machine), with several buffer sizes and EventSizes:
// the events and the final error must be the same.
func FuzzWholeMessagesAreFramedAsByteByByte(f *testing.F) {
	for _, s := range []string{
		"<13>Apr 13 11:11:11 h m\n\n\n<1\n>x\n<1234>y\n<>z\n<13>\n<13\n<1a>b\nbad\n12 <13>1 - - x\n<13>no end",
		"<10>1 2012-04-13T11:11:11Z h m\n" + strings.Repeat("<13>"+strings.Repeat("x", 30)+"\n", 5),
	} {
		f.Add([]byte(s), uint8(0), uint8(0))
	}
	f.Fuzz(func(t *testing.T, in []byte, size, buf uint8) {
		for _, counting := range []bool{false, true} {
			p := NewParser(Options{EventSize: int(size), OctetCounting: counting, Location: zone,
				Clock: clockAt(time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC))})
			fast := NewStream(p, bytes.NewReader(in), 16+int(buf))
			slow := NewStream(p, bytes.NewReader(in), 16+int(buf))
			slow.bytewise = true
			for i := 0; ; i++ {
				e1, err1 := fast.Next()
				e2, err2 := slow.Next()
				if err1 != err2 {
					t.Fatalf("message %d: errors %v and %v", i, err1, err2)
				}
				if err1 != nil {
					break
				}
				if !maps.Equal(e1.Headers, e2.Headers) || !bytes.Equal(e1.Body, e2.Body) {
					t.Fatalf("message %d: whole %v %q, byte by byte %v %q", i, e1.Headers, e1.Body, e2.Headers, e2.Body)
				}
			}
		}
	})
}
