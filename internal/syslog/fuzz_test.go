package syslog

import (
	"bytes"
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
