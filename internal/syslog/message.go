package syslog

import (
	"strconv"
	"strings"
	"time"

	"github.com/flumed/flumed/internal/clock"
)

// Header names and status values, Flume's.
const (
	HeaderFacility  = "Facility"
	HeaderSeverity  = "Severity"
	HeaderPriority  = "priority"
	HeaderVersion   = "version"
	HeaderTimestamp = "timestamp"
	HeaderHost      = "host"
	HeaderStatus    = "flume.syslog.status"

	StatusInvalid    = "Invalid"
	StatusIncomplete = "Incomplete"
)

// DefaultEventSize and MinEventSize are Flume's eventSize default and floor.
const (
	DefaultEventSize = 2500
	MinEventSize     = 10
)

// Event is one parsed message: the same shape as a channel event, so the
// sources convert it without copying.
type Event struct {
	Headers map[string]string
	Body    []byte
	// BadTimestamp says the message had a stamp that does not read as a
	// date (Flume then leaves the timestamp header out, and so do we).
	BadTimestamp bool
}

// Options configure a Parser. The zero value is Flume's default.
type Options struct {
	// EventSize is the longest message in bytes (Flume's eventSize); a longer
	// one is cut and marked Incomplete. 0 means DefaultEventSize; below
	// MinEventSize it is raised to MinEventSize, as Flume does.
	EventSize int
	// KeepFields is Flume's keepFields.
	KeepFields KeepFields
	// Location is the zone of stamps without one (Java's default zone);
	// nil means time.Local.
	Location *time.Location
	// Clock gives the current year of RFC 3164 stamps; nil means the wall clock.
	Clock clock.Clock
	// OctetCounting accepts RFC 6587 octet-counted frames on a stream
	// besides newline-terminated ones. Flume has no octet counting.
	OctetCounting bool
}

func (o Options) withDefaults() Options {
	if o.EventSize == 0 {
		o.EventSize = DefaultEventSize
	}
	if o.EventSize < MinEventSize {
		o.EventSize = MinEventSize
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	o.Clock = clock.Or(o.Clock)
	return o
}

// Flume's two formats (match.go). Flume calls matches() with a final
// (.*)$: the body runs to the end and holds none of the characters Java's
// "." refuses (line terminators). The matchers stop before the body, which
// lineBody checks byte by byte: the same answer, since the split before the
// body is the only one the fields allow (a hostname cannot hold the
// separator).

// lineBody says whether s holds none of the line terminators Java's "."
// refuses: \n, \r, U+0085, U+2028, U+2029.
func lineBody(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\n', '\r':
			return false
		case 0xC2:
			if i+1 < len(s) && s[i+1] == 0x85 {
				return false
			}
		case 0xE2:
			if i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xA8 || s[i+2] == 0xA9) {
				return false
			}
		}
	}
	return true
}

// Parser builds events from framed messages. It holds no state between
// messages, so one Parser may serve many goroutines.
type Parser struct {
	o Options
}

// NewParser returns a Parser with o's defaults filled in.
func NewParser(o Options) *Parser { return &Parser{o: o.withDefaults()} }

// EventSize is the effective longest message.
func (p *Parser) EventSize() int { return p.o.EventSize }

// build turns one message into an event. bad says the PRI was missing or
// malformed (the framer found it so); incomplete says the message was cut at
// EventSize. raw is copied, so the caller may reuse it.
func (p *Parser) build(raw []byte, bad, incomplete bool) Event {
	h := make(map[string]string, 6)
	var body []byte
	if bad {
		h[HeaderFacility], h[HeaderSeverity] = "0", "0"
		h[HeaderStatus] = StatusInvalid
		return Event{Headers: h, Body: clone(raw)}
	}
	pri := priDigits(raw)
	n, _ := strconv.Atoi(pri)
	h[HeaderFacility] = strconv.Itoa(n / 8)
	h[HeaderSeverity] = strconv.Itoa(n % 8)
	msg, ok, badStamp := p.fields(string(raw), h)
	if ok && !p.o.KeepFields.All && msg != "" {
		body = []byte(msg)
	} else {
		body = clone(raw)
	}
	if incomplete {
		h[HeaderStatus] = StatusIncomplete
	}
	return Event{Headers: h, Body: body, BadTimestamp: badStamp}
}

