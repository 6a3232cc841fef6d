package syslog

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Flume's multiport_syslogtcp source splits and parses differently from
// syslogtcp (its SyslogParser and LineSplitter, not SyslogUtils). Lines:
// eventSize counts the "\n", a longer line is cut at eventSize bytes and
// Incomplete, and its rest is the next line. Messages:
//
//   - headers Priority (the digits), Facility, Severity, Version ("1" when
//     the message starts "1 "), timestamp and host;
//   - "-" as the stamp means now; an RFC 5424 stamp must have a zone or a
//     fraction (Flume rejects a bare yyyy-MM-ddTHH:mm:ss), its zone counts,
//     and fractions are rounded to milliseconds properly; an RFC 3164 stamp
//     is the 15 characters after the PRI and one that is no date gives
//     timestamp "0";
//   - anything that does not parse — no "<", no ">" within six characters,
//     a PRI that is no number, nothing after it, no hostname, a bad RFC 5424
//     stamp, or bytes that are not valid in the port's charset — is an event
//     with only flume.syslog.status=Invalid and the whole line as its body.
//
// Where flumed differs: Flume gives RFC 3164 stamps more than a month away
// the year 1999 or 2001 (its date parser's default year is 2000); flumed uses
// syslogtcp's window (eleven months back, one ahead). Where Flume lets an
// exception escape (a blank line, a stamp that ends inside its fraction, an
// impossible date) and loses the batch, flumed drops a blank line and makes
// the others Invalid events.

// MultiportLines frames a stream as multiport_syslogtcp does.
type MultiportLines struct {
	Latin1 bool // the port's charset is ISO-8859-1 (else UTF-8 or US-ASCII)
	ASCII  bool // the port's charset is US-ASCII
}

// Multiport parses one line (without its "\n") as Flume's SyslogParser.
// ok is false for a blank line.
func (p *Parser) Multiport(line []byte, incomplete bool, cs MultiportLines) (Event, bool) {
	if len(line) == 0 {
		return Event{}, false
	}
	invalid := func() (Event, bool) {
		return Event{Headers: map[string]string{HeaderStatus: StatusInvalid}, Body: clone(line)}, true
	}
	if !cs.Latin1 && !utf8.Valid(line) || cs.ASCII && !isASCII(line) {
		return invalid()
	}
	s := string(line)
	h := make(map[string]string, 7)
	if s[0] != '<' {
		return invalid()
	}
	end := strings.IndexByte(s, '>')
	if end <= 0 || end > 6 {
		return invalid()
	}
	priority := s[1:end]
	pri, err := strconv.ParseInt(priority, 10, 32)
	if err != nil {
		return invalid()
	}
	h["Priority"] = priority
	h[HeaderFacility] = strconv.FormatInt(pri/8, 10)
	h[HeaderSeverity] = strconv.FormatInt(pri%8, 10)
	if len(s) <= end+1 {
		return invalid()
	}
	cur := end + 1
	version := ""
	if len(s) > cur+2 && s[cur:cur+2] == "1 " {
		version = "1"
		h["Version"] = version
		cur += 2
	}
	var ts int64
	var stamp string
	switch c := s[cur]; {
	case c == '-':
		stamp = "-"
		ts = p.o.Clock.Now().UnixMilli()
		if len(s) <= cur+2 {
			return invalid()
		}
		cur += 2
	case c >= 'A' && c <= 'Z':
		if len(s) <= cur+15 {
			return invalid()
		}
		stamp = s[cur : cur+15]
		ts = p.multiport3164(stamp)
		cur += 16
	default:
		sp := strings.IndexByte(s[cur:], ' ')
		if sp < 0 {
			return invalid()
		}
		stamp = s[cur : cur+sp]
		var ok bool
		if ts, ok = multiport5424(stamp); !ok {
			return invalid()
		}
		cur += sp + 1
	}
	h[HeaderTimestamp] = strconv.FormatInt(ts, 10)
	sp := strings.IndexByte(s[cur:], ' ')
	if sp < 0 {
		return invalid()
	}
	host := s[cur : cur+sp]
	h[HeaderHost] = host
	body := s
	if next := cur + sp + 1; len(s) > next && !p.o.KeepFields.All {
		v := version
		if v == "" {
			v = "null"
		}
		k := p.o.KeepFields
		if version == "" {
			k.Version = false // Java skips a null version
		}
		body = k.prepend(s[next:], priority, v, stamp, host)
	}
	if incomplete {
		h[HeaderStatus] = StatusIncomplete
	}
	return Event{Headers: h, Body: []byte(body)}, true
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// multiport5424 reads an RFC 5424 stamp as SyslogParser does: 19 characters
// of yyyy-MM-ddTHH:mm:ss in UTC (a real date), an optional fraction rounded
// to milliseconds, then "Z", ±hh:mm, or anything else (ignored).
func multiport5424(s string) (int64, bool) {
	if len(s) <= 19 {
		return 0, false
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05", s[:19], time.UTC)
	if err != nil {
		return 0, false
	}
	ts := t.UnixMilli()
	cur := 19
	if s[cur] == '.' {
		end := cur + 1
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		digits := end - cur - 1
		if digits == 0 || end == len(s) {
			return 0, false
		}
		frac, err := strconv.ParseInt(s[cur+1:min(end, cur+19)], 10, 64)
		if err != nil {
			return 0, false
		}
		for n := min(digits, 18); n > 3; n-- {
			frac /= 10
		}
		for n := digits; n < 3; n++ {
			frac *= 10
		}
		ts += frac
		cur = end
	}
	switch s[cur] {
	case '+', '-':
		if len(s) <= cur+5 {
			return 0, false
		}
		z := s[cur+1 : cur+6]
		if !isDigit(z[0]) || !isDigit(z[1]) || z[2] != ':' || !isDigit(z[3]) || !isDigit(z[4]) {
			return 0, false
		}
		oh, _ := strconv.Atoi(z[0:2])
		om, _ := strconv.Atoi(z[3:5])
		sign := int64(1)
		if s[cur] == '-' {
			sign = -1
		}
		ts -= sign * int64(oh*60+om) * 60000
	}
	return ts, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// multiport3164 reads "Mmm dd HH:mm:ss" in UTC (the first double space
// becomes one); 0 when it is no date.
func (p *Parser) multiport3164(s string) int64 {
	s = strings.Replace(s, "  ", " ", 1)
	parts := strings.Split(s, " ")
	if len(parts) != 3 || len(parts[1]) < 1 || len(parts[1]) > 2 || len(parts[2]) != 8 {
		return 0
	}
	var mon time.Month
	for m, v := range months {
		if strings.EqualFold(m, parts[0]) {
			mon = v
		}
	}
	day, err := strconv.Atoi(parts[1])
	if mon == 0 || err != nil {
		return 0
	}
	clk, err := time.Parse("15:04:05", parts[2])
	if err != nil {
		return 0
	}
	now := p.o.Clock.Now()
	t := time.Date(now.UTC().Year(), mon, day, clk.Hour(), clk.Minute(), clk.Second(), 0, time.UTC)
	if t.Day() != day {
		return 0 // Feb 30: Joda refuses it
	}
	switch {
	case t.After(now) && addMonths(t, -1).After(now):
		t = addYears(t, -1)
	case t.Before(now) && addMonths(t, 11).Before(now):
		t = addYears(t, 1)
	}
	return t.UnixMilli()
}
