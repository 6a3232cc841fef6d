package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

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

// DumpEvent is channel.DumpEvent, the logger sink's line without "Event: ".
func DumpEvent(e channel.Event, maxBytes int) string { return channel.DumpEvent(e, maxBytes) }
