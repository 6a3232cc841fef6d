package syslog

// The contract of a Stream: newline framing splits a TCP stream where
// Flume's SyslogUtils.extractEvent does (the sequences below are Flume's own
// test cases), octet-counted frames (RFC 6587) are read whole, no message is
// held beyond EventSize bytes, and a stream that ends inside a message says
// so instead of making an event of the tail.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

type want struct {
	body, status string
	fac, sev     string
}

func readAll(t *testing.T, o Options, in string) ([]Event, error) {
	t.Helper()
	s := NewStream(NewParser(o), strings.NewReader(in), 16)
	var out []Event
	for {
		e, err := s.Next()
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return out, err
		}
		out = append(out, e)
	}
}

func check(t *testing.T, got []Event, want []want) {
	t.Helper()
	if len(got) != len(want) {
		var bodies []string
		for _, e := range got {
			bodies = append(bodies, string(e.Body))
		}
		t.Fatalf("%d events %q, want %d", len(got), bodies, len(want))
	}
	for i, w := range want {
		e := got[i]
		if string(e.Body) != w.body || e.Headers[HeaderStatus] != w.status ||
			(w.fac != "" && (e.Headers[HeaderFacility] != w.fac || e.Headers[HeaderSeverity] != w.sev)) {
			t.Errorf("event %d: body %q headers %v, want body %q status %q facility %s severity %s",
				i, e.Body, e.Headers, w.body, w.status, w.fac, w.sev)
		}
	}
}

func TestNewlineFramingSplitsLikeFlume(t *testing.T) {
	bad1, bad2 := "hi guys! <10F> bad bad data", "hi guys! <20> bad bad data"
	good1, good2 := "<10>Good good good data", "<20>Good really good data"
	cases := []struct {
		name string
		o    Options
		in   string
		want []want
	}{
		{"bad then good (testBadEventGoodEvent)", Options{}, bad1 + "\n" + good1 + "\n",
			[]want{{bad1, StatusInvalid, "0", "0"}, {good1, "", "1", "2"}}},
		{"good then bad (testGoodEventBadEvent)", Options{}, good1 + "\n" + bad1 + "\n",
			[]want{{good1, "", "1", "2"}, {bad1, StatusInvalid, "0", "0"}}},
		{"bad then bad (testBadEventBadEvent)", Options{}, bad1 + "\n" + bad2 + "\n",
			[]want{{bad1, StatusInvalid, "0", "0"}, {bad2, StatusInvalid, "0", "0"}}},
		{"good then good (testGoodEventGoodEvent)", Options{}, good1 + "\n" + good2 + "\n",
			[]want{{good1, "", "1", "2"}, {good2, "", "2", "4"}}},
		{"an oversized line is cut: Incomplete, then Invalid pieces (testExtractBadEventLarge)",
			Options{EventSize: 5}, "<10> bad bad data bad bad\n",
			[]want{{"<10> bad b", StatusIncomplete, "1", "2"}, {"ad data ba", StatusInvalid, "0", "0"}, {"d bad", StatusInvalid, "0", "0"}}},
		{"a line of exactly EventSize bytes is Incomplete; its newline reads as a blank line",
			Options{EventSize: 10}, "<10>abcdef\n<10>x\n",
			[]want{{"<10>abcdef", StatusIncomplete, "1", "2"}, {"<10>x", "", "1", "2"}}},
		{"blank lines between messages are skipped", Options{}, "\n\n<10>a\n\n\n<10>b\n",
			[]want{{"<10>a", "", "1", "2"}, {"<10>b", "", "1", "2"}}},
		{"a newline inside a bad PRI does not end the message", Options{}, "<1\nx\n<10>y\n",
			[]want{{"<1\nx", StatusInvalid, "0", "0"}, {"<10>y", "", "1", "2"}}},
		{"octet-counted frames keep their newlines but a last one, as rsyslog drops it", Options{OctetCounting: true}, "8 <10>a\nb\n5 <10>c",
			[]want{{"<10>a\nb", "", "1", "2"}, {"<10>c", "", "1", "2"}}},
		{"octet-counted and newline frames may alternate", Options{OctetCounting: true}, "5 <10>c<10>d\n5 <10>e",
			[]want{{"<10>c", "", "1", "2"}, {"<10>d", "", "1", "2"}, {"<10>e", "", "1", "2"}}},
		{"digits without a space are an Invalid line", Options{OctetCounting: true}, "123abc\n<10>x\n",
			[]want{{"123abc", StatusInvalid, "0", "0"}, {"<10>x", "", "1", "2"}}},
		{"without octet counting a count is part of an Invalid line, as in Flume", Options{}, "5 <10>c\n",
			[]want{{"5 <10>c", StatusInvalid, "0", "0"}}},
		{"an oversized octet-counted frame keeps EventSize bytes and skips the rest",
			Options{OctetCounting: true, EventSize: 10}, "20 <10>abcdefghijklmnop4 <9>x",
			[]want{{"<10>abcdef", StatusIncomplete, "1", "2"}, {"<9>x", "", "1", "1"}}},
		{"an octet-counted frame with a bad PRI is Invalid", Options{OctetCounting: true}, "3 abc",
			[]want{{"abc", StatusInvalid, "0", "0"}}},
		{"an octet-counted empty PRI is dropped as Flume drops an unreadable PRI", Options{OctetCounting: true}, "1 <3 <1>",
			[]want{{"<1>", "", "0", "1"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := readAll(t, c.o, c.in)
			if err != nil {
				t.Fatal(err)
			}
			check(t, got, c.want)
		})
	}
}

func TestAStreamEndingInsideAMessageReportsIt(t *testing.T) {
	for _, in := range []string{"<10>a\n<10>no newline", "<10>a\n<1", "<10>a\n9 <10>ab", "<10>a\n12"} {
		got, err := readAll(t, Options{OctetCounting: true}, in)
		if !errors.Is(err, ErrTruncated) {
			t.Errorf("%q: err %v, want ErrTruncated", in, err)
		}
		check(t, got, []want{{"<10>a", "", "1", "2"}})
	}
}

func TestAnOversizedOctetCountIsSkippedNotHeld(t *testing.T) {
	// A 1 GB count followed by only a little data: the stream keeps
	// EventSize bytes, counts what it skipped, and ends Truncated.
	p := NewParser(Options{OctetCounting: true, EventSize: 100})
	s := NewStream(p, strings.NewReader("999999999 <10>"+strings.Repeat("x", 5000)), 0)
	_, err := s.Next()
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("err %v, want ErrTruncated", err)
	}
	if cap(s.buf) > 4096 || s.Skipped != 5004-100 {
		t.Fatalf("held %d bytes, skipped %d; want at most EventSize held and 4904 skipped", cap(s.buf), s.Skipped)
	}
}

