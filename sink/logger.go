package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
)

// LoggerOptions configure a logger sink.
type LoggerOptions struct {
	// MaxBytesToLog is how many body bytes are dumped (Flume's maxBytesToLog).
	MaxBytesToLog int
	// Out, when set, receives one "Event: { … }\n" line per event. When nil the
	// line is logged at INFO through the sink's slog logger, the message being
	// exactly the "Event: { … }" text.
	Out io.Writer
}

// Logger is Flume's logger sink (FLUME.md §2.9): one event per transaction,
// printed in Flume's exact format (§6). It has no counters, as in Flume.
type Logger struct {
	name string
	opts LoggerOptions
	log  *slog.Logger
	eng  *Engine // nil until Start
}

var _ Sink = (*Logger)(nil)

// loggerMaxBytes is the logger sink's one key (FLUME.md §2.9).
var loggerMaxBytes = config.Int("maxBytesToLog", 16, "how many body bytes each line shows")

// loggerType declares the logger sink.
var loggerType = &config.Spec{
	Type:    "logger",
	Classes: []string{"org.apache.flume.sink.LoggerSink"},
	Doc: "prints Flume's exact `Event: { headers:… body: … }` line on stdout, not in the log. Like Flume it takes " +
		"one event per transaction; from a file channel those take commits are made durable in groups (see " +
		"[Delivery and duplicates](#delivery-and-duplicates))",
	Keys: []config.Decl{loggerMaxBytes},
}

// NewLogger builds a logger sink. A MaxBytesToLog below 1 becomes the
// maxBytesToLog key's default.
func NewLogger(name string, opts LoggerOptions, log *slog.Logger) *Logger {
	if opts.MaxBytesToLog < 1 {
		opts.MaxBytesToLog = loggerMaxBytes.Default()
	}
	return &Logger{name: name, opts: opts, log: orDiscard(log)}
}

func newLoggerFactory(name string, c *config.Context, log *slog.Logger) (Sink, error) {
	n := loggerMaxBytes.Get(c)
	if n < 1 {
		c.Errorf(loggerMaxBytes.Name(), "must be at least 1, not %d", n)
	}
	return NewLogger(name, LoggerOptions{MaxBytesToLog: n}, log), nil
}

// SetOutput sends the event lines to w instead of the slog logger (nil: back to
// slog). Call it before Start; the agent uses it to print to stdout.
func (l *Logger) SetOutput(w io.Writer) { l.opts.Out = w }

// Name implements Sink.
func (l *Logger) Name() string { return l.name }

// Start implements Sink.
func (l *Logger) Start(_ context.Context, ch channel.Channel) error {
	l.eng = NewEngine(EngineOptions{Sink: l.name, Channel: ch, BatchSize: 1, Depth: DefaultPipelineDepth, Log: l.log},
		DeliverFunc(l.print))
	return nil
}

// Process takes at most one event, as Flume's logger sink does, and prints it.
func (l *Logger) Process(ctx context.Context) (Status, error) {
	if l.eng == nil {
		return Backoff, errors.New("logger sink not started")
	}
	return l.eng.Process(ctx)
}

// print is the logger's delivery: one line per event.
func (l *Logger) print(ctx context.Context, events []channel.Event) error {
	for _, e := range events {
		line := "Event: " + DumpEvent(e, l.opts.MaxBytesToLog)
		if l.opts.Out == nil {
			l.log.InfoContext(ctx, line, "sink", l.name)
			continue
		}
		if _, err := io.WriteString(l.opts.Out, line+"\n"); err != nil {
			return fmt.Errorf("write event line: %w", err)
		}
	}
	return nil
}

// Stop implements Sink: it waits for the commits under way.
func (l *Logger) Stop() error {
	if l.eng != nil {
		_ = l.eng.Settle(context.Background()) // nothing is left unanswered: the commits under way
	}
	l.eng = nil
	return nil
}

// DumpEvent renders an event the way Flume's EventHelper.dumpEvent does:
//
//	{ headers:{k1=v1, k2=v2} body: 41 42 43 <padding> ABC }
//
// Headers are printed like Java's Map.toString. Flume's HashMap order is
// unspecified; flumed sorts the keys so the output is stable. The body is a
// commons-io HexDump of its first maxBytes bytes with the leading "00000000"
// offset and the final newline removed; an empty body prints nothing.
func DumpEvent(e channel.Event, maxBytes int) string {
	var b strings.Builder
	b.WriteString("{ headers:")
	writeJavaMap(&b, e.Headers)
	b.WriteString(" body:")
	body := e.Body
	if len(body) > maxBytes {
		body = body[:maxBytes]
	}
	if len(body) > 0 {
		dump := hexDump(body)
		dump = strings.TrimPrefix(dump, "00000000")
		dump = strings.TrimSuffix(dump, "\n")
		b.WriteString(dump)
	}
	b.WriteString(" }")
	return b.String()
}

func writeJavaMap(b *strings.Builder, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
	}
	b.WriteByte('}')
}

// hexDump is commons-io HexDump.dump(data, 0, out, 0): per 16 bytes, an 8-digit
// uppercase offset, a space, 16 columns of "XX " (or three spaces past the end),
// the bytes 0x20–0x7E as themselves and anything else as '.', then "\n".
func hexDump(data []byte) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for off := 0; off < len(data); off += 16 {
		line := data[off:min(off+16, len(data))]
		fmt.Fprintf(&b, "%08X ", off)
		for k := range 16 {
			if k < len(line) {
				b.WriteByte(hexDigits[line[k]>>4])
				b.WriteByte(hexDigits[line[k]&0x0F])
			} else {
				b.WriteString("  ")
			}
			b.WriteByte(' ')
		}
		for _, c := range line {
			if c >= ' ' && c < 127 {
				b.WriteByte(c)
			} else {
				b.WriteByte('.')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}
