package sink

import (
	"log/slog"

	"github.com/flumed/flumed/internal/config"
)

// registry lists every sink type flumed has, and the Flume sink types it
// has not, so that naming one says so.
var registry = config.NewRegistry("sink", []config.Entry[Factory]{
	{Spec: loggerType, New: newLoggerFactory},
	{Spec: nullType, New: newNullFactory},
	{Spec: fileRollType, New: newFileRollFactory},
	{Spec: avroType, New: newAvroFactory},
	{Spec: kafkaType, New: newKafkaFactory},
	{Spec: thriftType, New: newThriftFactory},
	{Spec: hdfsType, New: newHDFSFactory},
}, []config.Unsupported{
	{Type: "irc", Classes: []string{"org.apache.flume.sink.irc.IRCSink"}},
	{Type: "hbase", Classes: []string{"org.apache.flume.sink.hbase.HBaseSink"}},
	{Type: "hbase2", Classes: []string{"org.apache.flume.sink.hbase2.HBase2Sink"}},
	{Type: "asynchbase", Classes: []string{"org.apache.flume.sink.hbase.AsyncHBaseSink"}},
	{Type: "elasticsearch", Classes: []string{"org.apache.flume.sink.elasticsearch.ElasticSearchSink"}},
	{Type: "morphline_solr", Classes: []string{"org.apache.flume.sink.solr.morphline.MorphlineSolrSink"}},
	{Type: "hive", Classes: []string{"org.apache.flume.sink.hive.HiveSink"}},
	{Type: "http", Classes: []string{"org.apache.flume.sink.http.HttpSink"}},
})

// processors lists every sink processor type (Flume has no others).
var processors = config.NewRegistry("sink processor", []config.Entry[ProcessorFactory]{
	{Spec: defaultType, New: newDefaultFactory},
	{Spec: failoverType, New: newFailoverFactory},
	{Spec: loadBalanceType, New: newLoadBalanceFactory},
}, nil)

// Registry is every sink type: the agent builds sinks through it and the
// README's tables are rendered from it.
func Registry() *config.Registry[Factory] { return registry }

// ProcessorRegistry is every sink processor type.
func ProcessorRegistry() *config.Registry[ProcessorFactory] { return processors }

// Lookup finds a sink type by the registry's rule (config.Registry) and
// returns its factory, which checks the context against the type's spec
// before reading it: how tests and tools make a sink from a context.
func Lookup(typ string) (Factory, bool) {
	e, ok := registry.Lookup(typ)
	if !ok {
		return nil, false
	}
	return func(name string, c *config.Context, log *slog.Logger) (Sink, error) {
		c.Check(e.Spec)
		return e.New(name, c, log)
	}, true
}

// ProcessorLookup is Lookup for sink processors: the factory binds the
// <sink> of the processor's keys (priority.<sink>) to the group's sinks and
// checks the context before reading it.
func ProcessorLookup(typ string) (ProcessorFactory, bool) {
	e, ok := processors.Lookup(typ)
	if !ok {
		return nil, false
	}
	return func(group string, c *config.Context, sinks []Sink, log *slog.Logger) (Processor, error) {
		BindSinks(c, sinks)
		c.Check(e.Spec)
		return e.New(group, c, sinks, log)
	}, true
}

// BindSinks restricts the <sink> placeholder of a processor's keys to the
// group's sinks, so that a key naming another (priority.maxpenality) is
// unknown, with a "did you mean". Call it before checking c.
func BindSinks(c *config.Context, sinks []Sink) {
	names := make([]string, len(sinks))
	for i, s := range sinks {
		names[i] = s.Name()
	}
	c.Bind("<sink>", names...)
}

// orDiscard lets components be built without a logger (tests, embedding).
func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}
