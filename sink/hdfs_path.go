package sink

// The HDFS sink's path escapes: what Flume's BucketPath.escapeString does to
// hdfs.path and hdfs.filePrefix for each event (FLUME.md; Flume's user
// guide lists the sequences). A template is parsed once, at configuration,
// so that an unknown %[name] is a configuration error rather than, as in
// Flume, an exception for every event.

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// escapePattern is Flume's tag syntax: %x (one word character or %),
// %{header} and %[static].
var escapePattern = regexp.MustCompile(`%(\w|%)|%\{([\w.-]+)\}|%\[(\w+)\]`)

// pathRounding is hdfs.round, roundValue and roundUnit: time escapes use the
// event's timestamp rounded down to a multiple of Value Units.
type pathRounding struct {
	Unit  time.Duration // time.Second, time.Minute or time.Hour; 0: no rounding
	Value int
}

// pathPart is a literal, a header, a static value or a time escape.
type pathPart struct {
	lit    string
	header string
	time   byte // the escape's letter; 0 when not a time escape
}

// pathTemplate is a parsed hdfs.path or hdfs.filePrefix.
type pathTemplate struct {
	parts     []pathPart
	needsTime bool // a time escape: the event needs a timestamp
}

// hostNames are the values of %[localhost], %[IP] and %[FQDN], looked up
// once as Flume does.
type hostNames struct{ host, ip, fqdn string }

func lookupHostNames() hostNames {
	h := hostNames{host: "localhost", ip: "127.0.0.1"}
	if name, err := os.Hostname(); err == nil {
		h.host = name
	}
	h.fqdn = h.host
	if addrs, err := net.LookupHost(h.host); err == nil && len(addrs) > 0 {
		h.ip = addrs[0]
		if names, err := net.LookupAddr(h.ip); err == nil && len(names) > 0 {
			h.fqdn = strings.TrimSuffix(names[0], ".")
		}
	}
	return h
}

// parsePathTemplate parses s; hosts fills the %[...] escapes.
func parsePathTemplate(s string, hosts hostNames) (pathTemplate, error) {
	var t pathTemplate
	last := 0
	for _, m := range escapePattern.FindAllStringSubmatchIndex(s, -1) {
		if m[0] > last {
			t.parts = append(t.parts, pathPart{lit: s[last:m[0]]})
		}
		last = m[1]
		switch {
		case m[4] >= 0:
			t.parts = append(t.parts, pathPart{header: s[m[4]:m[5]]})
		case m[6] >= 0:
			var v string
			switch name := s[m[6]:m[7]]; strings.ToLower(name) {
			case "localhost":
				v = hosts.host
			case "ip":
				v = hosts.ip
			case "fqdn":
				v = hosts.fqdn
			default:
				return t, fmt.Errorf("unknown escape %%[%s] (Flume's are %%[localhost], %%[IP] and %%[FQDN])", name)
			}
			t.parts = append(t.parts, pathPart{lit: v})
		default:
			c := s[m[2]]
			if c == '%' {
				t.parts = append(t.parts, pathPart{lit: "%"})
				continue
			}
			t.parts = append(t.parts, pathPart{time: c})
			t.needsTime = true
		}
	}
	if last < len(s) {
		t.parts = append(t.parts, pathPart{lit: s[last:]})
	}
	return t, nil
}

// errNoTimestamp: a time escape needs the event's timestamp header (or
// useLocalTimeStamp). As in Flume, the batch fails and is retried.
var errNoTimestamp = fmt.Errorf("the path has time escapes and an event has no timestamp header " +
	"(add a timestamp interceptor, or set hdfs.useLocalTimeStamp = true)")

// expand writes the template for one event: headers, the event's time ts
// in milliseconds (tsText is %t: the header as written, or ts) and loc.
func (t *pathTemplate) expand(b *strings.Builder, headers map[string]string, ts int64, tsText string, loc *time.Location, r pathRounding) {
	var tm time.Time
	if t.needsTime {
		if r.Unit > 0 {
			ts = roundDown(ts, r, loc)
		}
		tm = time.UnixMilli(ts).In(loc)
	}
	for _, p := range t.parts {
		switch {
		case p.header != "":
			b.WriteString(headers[p.header])
		case p.time != 0:
			b.WriteString(timeEscape(p.time, tm, ts, tsText))
		default:
			b.WriteString(p.lit)
		}
	}
}

// roundDown rounds ts down to a multiple of r in loc, clearing the smaller
// fields: Flume's TimestampRoundDownUtil.
func roundDown(ts int64, r pathRounding, loc *time.Location) int64 {
	tm := time.UnixMilli(ts).In(loc)
	v := max(r.Value, 1)
	y, mo, d := tm.Date()
	h, mi, s := tm.Clock()
	switch r.Unit {
	case time.Second:
		s -= s % v
	case time.Minute:
		mi, s = mi-mi%v, 0
	case time.Hour:
		h, mi, s = h-h%v, 0, 0
	}
	return time.Date(y, mo, d, h, mi, s, 0, loc).UnixMilli()
}

// timeEscape is one %x of Flume's (the letters of Unix date, with Java's
// formats; %t is the timestamp as written, %s in seconds). An unknown
// letter is replaced by nothing, as in Flume.
func timeEscape(c byte, tm time.Time, ts int64, tsText string) string {
	switch c {
	case 'a':
		return tm.Format("Mon")
	case 'A':
		return tm.Format("Monday")
	case 'b':
		return tm.Format("Jan")
	case 'B':
		return tm.Format("January")
	case 'c':
		return tm.Format("Mon Jan 2 15:04:05 2006")
	case 'd':
		return tm.Format("02")
	case 'e':
		return strconv.Itoa(tm.Day())
	case 'D':
		return tm.Format("01/02/06")
	case 'H':
		return tm.Format("15")
	case 'I':
		return tm.Format("03")
	case 'j':
		return fmt.Sprintf("%03d", tm.YearDay())
	case 'k':
		return strconv.Itoa(tm.Hour())
	case 'l':
		return tm.Format("3")
	case 'm':
		return tm.Format("01")
	case 'M':
		return tm.Format("04")
	case 'n':
		return strconv.Itoa(int(tm.Month()))
	case 'p':
		return tm.Format("PM")
	case 's':
		return strconv.FormatInt(ts/1000, 10)
	case 'S':
		return tm.Format("05")
	case 't':
		return tsText
	case 'y':
		return tm.Format("06")
	case 'Y':
		return tm.Format("2006")
	case 'z':
		return tm.Format("-0700")
	}
	return ""
}