// fields matches s against RFC 5424 then RFC 3164 and fills the headers of
// the first that matches; it returns the body with the kept fields, and
// whether a stamp was there but did not read as a date.
func (p *Parser) fields(s string, h map[string]string) (string, bool, bool) {
	var m [12]int
	is3164 := false
	if m5, ok := match5424(s); ok && lineBody(s[m5[1]:]) {
		copy(m[:], m5[:])
	} else if m3, ok := match3164(s); ok && lineBody(s[m3[1]:]) {
		copy(m[:], m3[:])
		is3164 = true
	} else {
		return "", false, false
	}
	m[10], m[11] = m[1], len(s) // the body is group 5
	group := func(i int) (string, bool) {
		if m[2*i] < 0 {
			return "", false
		}
		return s[m[2*i]:m[2*i+1]], true
	}
	priority, _ := group(1)
	version, _ := group(2)
	stamp, hasStamp := group(3)
	host, hasHost := group(4)
	body, _ := group(5)
	if priority != "" {
		h[HeaderPriority] = priority
	}
	if version != "" {
		h[HeaderVersion] = version
	}
	badStamp := false
	if hasStamp {
		var ms int64
		var ok bool
		if is3164 {
			ms, ok = p.rfc3164Millis(stamp)
		} else {
			ms, ok = p.rfc5424Millis(stamp)
		}
		if ok {
			h[HeaderTimestamp] = strconv.FormatInt(ms, 10)
		}
		badStamp = !ok
	}
	if hasHost && host != "" {
		h[HeaderHost] = host
	}
	// Java concatenates a missing field as "null"; so do we.
	if !hasStamp {
		stamp = "null"
	}
	if !hasHost {
		host = "null"
	}
	return p.o.KeepFields.prepend(body, priority, version, stamp, host), true, badStamp
}

// priDigits returns the digits between "<" and ">" of a message whose PRI
// the framer accepted (or "" for a UDP datagram cut inside it).
func priDigits(raw []byte) string {
	if len(raw) == 0 || raw[0] != '<' {
		return ""
	}
	i := 1
	for i < len(raw) && i <= 4 && raw[i] >= '0' && raw[i] <= '9' {
		i++
	}
	return string(raw[1:i])
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// rfc5424Millis reads a stamp the regular expression accepted
// (yyyy-MM-ddTHH:mm:ss[.f{1,6}][Z|±hh:mm]) as Flume's formats do: with a
// fraction, the first three digits are milliseconds as a number and the zone
// is ignored; without one, the zone counts.
func (p *Parser) rfc5424Millis(s string) (int64, bool) {
	num := func(a, b int) int { n, _ := strconv.Atoi(s[a:b]); return n }
	y, mo, d := num(0, 4), num(5, 7), num(8, 10)
	hh, mm, ss := num(11, 13), num(14, 16), num(17, 19)
	rest := s[19:]
	if strings.HasPrefix(rest, ".") {
		digits := rest[1:]
		if i := strings.IndexAny(digits, "Z+-"); i >= 0 {
			digits = digits[:i]
		}
		if len(digits) > 3 {
			digits = digits[:3]
		}
		ms, _ := strconv.Atoi(digits)
		return time.Date(y, time.Month(mo), d, hh, mm, ss, ms*int(time.Millisecond), p.o.Location).UnixMilli(), true
	}
	loc := p.o.Location
	switch {
	case rest == "Z":
		loc = time.UTC
	case rest != "":
		sign := 1
		if rest[0] == '-' {
			sign = -1
		}
		oh, _ := strconv.Atoi(rest[1:3])
		om, _ := strconv.Atoi(rest[4:6])
		loc = time.FixedZone("", sign*(oh*3600+om*60))
	}
	return time.Date(y, time.Month(mo), d, hh, mm, ss, 0, loc).UnixMilli(), true
}

var months = map[string]time.Month{
	"Jan": time.January, "Feb": time.February, "Mar": time.March, "Apr": time.April,
	"May": time.May, "Jun": time.June, "Jul": time.July, "Aug": time.August,
	"Sep": time.September, "Oct": time.October, "Nov": time.November, "Dec": time.December,
}

// rfc3164Millis reads "Mmm dd HH:mm:ss" (a one-digit day may follow two
// spaces) with the current UTC year in Location, then moves it into the
// window from eleven months ago to one month ahead, as Flume does.
func (p *Parser) rfc3164Millis(s string) (int64, bool) {
	s = strings.ReplaceAll(s, "  ", " ")
	mon, ok := months[s[:3]]
	if !ok || len(s) < 4 || s[3] != ' ' {
		return 0, false
	}
	rest := s[4:]
	sp := strings.IndexByte(rest, ' ')
	if sp < 1 || len(rest) != sp+9 {
		return 0, false
	}
	day, err := strconv.Atoi(rest[:sp])
	if err != nil {
		return 0, false
	}
	clk := rest[sp+1:]
	hh, _ := strconv.Atoi(clk[0:2])
	mm, _ := strconv.Atoi(clk[3:5])
	ss, _ := strconv.Atoi(clk[6:8])
	now := p.o.Clock.Now()
	t := time.Date(now.UTC().Year(), mon, day, hh, mm, ss, 0, p.o.Location)
	switch {
	case t.After(now) && addMonths(t, -1).After(now):
		t = addYears(t, -1)
	case t.Before(now) && addMonths(t, 11).Before(now):
		t = addYears(t, 1)
	}
	return t.UnixMilli(), true
}

// addMonths adds n months the way java.util.Calendar does: the day of month
// is clamped to the target month's length (Jan 31 + 1 month = Feb 28/29),
// where time.AddDate would overflow into March.
func addMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	if last := daysIn(first); d > last {
		d = last
	}
	return first.AddDate(0, 0, d-1)
}

func addYears(t time.Time, n int) time.Time { return addMonths(t, 12*n) }

func daysIn(t time.Time) int {
	return time.Date(t.Year(), t.Month()+1, 0, 0, 0, 0, 0, t.Location()).Day()
}
