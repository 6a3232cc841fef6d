package syslog

// The contract: a message becomes the event Flume's SyslogUtils would build
// from it — the same Facility, Severity, priority, version, timestamp, host
// and flume.syslog.status headers and the same body. The inputs are those of
// Flume's TestSyslogUtils; the expected timestamps are what Java's
// SimpleDateFormat gives for them, worked out by hand in the zone of the test.

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/clock"
)

// zone is the "Java default zone" of the tests: not UTC, so that a stamp
// read in it differs from one read in its own zone.
var zone = time.FixedZone("test", 3*3600)

// clockAt returns a fake clock showing t.
func clockAt(t time.Time) clock.Clock {
	f := clock.NewFake()
	f.Advance(t.Sub(f.Now()))
	return f
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func parseOne(t *testing.T, o Options, msg string) Event {
	t.Helper()
	e, ok := NewParser(o).Datagram([]byte(msg))
	if !ok {
		t.Fatalf("%q: no event", msg)
	}
	return e
}

func TestMessagesGetFlumesHeadersAndBody(t *testing.T) {
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	host := "ubuntu-11.cloudera.com"
	cases := []struct {
		name, msg string
		keep      string
		headers   map[string]string
		body      string
	}{
		{name: "RFC 5424 without version, zone +08:00 (TestHeader0)",
			msg:     "<10>2012-04-13T11:11:11+08:00 " + host + " some msg\n",
			headers: map[string]string{"priority": "10", "timestamp": ms(time.Date(2012, 4, 13, 3, 11, 11, 0, time.UTC)), "host": host},
			body:    "some msg"},
		{name: "RFC 5424 version 1 without zone is read in the default zone (TestHeader1)",
			msg:     "<10>1 2012-04-13T11:11:11 " + host + " some msg\n",
			headers: map[string]string{"priority": "10", "version": "1", "timestamp": ms(time.Date(2012, 4, 13, 11, 11, 11, 0, zone)), "host": host},
			body:    "some msg"},
		{name: "Z means UTC (TestHeader2)",
			msg:     "<10>1 2012-04-13T11:11:11Z " + host + " some msg\n",
			headers: map[string]string{"priority": "10", "version": "1", "timestamp": ms(time.Date(2012, 4, 13, 11, 11, 11, 0, time.UTC)), "host": host},
			body:    "some msg"},
		{name: "a nil stamp gives no timestamp header (TestHeader4)",
			msg:     "<10>1 - " + host + " some msg\n",
			headers: map[string]string{"priority": "10", "version": "1", "host": host},
			body:    "some msg"},
		{name: "a nil host gives no host header (TestHeader5)",
			msg:     "<10>1 2012-04-13T11:11:11 - some msg\n",
			headers: map[string]string{"priority": "10", "version": "1", "timestamp": ms(time.Date(2012, 4, 13, 11, 11, 11, 0, zone))},
			body:    "some msg"},
		{name: "nil host with -08:00 is not the same as +08:00",
			msg:     "<10>1 2012-04-13T11:11:11-08:00 - some msg\n",
			headers: map[string]string{"priority": "10", "version": "1", "timestamp": ms(time.Date(2012, 4, 13, 19, 11, 11, 0, time.UTC))},
			body:    "some msg"},
		{name: "milliseconds are read in the default zone (TestHeader8)",
			msg:     "<10>1 2012-04-13T11:11:11.999 " + host + " some msg\n",
			headers: map[string]string{"priority": "10", "version": "1", "timestamp": ms(time.Date(2012, 4, 13, 11, 11, 11, 999e6, zone)), "host": host},
			body:    "some msg"},
		{name: "microseconds keep three digits and the zone is ignored (TestHeader11)",
			msg:     "<10>2014-10-03T17:20:01.123456-07:00 " + host + " some msg\n",
			headers: map[string]string{"priority": "10", "timestamp": ms(time.Date(2014, 10, 3, 17, 20, 1, 123e6, zone)), "host": host},
			body:    "some msg"},
		{name: "one fraction digit is a number of milliseconds, as SimpleDateFormat's S reads it",
			msg:     "<10>1 2012-04-13T11:11:11.5Z " + host + " m\n",
			headers: map[string]string{"priority": "10", "version": "1", "timestamp": ms(time.Date(2012, 4, 13, 11, 11, 11, 5e6, zone)), "host": host},
			body:    "m"},
		{name: "RFC 3164 gets this year (TestHeader9)",
			msg:     "<10>Apr 13 11:11:11 " + host + " some msg\n",
			headers: map[string]string{"priority": "10", "timestamp": ms(time.Date(2026, 4, 13, 11, 11, 11, 0, zone)), "host": host},
			body:    "some msg"},
		{name: "RFC 3164 with a one-digit day after two spaces",
			msg:     "<13>Jun  3 01:02:03 " + host + " some msg\n",
			headers: map[string]string{"Severity": "5", "priority": "13", "timestamp": ms(time.Date(2026, 6, 3, 1, 2, 3, 0, zone)), "host": host},
			body:    "some msg"},
		{name: "RFC 3164 more than a month ahead is last year's",
			msg:     "<10>Aug 20 00:00:00 h m\n",
			headers: map[string]string{"priority": "10", "timestamp": ms(time.Date(2025, 8, 20, 0, 0, 0, 0, zone)), "host": "h"},
			body:    "m"},
		{name: "RFC 3164 with an Apache log's nulls (TestRfc3164HeaderApacheLogWithNulls)",
			msg:     "<10>Apr 13 11:11:11 " + host + " - hyphen_null_breaks_5424_pattern [07/Jun/2012:14:46:44 -0600]\n",
			headers: map[string]string{"priority": "10", "timestamp": ms(time.Date(2026, 4, 13, 11, 11, 11, 0, zone)), "host": host},
			body:    "- hyphen_null_breaks_5424_pattern [07/Jun/2012:14:46:44 -0600]"},
		{name: "RFC 3164 with a month Java does not know matches but has no timestamp",
			msg:     "<10>Foo 13 11:11:11 h m\n",
			headers: map[string]string{"priority": "10", "host": "h"},
			body:    "m"},
		{name: "an out-of-range day rolls over as lenient Java does",
			msg:     "<10>1 2012-02-30T00:00:00Z h m\n",
			headers: map[string]string{"priority": "10", "version": "1", "timestamp": ms(time.Date(2012, 3, 1, 0, 0, 0, 0, time.UTC)), "host": "h"},
			body:    "m"},
		{name: "a good PRI with free text keeps the whole message (testExtractGoodEvent)",
			msg:     "<10>Good good good data\n",
			headers: map[string]string{},
			body:    "<10>Good good good data"},
		{name: "a trailing carriage return defeats both formats, as Java's dot does",
			msg:     "<10>1 2012-04-13T11:11:11Z h m\r\n",
			headers: map[string]string{},
			body:    "<10>1 2012-04-13T11:11:11Z h m\r"},
		{name: "PRI 191 is facility 23, severity 7",
			msg:     "<191>x\n",
			headers: map[string]string{"Facility": "23", "Severity": "7"},
			body:    "<191>x"},
		{name: "a non-numeric PRI is Invalid (testExtractBadEvent1)",
			msg:     "<10F> bad bad data\n",
			headers: map[string]string{"Facility": "0", "Severity": "0", HeaderStatus: StatusInvalid},
			body:    "<10F> bad bad data"},
		{name: "no PRI is Invalid (testExtractBadEvent2)",
			msg:     "hi guys! <10> bad bad data\n",
			headers: map[string]string{"Facility": "0", "Severity": "0", HeaderStatus: StatusInvalid},
			body:    "hi guys! <10> bad bad data"},
		{name: "an empty PRI is Invalid (testExtractBadEvent3)",
			msg:     "<> bad bad data\n",
			headers: map[string]string{"Facility": "0", "Severity": "0", HeaderStatus: StatusInvalid},
			body:    "<> bad bad data"},
		{name: "a PRI longer than three digits is Invalid (testExtractBadEvent4)",
			msg:     "<123123123123123123123123123123> bad bad data\n",
			headers: map[string]string{"Facility": "0", "Severity": "0", HeaderStatus: StatusInvalid},
			body:    "<123123123123123123123123123123> bad bad data"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := parseOne(t, Options{Location: zone, Clock: clockAt(now), KeepFields: ParseKeepFields(c.keep)}, c.msg)
			want := map[string]string{"Facility": "1", "Severity": "2"}
			maps.Copy(want, c.headers)
			if !maps.Equal(e.Headers, want) {
				t.Errorf("headers %v, want %v", e.Headers, want)
			}
			if string(e.Body) != c.body {
				t.Errorf("body %q, want %q", e.Body, c.body)
			}
		})
	}
}

