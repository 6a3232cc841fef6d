package source

import (
	"sort"
	"strings"
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

	"taildir": newTaildirSource,
	"org.apache.flume.source.taildir.TaildirSource": newTaildirSource,

	"spooldir": newSpoolDirSource,
	"org.apache.flume.source.SpoolDirectorySource": newSpoolDirSource,

	"kafka": newKafkaSource,
	"org.apache.flume.source.kafka.KafkaSource": newKafkaSource,
}

// interceptors holds every interceptor type. UUID has no alias in Flume, only
// its class name; flumed also accepts "uuid".
var interceptors = map[string]InterceptorBuilder{
	"timestamp": newTimestampInterceptor,
	"org.apache.flume.interceptor.TimestampInterceptor$Builder": newTimestampInterceptor,

	"host": newHostInterceptor,
	"org.apache.flume.interceptor.HostInterceptor$Builder": newHostInterceptor,

	"static": newStaticInterceptor,
	"org.apache.flume.interceptor.StaticInterceptor$Builder": newStaticInterceptor,

	"remove_header": newRemoveHeaderInterceptor,
	"org.apache.flume.interceptor.RemoveHeaderInterceptor$Builder": newRemoveHeaderInterceptor,

	"uuid": newUUIDInterceptor,
	"org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder": newUUIDInterceptor,

	"regex_filter": newRegexFilterInterceptor,
	"org.apache.flume.interceptor.RegexFilteringInterceptor$Builder": newRegexFilterInterceptor,

	"regex_extractor": newRegexExtractorInterceptor,
	"org.apache.flume.interceptor.RegexExtractorInterceptor$Builder": newRegexExtractorInterceptor,

	"search_replace": newSearchReplaceInterceptor,
	"org.apache.flume.interceptor.SearchAndReplaceInterceptor$Builder": newSearchReplaceInterceptor,
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
func Lookup(typ string) (Factory, bool) { return lookup(sources, typ) }

// Types lists the source type names (aliases, not class names), sorted, for
// "did you mean" messages and documentation.
func Types() []string { return aliases(sources) }

// InterceptorTypes lists the interceptor type names, sorted.
func InterceptorTypes() []string { return aliases(interceptors) }

// SelectorTypes lists the channel selector type names, sorted.
func SelectorTypes() []string { return aliases(selectors) }

func lookup[F any](m map[string]F, typ string) (F, bool) {
	f, ok := m[strings.ToLower(strings.TrimSpace(typ))]
	if !ok {
		f, ok = m[strings.TrimSpace(typ)]
	}
	return f, ok
}

// aliases returns the keys that are type names rather than class names (class
// names contain a dot).
func aliases[F any](m map[string]F) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if !strings.Contains(k, ".") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
