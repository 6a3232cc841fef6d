// Package registry holds the lookup rule shared by the registries of package
// source and its subpackages (sources, selectors, interceptors): Flume type
// names are matched case-insensitively, Flume class names as written, and
// the names offered in messages are the type names. It holds no component;
// each registry stays an explicit map literal next to its components.
package registry

import (
	"sort"
	"strings"
)

// Lookup finds typ in m: lower-cased first (Flume's type aliases are
// case-insensitive), then as written (Flume's class names).
func Lookup[F any](m map[string]F, typ string) (F, bool) {
	f, ok := m[strings.ToLower(strings.TrimSpace(typ))]
	if !ok {
		f, ok = m[strings.TrimSpace(typ)]
	}
	return f, ok
}

// Aliases returns the keys that are type names rather than class names (class
// names contain a dot).
func Aliases[F any](m map[string]F) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if !strings.Contains(k, ".") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
