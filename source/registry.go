package source

import (
	"log/slog"

	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/source/spooldir"
	"github.com/flumed/flumed/source/taildir"
)

// registry lists every source type flumed has, and the Flume source types
// it has not (FLUME.md §1.2), so that naming one says so.
var registry = config.NewRegistry("source", []config.Entry[Factory]{
	{Spec: execType, New: newExecSource},
	{Spec: seqType, New: newSeqSource},
	{Spec: netcatType, New: newNetcatSource},
	{Spec: avroType, New: newAvroSource},
	{Spec: taildir.Spec, New: taildir.New},
	{Spec: spooldir.Spec, New: spooldir.New},
	{Spec: kafkaSourceType, New: newKafkaSource},
	{Spec: syslogTCPType, New: newSyslogTCPSource},
	{Spec: multiportSyslogTCPType, New: newMultiportSyslogTCPSource},
	{Spec: syslogUDPType, New: newSyslogUDPSource},
	{Spec: httpType, New: newHTTPSource},
	{Spec: netcatUDPType, New: newNetcatUDPSource},
	{Spec: thriftType, New: newThriftSource},
}, unsupportedSources)

var unsupportedSources = []config.Unsupported{
	{Type: "jms", Classes: []string{"org.apache.flume.source.jms.JMSSource"}},
}

// selectors lists the channel selector types (a source's selector.type).
var selectors = config.NewRegistry("channel selector", []config.Entry[SelectorFactory]{
	{Spec: replicatingType, New: newReplicatingSelector},
	{Spec: multiplexingType, New: newMultiplexingSelector},
	{Spec: loadBalancingType, New: newLoadBalancingSelector},
}, nil)

// Registry is every source type: the agent builds sources through it and
// the README's tables are rendered from it.
func Registry() *config.Registry[Factory] { return registry }

// SelectorRegistry is every channel selector type.
func SelectorRegistry() *config.Registry[SelectorFactory] { return selectors }

// Lookup finds a source type by the registry's rule (config.Registry) and
// returns its factory, which checks the context against the type's spec
// before reading it: how tests and tools make a source from a context.
func Lookup(typ string) (Factory, bool) {
	e, ok := registry.Lookup(typ)
	if !ok {
		return nil, false
	}
	return func(name string, c *config.Context, log *slog.Logger) (Source, error) {
		c.Check(e.Spec)
		return e.New(name, c, log)
	}, true
}
