package sink

import (
	"log/slog"
	"sort"
	"strings"
)

// registry maps Flume sink type names and Flume's class names, both lower
// case, to factories. Each sink type adds its own lines.
var registry = map[string]Factory{
	"logger":                                newLoggerFactory,
	"org.apache.flume.sink.loggersink":      newLoggerFactory,
	"null":                                  newNullFactory,
	"org.apache.flume.sink.nullsink":        newNullFactory,
	"file_roll":                             newFileRollFactory,
	"org.apache.flume.sink.rollingfilesink": newFileRollFactory,
	"avro":                                  newAvroFactory,
	"org.apache.flume.sink.avrosink":        newAvroFactory,
}

// processors maps sink processor type names and Flume's class names, both
// lower case, to factories.
var processors = map[string]ProcessorFactory{
	"default": newDefaultFactory,
	"org.apache.flume.sink.defaultsinkprocessor": newDefaultFactory,
	"failover": newFailoverFactory,
	"org.apache.flume.sink.failoversinkprocessor": newFailoverFactory,
	"load_balance": newLoadBalanceFactory,
	"org.apache.flume.sink.loadbalancingsinkprocessor": newLoadBalanceFactory,
}

// Lookup finds a sink type by Flume type name or Flume class name, ignoring case.
func Lookup(typ string) (Factory, bool) {
	f, ok := registry[strings.ToLower(strings.TrimSpace(typ))]
	return f, ok
}

// Types lists the registered sink type names (not class names), sorted, for
// "did you mean" messages.
func Types() []string { return shortNames(registry) }

// ProcessorLookup finds a sink processor type by Flume type name or Flume class
// name, ignoring case.
func ProcessorLookup(typ string) (ProcessorFactory, bool) {
	f, ok := processors[strings.ToLower(strings.TrimSpace(typ))]
	return f, ok
}

// ProcessorTypes lists the registered processor type names, sorted.
func ProcessorTypes() []string { return shortNames(processors) }

func shortNames[F any](m map[string]F) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if !strings.Contains(k, ".") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// orDiscard lets components be built without a logger (tests, embedding).
func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}
