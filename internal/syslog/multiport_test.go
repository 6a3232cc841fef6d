package syslog

// multiport_syslogtcp parses with Flume's SyslogParser rules (see
// multiport.go). The inputs are Flume's TestSyslogParser's; the expected
// milliseconds are those Joda's ISO parser gives, worked out by hand.

import (
	"strings"
	"testing"
	"time"
)

func TestMultiportRFC5424StampsAsFlumesParser(t *testing.T) {
	for stamp, want := range map[string]time.Time{
		"1985-04-12T23:20:50.52Z":            time.Date(1985, 4, 12, 23, 20, 50, 520e6, time.UTC),
		"1985-04-12T19:20:50.52-04:00":       time.Date(1985, 4, 12, 23, 20, 50, 520e6, time.UTC),
		"2003-10-11T22:14:15.003Z":           time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.UTC),
		"2003-08-24T05:14:15.000003-07:00":   time.Date(2003, 8, 24, 12, 14, 15, 0, time.UTC),
		"2012-04-13T11:11:11-08:00":          time.Date(2012, 4, 13, 19, 11, 11, 0, time.UTC),
		"2012-04-13T08:08:08.0001+00:00":     time.Date(2012, 4, 13, 8, 8, 8, 0, time.UTC),
		"2012-04-13T08:08:08.251+00:00":      time.Date(2012, 4, 13, 8, 8, 8, 251e6, time.UTC),
		"2012-04-13T08:08:08.1234567890123Z": time.Date(2012, 4, 13, 8, 8, 8, 123e6, time.UTC),
	} {
		got, ok := multiport5424(stamp)
		if !ok || got != want.UnixMilli() {
			t.Errorf("%s: %d %v, want %d", stamp, got, ok, want.UnixMilli())
		}
	}
	for _, bad := range []string{"2012-04-13T11:11:11", "2012-02-30T11:11:11Z", "2012-04-13T11:11:11.", "2012-04-13T11:11:11.5", "2012-04-13T11:11:11+0800"} {
		if _, ok := multiport5424(bad); ok {
			t.Errorf("%s: accepted; Flume rejects it", bad)
		}
	}
}

func TestMultiportMessagesAsFlumesParser(t *testing.T) {
	good := []string{
		"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
		"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
		"<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: %% It's time to make the do-nuts.  %%  Ingredients: Mix=OK, Jelly=OK # Devices: Mixer=OK, Jelly_Injector=OK, Frier=OK # Transport: Conveyer1=OK, Conveyer2=OK # %%",
		"<0>Oct 22 10:52:12 scapegoat 1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!",
		"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - BOM'su root' failed for lonvick on /dev/pts/8",
		"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
		"<13>2003-08-24T05:14:15Z localhost snarf?",
		"<13>2012-08-16T14:34:03-08:00 127.0.0.1 test shnap!",
	}
	for _, keep := range []string{"none", "all", "hostname"} {
		p := NewParser(Options{KeepFields: ParseKeepFields(keep)})
		for _, msg := range good {
			e, ok := p.Multiport([]byte(msg), false, MultiportLines{})
			if !ok || e.Headers[HeaderStatus] != "" || e.Headers[HeaderTimestamp] == "" {
				t.Errorf("keep %s, %q: headers %v", keep, msg, e.Headers)
			}
			switch keep {
			case "all":
				if string(e.Body) != msg {
					t.Errorf("keep all: body %q", e.Body)
				}
			case "hostname":
				if !strings.Contains(string(e.Body), e.Headers[HeaderHost]) {
					t.Errorf("keep hostname: body %q lacks host %q", e.Body, e.Headers[HeaderHost])
				}
			}
		}
	}
	p := NewParser(Options{})
	e, _ := p.Multiport([]byte(good[5]), false, MultiportLines{})
	want := map[string]string{"Priority": "165", "Facility": "20", "Severity": "5", "Version": "1",
		"timestamp": "1061727255000", "host": "192.0.2.1"}
	for k, v := range want {
		if e.Headers[k] != v {
			t.Errorf("%s = %q, want %q", k, e.Headers[k], v)
		}
	}
	if string(e.Body) != "myproc 8710 - - %% It's time to make the do-nuts." {
		t.Errorf("body %q", e.Body)
	}
}

func TestMultiportInvalidLinesCarryOnlyTheStatus(t *testing.T) {
	p := NewParser(Options{})
	for _, bad := range []string{"no pri", "<1234567>x", "<ab>x y z", "<13>", "<13>2012-04-13T11:11:11 h m", "<13>-", "<13>nohost", "<13>\xff\xfe bad utf-8"} {
		e, ok := p.Multiport([]byte(bad), false, MultiportLines{})
		if !ok || len(e.Headers) != 1 || e.Headers[HeaderStatus] != StatusInvalid || string(e.Body) != bad {
			t.Errorf("%q: %v %q", bad, e.Headers, e.Body)
		}
	}
	if _, ok := p.Multiport(nil, false, MultiportLines{}); ok {
		t.Error("a blank line gave an event")
	}
	if e, _ := p.Multiport([]byte("<13>\xe9t\xe9 x h m"), false, MultiportLines{Latin1: true}); e.Headers[HeaderStatus] != "" && e.Headers[HeaderStatus] != StatusInvalid {
		t.Errorf("latin-1: %v", e.Headers)
	}
}

func TestMultiportLinesCountTheNewline(t *testing.T) {
	p := NewParser(Options{EventSize: 10})
	s := NewMultiportStream(p, strings.NewReader("<13>1 - h\n<13>1 - h m\n\n<1>x y z\n"), 16, MultiportLines{})
	var got []string
	var status []string
	for {
		e, err := s.Next()
		if err != nil {
			break
		}
		got = append(got, string(e.Body))
		status = append(status, e.Headers[HeaderStatus])
	}
	// "<13>1 - h" is 9 bytes + "\n" = 10: whole (and Invalid: no data after
	// the host); "<13>1 - h m" is cut at 10 bytes, "m" is the next line.
	want := []string{"<13>1 - h", "<13>1 - h ", "m", "<1>x y z"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("bodies %q, want %q (statuses %q)", got, want, status)
	}
	if status[1] != StatusIncomplete || status[2] != StatusInvalid {
		t.Errorf("statuses %q", status)
	}
}
