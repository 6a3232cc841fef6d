package interceptor

import "github.com/flumed/flumed/source/internal/registry"

// The interceptor registry: Flume's type names (case-insensitive) and class
// names, side by side, to their builders.

// interceptors holds every interceptor type. UUID has no alias in Flume, only
// its class name; flumed also accepts "uuid".
var interceptors = map[string]Builder{
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

// Lookup finds an interceptor type by Flume type name (case-insensitive) or
// Flume class name.
func Lookup(typ string) (Builder, bool) { return registry.Lookup(interceptors, typ) }

// Types lists the interceptor type names, sorted.
func Types() []string { return registry.Aliases(interceptors) }