func TestAStampThatIsNoDateIsFlagged(t *testing.T) {
	if e := parseOne(t, Options{}, "<10>Foo 13 11:11:11 h m"); !e.BadTimestamp {
		t.Error("month Foo: BadTimestamp false")
	}
	if e := parseOne(t, Options{}, "<10>Apr 13 11:11:11 h m"); e.BadTimestamp {
		t.Error("a good stamp flagged")
	}
}

func TestKeepFieldsPutFieldsBackInFlumesOrder(t *testing.T) {
	// testKeepFields
	msg := "<10>1 2012-04-13T11:11:11+08:00 ubuntu-11.cloudera.com some msg\n"
	for keep, body := range map[string]string{
		"none":                                "some msg",
		"false":                               "some msg",
		"hostname":                            "ubuntu-11.cloudera.com some msg",
		"timestamp hostname":                  "2012-04-13T11:11:11+08:00 ubuntu-11.cloudera.com some msg",
		"priority timestamp hostname":         "<10>2012-04-13T11:11:11+08:00 ubuntu-11.cloudera.com some msg",
		"priority version timestamp hostname": "<10>1 2012-04-13T11:11:11+08:00 ubuntu-11.cloudera.com some msg",
		"all":                                 "<10>1 2012-04-13T11:11:11+08:00 ubuntu-11.cloudera.com some msg",
		"TRUE":                                "<10>1 2012-04-13T11:11:11+08:00 ubuntu-11.cloudera.com some msg",
		"hostname version":                    "1 ubuntu-11.cloudera.com some msg",
	} {
		e := parseOne(t, Options{KeepFields: ParseKeepFields(keep)}, msg)
		if string(e.Body) != body {
			t.Errorf("keepFields=%q: body %q, want %q", keep, e.Body, body)
		}
		if e.Headers[HeaderHost] != "ubuntu-11.cloudera.com" || e.Headers[HeaderTimestamp] != ms(time.Date(2012, 4, 13, 3, 11, 11, 0, time.UTC)) {
			t.Errorf("keepFields=%q: headers %v", keep, e.Headers)
		}
	}
	// Java concatenates a missing host as "null".
	e := parseOne(t, Options{KeepFields: ParseKeepFields("hostname")}, "<10>1 - - m")
	if string(e.Body) != "null m" {
		t.Errorf("missing host kept as %q, want Flume's %q", e.Body, "null m")
	}
}

