package sink

// Sink and processor types are found by Flume's type name in any case or by
// Flume's class name exactly (config.Registry's one rule); the registries'
// Types list the short names for "did you mean" messages.

import (
	"slices"
	"testing"
)

func TestLookupAcceptsTypeNamesInAnyCaseAndFlumeClassNames(t *testing.T) {
	for _, typ := range []string{
		"logger", "LOGGER", "org.apache.flume.sink.LoggerSink",
		"null", "Null", "org.apache.flume.sink.NullSink",
		"file_roll", "FILE_ROLL", "org.apache.flume.sink.RollingFileSink",
	} {
		if _, ok := Lookup(typ); !ok {
			t.Errorf("Lookup(%q) found nothing", typ)
		}
	}
	for _, typ := range []string{
		"default", "org.apache.flume.sink.DefaultSinkProcessor",
		"failover", "FailOver", "org.apache.flume.sink.FailoverSinkProcessor",
		"load_balance", "LOAD_BALANCE", "org.apache.flume.sink.LoadBalancingSinkProcessor",
	} {
		if _, ok := ProcessorLookup(typ); !ok {
			t.Errorf("ProcessorLookup(%q) found nothing", typ)
		}
	}
	if _, ok := Lookup("hbase"); ok {
		t.Error("Lookup(hbase) found a sink flumed does not have")
	}
	if _, ok := Lookup("org.apache.flume.sink.loggersink"); ok {
		t.Error("a class name in the wrong case was found: Flume could not load it")
	}
	if _, ok := ProcessorLookup("logger"); ok {
		t.Error("a sink type was found as a processor")
	}
}

func TestTypesListShortNamesSorted(t *testing.T) {
	for _, want := range []string{"file_roll", "logger", "null"} {
		if !slices.Contains(Registry().Types(), want) {
			t.Errorf("Registry().Types() = %v, missing %s", Registry().Types(), want)
		}
	}
	if got := ProcessorRegistry().Types(); !slices.Equal(got, []string{"default", "failover", "load_balance"}) {
		t.Errorf("ProcessorRegistry().Types() = %v", got)
	}
	if !slices.IsSorted(Registry().Types()) {
		t.Errorf("Registry().Types() not sorted: %v", Registry().Types())
	}
}
