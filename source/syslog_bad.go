package source

import (
	"log/slog"
	"strconv"
	"sync/atomic"

	"github.com/flumed/flumed/internal/syslog"
	"github.com/flumed/flumed/source/internal/logthrottle"
)

// syslogBadCounts counts the syslog messages that did not parse. Like Flume,
// the syslog sources still deliver them (with flume.syslog.status); the
// counts and a throttled log line say how many and from whom.
type syslogBadCounts struct {
	invalid, incomplete, badStamp, truncated, dropped atomic.Int64
}

func (b *syslogBadCounts) count(e syslog.Event, log *logthrottle.Log, source, remote string) {
	if e.BadTimestamp {
		b.badStamp.Add(1)
		log.Warn("stamp", "syslog message with a timestamp that is not a date; delivered without the timestamp header",
			slog.String("source", source), slog.String("remote", remote))
	}
	switch e.Headers[syslog.HeaderStatus] {
	case syslog.StatusInvalid:
		b.invalid.Add(1)
		log.Warn("invalid", "syslog message without a valid PRI; delivered with flume.syslog.status=Invalid",
			slog.String("source", source), slog.String("remote", remote))
	case syslog.StatusIncomplete:
		b.incomplete.Add(1)
		log.Warn("incomplete", "syslog message longer than eventSize; cut and delivered with flume.syslog.status=Incomplete",
			slog.String("source", source), slog.String("remote", remote))
	}
}

func (b *syslogBadCounts) fill(m map[string]string) {
	i := func(v *atomic.Int64) string { return strconv.FormatInt(v.Load(), 10) }
	m["SyslogInvalidCount"] = i(&b.invalid)
	m["SyslogIncompleteCount"] = i(&b.incomplete)
	m["SyslogBadTimestampCount"] = i(&b.badStamp)
	m["SyslogTruncatedCount"] = i(&b.truncated)
	m["SyslogDroppedCount"] = i(&b.dropped)
}
