package source

import (
	"github.com/flumed/flumed/source/internal/registry"
	"github.com/flumed/flumed/source/spooldir"
	"github.com/flumed/flumed/source/taildir"
)

// The registries below map Flume's type names (lower case) and Flume's class
// names (exact spelling) to builders. Flume upper-cases a type name and looks it
// up among its aliases, and treats anything else as a fully qualified class
// name; Lookup does the same: the name is tried lower-cased, then as written.
// Each component adds its own lines, alias and class name side by side.

// sources holds every source type flumed runs.
var sources = map[string]Factory{
	"exec":                               newExecSource,
	"org.apache.flume.source.ExecSource": newExecSource,

	"seq": newSeqSource,
	"org.apache.flume.source.SequenceGeneratorSource": newSeqSource,

	"netcat":                               newNetcatSource,
	"org.apache.flume.source.NetcatSource": newNetcatSource,

	"avro":                               newAvroSource,
	"org.apache.flume.source.AvroSource": newAvroSource,

	"taildir": taildir.New,
	"org.apache.flume.source.taildir.TaildirSource": taildir.New,

	"spooldir": spooldir.New,
	"org.apache.flume.source.SpoolDirectorySource": spooldir.New,

	"kafka": newKafkaSource,
	"org.apache.flume.source.kafka.KafkaSource": newKafkaSource,
}

// selectors holds the channel selector types (the source's selector.type).
var selectors = map[string]selectorFactory{
	"replicating": newReplicatingSelector,
	"org.apache.flume.channel.ReplicatingChannelSelector": newReplicatingSelector,

	"multiplexing": newMultiplexingSelector,
	"org.apache.flume.channel.MultiplexingChannelSelector": newMultiplexingSelector,

	"load_balancing": newLoadBalancingSelector,
	"org.apache.flume.channel.LoadBalancingChannelSelector": newLoadBalancingSelector,
}

// Lookup finds a source type by Flume type name (case-insensitive) or by
// Flume's class name.
func Lookup(typ string) (Factory, bool) { return registry.Lookup(sources, typ) }

// Types lists the source type names (aliases, not class names), sorted, for
// "did you mean" messages and documentation.
func Types() []string { return registry.Aliases(sources) }

// SelectorTypes lists the channel selector type names, sorted.
func SelectorTypes() []string { return registry.Aliases(selectors) }
