package syslog

import (
	"bytes"
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
func lineBody(s []byte) bool {
	// Most bodies hold none of the bytes that start a terminator: four
	// vectorised scans say so faster than one loop over the bytes.
	if bytes.IndexByte(s, '\n') < 0 && bytes.IndexByte(s, '\r') < 0 &&
		bytes.IndexByte(s, 0xC2) < 0 && bytes.IndexByte(s, 0xE2) < 0 {
		return true
	}
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
	return p.buildCached(raw, bad, incomplete, nil)
}

// buildCached is build with a stream's caches (nil for none).
func (p *Parser) buildCached(raw []byte, bad, incomplete bool, c *streamCache) Event {
	h := make(map[string]string, 6)
	var stamps *stampCache
	var out *bodies
	if c != nil {
		stamps, out = &c.stamps, &c.bodies
	}
	if bad {
		h[HeaderFacility], h[HeaderSeverity] = "0", "0"
		h[HeaderStatus] = StatusInvalid
		return Event{Headers: h, Body: out.copy(raw)}
	}
	pri := priDigits(raw)
	n, _ := strconv.Atoi(pri)
	h[HeaderFacility] = strconv.Itoa(n / 8)
	h[HeaderSeverity] = strconv.Itoa(n % 8)
	at, kept, ok, badStamp := p.fieldsCached(raw, h, stamps)
	var body []byte
	switch {
	case !ok || p.o.KeepFields.All || at == len(raw) && kept == "":
		body = out.copy(raw)
	case p.o.KeepFields == KeepFields{}:
		body = out.copy(raw[at:])
	default:
		body = []byte(kept)
	}
	if incomplete {
		h[HeaderStatus] = StatusIncomplete
	}
	return Event{Headers: h, Body: body, BadTimestamp: badStamp}
}

// streamCache is what a stream keeps from one message to the next to build
// events faster: the last stamps read and the block bodies are copied into.
type streamCache struct {
	stamps stampCache
	bodies bodies
}

// Blocks of bodies: the first is small, so that a connection sending one
// message holds little, and each next one is twice as large up to
// maxBodyBlock.
const (
	minBodyBlock = 512
	maxBodyBlock = 16 << 10
)

// bodies copies message bodies into shared blocks, so that a stream
// allocates once for many messages rather than once for each (at ~200-byte
// messages that allocation was a tenth of the syslog TCP source's time).
// Each body is cut to its own length and capacity, so appending to one never
// touches another. A block lives while any of its bodies does: a stream
// holds at most one partly filled block (maxBodyBlock), and a body kept
// after the others of its block were dropped keeps at most that much alive.
// The zero value is ready; a nil *bodies copies each body on its own.
type bodies struct {
	b    []byte
	size int // the size of the block in use
}

func (a *bodies) copy(p []byte) []byte {
	if a == nil {
		return clone(p)
	}
	if len(p) > cap(a.b)-len(a.b) {
		a.size = min(max(2*a.size, minBodyBlock), maxBodyBlock)
		if len(p) > a.size/2 {
			// It would leave most of a block unused: its own copy.
			return clone(p)
		}
		a.b = make([]byte, 0, a.size)
	}
	n := len(a.b)
	a.b = append(a.b, p...)
	return a.b[n:len(a.b):len(a.b)]
}

// fields matches s against RFC 5424 then RFC 3164 and fills the headers of
// the first that matches; it returns the body with the kept fields, and
// whether a stamp was there but did not read as a date.
func (p *Parser) fields(s string, h map[string]string) (string, bool, bool) {
	at, kept, ok, badStamp := p.fieldsCached([]byte(s), h, nil)
	if !ok {
		return "", false, false
	}
	if p.o.KeepFields == (KeepFields{}) || p.o.KeepFields.All {
		return s[at:], true, badStamp
	}
	return kept, true, badStamp
}

// fieldsCached is fields over a message's bytes with a stream's stamp cache
// (nil for none). It returns where the body starts in raw and, when fields
// are kept, the body with them put back; the headers it fills are strings
// of their own (only the host's usually costs an allocation: the priority
// and a version digit come from strconv's and the runtime's small strings,
// the timestamp from the cache).
func (p *Parser) fieldsCached(raw []byte, h map[string]string, c *stampCache) (at int, kept string, ok, badStamp bool) {
	var m match
	is3164 := false
	if m5, ok := match5424(raw); ok && lineBody(raw[m5[1]:]) {
		m = m5
	} else if m3, ok := match3164(raw); ok && lineBody(raw[m3[1]:]) {
		m, is3164 = m3, true
	} else {
		return 0, "", false, false
	}
	group := func(i int) ([]byte, bool) {
		if m[2*i] < 0 {
			return nil, false
		}
		return raw[m[2*i]:m[2*i+1]], true
	}
	priority, _ := group(1)
	version, _ := group(2)
	stamp, hasStamp := group(3)
	host, hasHost := group(4)
	var pri, ver, hst string
	if len(priority) > 0 {
		pri = smallString(priority)
		h[HeaderPriority] = pri
	}
	if len(version) > 0 {
		ver = string(version)
		h[HeaderVersion] = ver
	}
	if hasStamp {
		v, ok := p.timestamp(stamp, is3164, c)
		if ok {
			h[HeaderTimestamp] = v
		}
		badStamp = !ok
	}
	if hasHost && len(host) > 0 {
		hst = string(host)
		h[HeaderHost] = hst
	}
	if p.o.KeepFields == (KeepFields{}) || p.o.KeepFields.All {
		return m[1], "", true, badStamp
	}
	// Java concatenates a missing field as "null"; so do we.
	st := "null"
	if hasStamp {
		st = string(stamp)
	}
	if !hasHost {
		hst = "null"
	}
	return m[1], p.o.KeepFields.prepend(string(raw[m[1]:]), pri, ver, st, hst), true, badStamp
}

// smallString is string(b) for a number's digits, without allocating when
// they are how strconv writes a number below 100.
func smallString(b []byte) string {
	if len(b) <= 2 {
		n := 0
		for _, c := range b {
			n = n*10 + int(c-'0')
		}
		if s := strconv.Itoa(n); s == string(b) {
			return s
		}
	}
	return string(b)
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

// rfc3164At reads "Mmm dd HH:mm:ss" (a one-digit day may follow two
// spaces) with now's UTC year in Location, then moves it into the window
// from eleven months before now to one month after, as Flume does. It also
// returns the span of time around now in which the answer stays the same (the same UTC year, and the
// same side of the window's edges); the zero span when it is not a date,
// which does not depend on the time.
func (p *Parser) rfc3164At(s string, now time.Time) (int64, bool, span) {
	s = strings.ReplaceAll(s, "  ", " ")
	mon, ok := months[s[:3]]
	if !ok || len(s) < 4 || s[3] != ' ' {
		return 0, false, span{}
	}
	rest := s[4:]
	sp := strings.IndexByte(rest, ' ')
	if sp < 1 || len(rest) != sp+9 {
		return 0, false, span{}
	}
	day, err := strconv.Atoi(rest[:sp])
	if err != nil {
		return 0, false, span{}
	}
	clk := rest[sp+1:]
	hh, _ := strconv.Atoi(clk[0:2])
	mm, _ := strconv.Atoi(clk[3:5])
	ss, _ := strconv.Atoi(clk[6:8])
	year := now.UTC().Year()
	t := time.Date(year, mon, day, hh, mm, ss, 0, p.o.Location)
	// Flume's test is "t after now and a month before t after now" (then a
	// year back), or "t before now and eleven months after t before now" (a
	// year on): since lo < t < hi, that is now < lo, or now > hi.
	lo, hi := addMonths(t, -1), addMonths(t, 11)
	in := span{from: time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC), until: time.Date(year+1, 1, 1, 0, 0, 0, 0, time.UTC)}
	switch {
	case t.After(now) && lo.After(now):
		t = addYears(t, -1)
		in.until = earlier(in.until, lo)
	case t.Before(now) && hi.Before(now):
		t = addYears(t, 1)
		in.from = later(in.from, hi.Add(1))
	default:
		in.from, in.until = later(in.from, lo), earlier(in.until, hi.Add(1))
	}
	return t.UnixMilli(), true, in
}

// span is the time from from up to until; the zero span is all time.
type span struct{ from, until time.Time }

func (s span) holds(t time.Time) bool {
	return s.from.IsZero() && s.until.IsZero() || !t.Before(s.from) && t.Before(s.until)
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// stampCache remembers a stream's last stamp of each format and its
// timestamp header: a sender's messages share a stamp for a second, and
// reading it into a date (a zone look-up, the RFC 3164 year window) cost
// more than the rest of the message. One stream (one goroutine) owns it.
type stampCache struct {
	s5424, v5424 string
	ok5424       bool
	s3164, v3164 string
	ok3164       bool
	in3164       span // when the RFC 3164 answer holds
}

// timestamp is the timestamp header of a stamp (false: not a date), from c
// when it holds the answer.
func (p *Parser) timestamp(stamp []byte, is3164 bool, c *stampCache) (string, bool) {
	if !is3164 {
		if c != nil && c.s5424 == string(stamp) && len(stamp) > 0 {
			return c.v5424, c.ok5424
		}
		st := string(stamp)
		ms, ok := p.rfc5424Millis(st)
		v := strconv.FormatInt(ms, 10)
		if c != nil {
			c.s5424, c.v5424, c.ok5424 = st, v, ok
		}
		return v, ok
	}
	now := p.o.Clock.Now()
	if c != nil && c.s3164 == string(stamp) && len(stamp) > 0 && c.in3164.holds(now) {
		return c.v3164, c.ok3164
	}
	st := string(stamp)
	ms, ok, in := p.rfc3164At(st, now)
	v := strconv.FormatInt(ms, 10)
	if c != nil {
		c.s3164, c.v3164, c.ok3164, c.in3164 = st, v, ok, in
	}
	return v, ok
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