func TestADatagramIsOneMessage(t *testing.T) {
	p := NewParser(Options{EventSize: 10})
	cases := []struct {
		in   string
		ok   bool
		want want
	}{
		{"<10>a", true, want{"<10>a", "", "1", "2"}},
		{"<10>a\n<10>b", true, want{"<10>a", "", "1", "2"}}, // the rest of the datagram is dropped, as in Flume
		{"\n\n<10>a\n", true, want{"<10>a", "", "1", "2"}},
		{"<10>abcdefghijk", true, want{"<10>abcdef", StatusIncomplete, "1", "2"}},
		{"no pri", true, want{"no pri", StatusInvalid, "0", "0"}},
		{"<12", true, want{"<12", "", "1", "4"}}, // ended inside the PRI: Flume reads the digits it has
		{"\n\n", false, want{}},
		{"<", false, want{}},
		{"", false, want{}},
	}
	for _, c := range cases {
		e, ok := p.Datagram([]byte(c.in))
		if ok != c.ok {
			t.Errorf("%q: ok %v, want %v", c.in, ok, c.ok)
			continue
		}
		if ok {
			check(t, []Event{e}, []want{c.want})
		}
	}
}

func TestReadySaysWhetherAWholeMessageIsBuffered(t *testing.T) {
	p := NewParser(Options{OctetCounting: true, EventSize: 20})
	for in, want := range map[string]bool{
		"":                               false,
		"\n\n":                           false,
		"<10>half":                       false,
		"<10>whole\n":                    true,
		"5 <10>":                         false,
		"5 <10>a":                        true,
		"12":                             false,
		"<10>" + strings.Repeat("x", 30): true, // EventSize bytes are enough
	} {
		s := NewStream(p, strings.NewReader(in), 64)
		_, _ = s.r.Peek(len(in)) // fill the buffer as a network read would
		if got := s.Ready(); got != want {
			t.Errorf("%q: Ready %v, want %v", in, got, want)
		}
	}
}

// BenchmarkStream parses 200-byte RFC 3164 messages from memory: the
// source's per-message work without the network and the channel.
func BenchmarkStream(b *testing.B) {
	var in bytes.Buffer
	for i := range 1000 {
		line := fmt.Sprintf("<13>Apr 13 11:11:11 web%02d app[123]: request %08d served ", i%50, i)
		line += strings.Repeat("x", 199-len(line))
		in.WriteString(line + "\n")
	}
	p := NewParser(Options{OctetCounting: true})
	b.SetBytes(200)
	b.ReportAllocs()
	r := bytes.NewReader(in.Bytes())
	s := NewStream(p, r, 64<<10)
	for b.Loop() {
		if _, err := s.Next(); err == io.EOF {
			r.Reset(in.Bytes())
			s = NewStream(p, r, 64<<10)
			if _, err := s.Next(); err != nil {
				b.Fatal(err)
			}
		} else if err != nil {
			b.Fatal(err)
		}
	}
}
