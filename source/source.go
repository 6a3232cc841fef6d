// Package source holds what feeds channels: the Source contract (defined in
// source/sourceapi and re-exported here), the channel processor (interceptors,
// then the selector, then one transaction per required channel), the runner
// of pollable sources, the registry of source types, and the small sources
// (exec, seq, netcat, avro). The file sources are in source/taildir and
// source/spooldir, the interceptors in source/interceptor; the registry
// points at their constructors.
//
// A source must never acknowledge or advance past input whose events were not
// committed to every required channel; when the channel refuses, it retries
// later instead of dropping. This package must never import sink, and its
// subpackages must never import it (it imports them).
package source

import "github.com/flumed/flumed/source/sourceapi"

// The contract is defined in sourceapi, so that sources in their own
// packages can implement it; these are its names here, where the agent looks.
type (
	// Status is sourceapi.Status: what one Poll of a pollable source did.
	Status = sourceapi.Status
	// BatchPutter is sourceapi.BatchPutter: where a source puts its events.
	BatchPutter = sourceapi.BatchPutter
	// Source is sourceapi.Source.
	Source = sourceapi.Source
	// Pollable is sourceapi.Pollable: a source driven by a Runner.
	Pollable = sourceapi.Pollable
	// Factory is sourceapi.Factory: builds a source from its configuration.
	Factory = sourceapi.Factory
	// BatchSizer is sourceapi.BatchSizer.
	BatchSizer = sourceapi.BatchSizer
	// BatchSizeKeyer is sourceapi.BatchSizeKeyer.
	BatchSizeKeyer = sourceapi.BatchSizeKeyer
)

const (
	// Ready is sourceapi.Ready: events were produced; poll again at once.
	Ready = sourceapi.Ready
	// Backoff is sourceapi.Backoff: nothing was read or the channel refused.
	Backoff = sourceapi.Backoff
)

// errConfig is what builders here return after recording their problems.
var errConfig = sourceapi.ErrConfig
