package main

import (
	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/gcpolicy"
)

// fitGCPolicy gives the garbage-collection policy the headroom ca's
// channels call for: the file channel's log reallocates its tail buffer in
// large blocks, which the large headroom keeps from being faulted in again
// and again; without one the large headroom is only memory held (an avro →
// memory → file_roll collector's RSS went from ~57 to ~40 MiB with the lean
// one, bench/collector_memory_test.go). It is called once a configuration is
// built and again after every reload, since a reload may add or remove a
// file channel.
func fitGCPolicy(ca *config.Agent) {
	gcpolicy.SetHeadroom(gcHeadroom(ca))
}

// gcHeadroom is gcpolicy.Headroom when ca has a file channel, else
// gcpolicy.LeanHeadroom.
func gcHeadroom(ca *config.Agent) int64 {
	for _, c := range ca.Channels {
		if e, ok := channel.Registry().Lookup(c.Type); ok && e.Spec.Type == "file" {
			return gcpolicy.Headroom
		}
	}
	return gcpolicy.LeanHeadroom
}
