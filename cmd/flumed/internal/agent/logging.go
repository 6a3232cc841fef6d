package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// LogOptions choose the process's log output.
type LogOptions struct {
	// Format is "text" (Flume-like lines, the message printed as is) or "json".
	Format string
	// Level is debug, info, warn or error.
	Level string
	// File, when its Path is set, is where the log goes instead of the
	// writer NewLogger is given.
	File LogFile
	// RepeatEvery rate-limits repeated identical warnings and errors: the
	// first is logged, later ones are counted and one line with the count is
	// logged at most once per interval (default 30 s).
	RepeatEvery time.Duration
}

// LogFile is a log file rotated by size (natefinch/lumberjack): when it
// reaches MaxSizeMB it is renamed with a timestamp and a new one started;
// MaxBackups rotated files are kept (0: all).
type LogFile struct {
	Path       string
	MaxSizeMB  int
	MaxBackups int
}

// ParseLevel reads a level name: slog's (debug, info, warn, error) or
// log4j's (TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF, ALL), any case.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "TRACE", "ALL", "DEBUG":
		return slog.LevelDebug, nil
	case "INFO", "":
		return slog.LevelInfo, nil
	case "WARN", "WARNING":
		return slog.LevelWarn, nil
	case "ERROR", "FATAL":
		return slog.LevelError, nil
	case "OFF":
		return slog.LevelError + 100, nil
	}
	return 0, fmt.Errorf("unknown log level %q (debug, info, warn or error)", s)
}

// NewLogger builds the process's logger writing to w.
func NewLogger(w io.Writer, opts LogOptions) (*slog.Logger, error) {
	level, err := ParseLevel(opts.Level)
	if err != nil {
		return nil, err
	}
	if opts.File.Path != "" {
		// Opened at the first write; a directory that cannot be written is
		// reported now rather than lost with the first lines.
		f, err := os.OpenFile(opts.File.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return nil, fmt.Errorf("log file: %w", err)
		}
		f.Close()
		w = &lumberjack.Logger{Filename: opts.File.Path, MaxSize: max(opts.File.MaxSizeMB, 1), MaxBackups: opts.File.MaxBackups}
	}
	var h slog.Handler
	switch strings.ToLower(opts.Format) {
	case "", "text":
		h = &textHandler{out: &lockedWriter{w: w}, level: level}
	case "json":
		h = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: readableDurations})
	default:
		return nil, fmt.Errorf("unknown log format %q (text or json)", opts.Format)
	}
	every := opts.RepeatEvery
	if every <= 0 {
		every = 30 * time.Second
	}
	return slog.New(newRepeatLimiter(h, every, time.Now)), nil
}

// readableDurations writes durations as Go prints them ("2s", "150ms")
// rather than slog's JSON default, a count of nanoseconds.
func readableDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) write(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(b)
}

// textHandler writes lines in the spirit of Flume's console pattern:
//
//	2024-05-01 12:00:00,123 INFO  [k1] message key=value ...
//
// The component attribute goes in brackets, like Flume's thread name; the
// message is printed as is (the logger sink's "Event: { ... }" text stays
// exact); other attributes follow as key=value, quoted when needed.
type textHandler struct {
	out   *lockedWriter
	level slog.Level
	attrs []slog.Attr // from With, already group-qualified
	group string      // group prefix from WithGroup, "" or "g."
}

func (h *textHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *textHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), qualify(h.group, as)...)
	return &c
}

func (h *textHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.group = h.group + name + "."
	return &c
}

func qualify(group string, as []slog.Attr) []slog.Attr {
	if group == "" {
		return as
	}
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = slog.Attr{Key: group + a.Key, Value: a.Value}
	}
	return out
}

func (h *textHandler) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	b.WriteString(t.Format("2006-01-02 15:04:05.000"))
	fmt.Fprintf(&b, " %-5s ", r.Level.String())
	attrs := append([]slog.Attr(nil), h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, qualify(h.group, []slog.Attr{a})...)
		return true
	})
	var comps []string
	rest := attrs[:0:0]
	for _, a := range attrs {
		if a.Key == "component" || a.Key == "agent" {
			comps = append(comps, a.Value.String())
			continue
		}
		rest = append(rest, a)
	}
	if len(comps) > 0 {
		fmt.Fprintf(&b, "[%s] ", strings.Join(comps, "/"))
	}
	b.WriteString(r.Message)
	for _, a := range rest {
		writeAttr(&b, "", a)
	}
	b.WriteByte('\n')
	h.out.write(b.Bytes())
	return nil
}

func writeAttr(b *bytes.Buffer, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			writeAttr(b, prefix+a.Key+".", g)
		}
		return
	}
	s := v.String()
	if s == "" || strings.ContainsAny(s, " \t\n\r\"=") {
		s = fmt.Sprintf("%q", s)
	}
	fmt.Fprintf(b, " %s%s=%s", prefix, a.Key, s)
}