// TestRFC3164YearWindow is Flume's TestRfc3164Dates: for fourteen "now"s a
// month apart, a stamp from ten months ago to a month ahead (less a day)
// gets the year it was written in.
func TestRFC3164YearWindow(t *testing.T) {
	base := time.Date(2026, 1, 20, 10, 0, 0, 0, time.UTC)
	for off := 0; off <= 13; off++ {
		now := addMonths(base, off)
		p := NewParser(Options{Location: time.UTC, Clock: clockAt(now)})
		for i := -10; i <= 1; i++ {
			at := addMonths(now, i)
			if i == 1 {
				at = at.AddDate(0, 0, -1)
			}
			at = at.Truncate(time.Second)
			e, _ := p.Datagram([]byte("<10>" + at.Format("Jan _2 15:04:05") + " h m"))
			if got := e.Headers[HeaderTimestamp]; got != ms(at) {
				t.Errorf("now %s, stamp %s: timestamp %s, want %s", now, at, got, ms(at))
			}
		}
	}
}

func TestCalendarMonthsClampTheDay(t *testing.T) {
	got := addMonths(time.Date(2026, 1, 31, 5, 0, 0, 0, time.UTC), 1)
	if want := time.Date(2026, 2, 28, 5, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("Jan 31 + 1 month = %s, want %s (Calendar clamps)", got, want)
	}
}

// TestAStreamsStampCacheGivesTheUncachedAnswer walks the clock across the
// edges where an RFC 3164 stamp's year changes (a month before it, eleven
// months after it, New Year in UTC), one nanosecond either side of each and
// every 6 h in between, and checks that a stream's cached timestamp is
// always the one computed afresh.
func TestAStreamsStampCacheGivesTheUncachedAnswer(t *testing.T) {
	stamps := []string{"Jan  1 00:00:00", "Jan 31 23:59:59", "Feb 29 12:00:00", "Mar 31 00:00:00",
		"Dec 31 23:59:59", "Jun 15 12:00:00", "Foo 13 11:11:11"}
	start, end := time.Date(2023, 12, 30, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)
	var probes []time.Time
	for at := start; at.Before(end); at = at.Add(6 * time.Hour) {
		probes = append(probes, at)
	}
	for year := 2023; year <= 2026; year++ {
		edges := []time.Time{time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)}
		for _, s := range stamps[:6] {
			mon := months[s[:3]]
			day, _ := strconv.Atoi(strings.TrimSpace(s[4:6]))
			tt := time.Date(year, mon, day, 0, 0, 0, 0, zone)
			tt = tt.Add(time.Duration(atoi(s[7:9]))*time.Hour + time.Duration(atoi(s[10:12]))*time.Minute + time.Duration(atoi(s[13:15]))*time.Second)
			edges = append(edges, addMonths(tt, -1), addMonths(tt, 11))
		}
		for _, e := range edges {
			probes = append(probes, e.Add(-1), e, e.Add(1))
		}
	}
	slices.SortFunc(probes, func(a, b time.Time) int { return a.Compare(b) })
	f := clock.NewFake()
	f.Advance(probes[0].Sub(f.Now()))
	p := NewParser(Options{Location: zone, Clock: f})
	caches := make([]stampCache, len(stamps)) // one per stamp, so that each is asked again
	for _, at := range probes {
		f.Advance(at.Sub(f.Now()))
		for i, s := range stamps {
			got, gotOK := p.timestamp([]byte(s), true, &caches[i])
			ms, ok, _ := p.rfc3164At(s, f.Now())
			if gotOK != ok || ok && got != strconv.FormatInt(ms, 10) {
				t.Fatalf("%s at %v: cached %q %v, afresh %d %v", s, f.Now(), got, gotOK, ms, ok)
			}
		}
	}
	var c stampCache
	for _, s := range []string{"2012-04-13T11:11:11Z", "2012-04-13T11:11:11.5+08:00", "2012-04-13T11:11:11Z"} {
		got, _ := p.timestamp([]byte(s), false, &c)
		ms, _ := p.rfc5424Millis(s)
		if got != strconv.FormatInt(ms, 10) {
			t.Fatalf("%s: cached %q, afresh %d", s, got, ms)
		}
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
