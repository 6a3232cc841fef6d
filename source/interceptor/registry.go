package interceptor

import (
	"log/slog"

	"github.com/flumed/flumed/internal/config"
)

// registry lists every interceptor type flumed has (a source's
// interceptors.<name>.type).
var registry = config.NewRegistry("interceptor", []config.Entry[Builder]{
	{Spec: timestampType, New: newTimestampInterceptor},
	{Spec: hostType, New: newHostInterceptor},
	{Spec: staticType, New: newStaticInterceptor},
	{Spec: removeHeaderType, New: newRemoveHeaderInterceptor},
	{Spec: uuidType, New: newUUIDInterceptor},
	{Spec: regexFilterType, New: newRegexFilterInterceptor},
	{Spec: regexExtractorType, New: newRegexExtractorInterceptor},
	{Spec: searchReplaceType, New: newSearchReplaceInterceptor},
}, nil)

// Registry is every interceptor type: the channel processor builds
// interceptors through it and the README's tables are rendered from it.
func Registry() *config.Registry[Builder] { return registry }

// Lookup finds an interceptor type by the registry's rule and returns its
// builder, which checks the context against the type's spec before reading
// it: how tests make an interceptor from a context.
func Lookup(typ string) (Builder, bool) {
	e, ok := registry.Lookup(typ)
	if !ok {
		return nil, false
	}
	return func(c *config.Context, log *slog.Logger) (Interceptor, error) {
		c.Check(e.Spec)
		return e.New(c, log)
	}, true
}
