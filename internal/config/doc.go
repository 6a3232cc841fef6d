// Package config reads Apache Flume agent configuration files (java.util.Properties
// syntax with Flume's key hierarchy), keeps the file and line of every key,
// checks every component's keys against its type's declared Spec, and gives
// the component typed values.
//
// It reports every problem of a file at once, as "file:line: full.key: problem",
// with a "did you mean" for unknown keys. It must never import another flumed
// package, and never echo the value of a key that looks secret.
//
// # Declaring a component
//
// A component type is one Spec and one factory, next to each other in the
// component's file, and one line in its kind's registry:
//
//	var (
//		httpEndpoint = config.String("endpoint", "", "the URL events are POSTed to").Required()
//		httpTimeout  = config.Millis("requestTimeout", 5*time.Second, "how long a POST may take")
//	)
//	var httpType = &config.Spec{Type: "http", Classes: []string{"org.apache.flume.sink.http.HttpSink"},
//		Doc: "one line: where it differs from Flume", Keys: []config.Decl{httpEndpoint, httpTimeout,
//			config.Ignore("contentTypeHeader", ""), tlskeys.Client}}
//	func newHTTP(name string, c *config.Context, log *slog.Logger) (Sink, error) {
//		t := httpTimeout.Get(c) // a time.Duration: the declared default when unset or bad
//		...
//	}
//	// registry.go: {Spec: httpType, New: newHTTP} in config.NewRegistry(...)
//
// Key constructors (String, Int, Int64, Bytes, Bool, Float, Millis, Seconds,
// OneOf, List, Port, ListenPort) take the name, the default (written nowhere
// else: options structs and the README take it from the key), and one line
// of doc; .Required(), .Flumed() (a key Flume lacks) and .DefaultText(...)
// refine them, and Ignore declares a Flume key flumed accepts with a warning.
// A name with a <placeholder> segment or a trailing ".*" is a family
// ("priority.<sink>", read with At or Instances; Bind restricts the names);
// a Group is a set of keys several specs share (internal/tlskeys); Nested
// declares the keys of components configured inside this one (a source's
// "interceptors.<name>.*"), which the component checks with
// c.Sub(prefix), Take("type") and their own registry's Resolve. The
// agent resolves the type (Registry.Resolve), which runs Context.Check: unknown keys,
// type errors, ignored-key warnings and missing required keys are reported
// before the factory runs, which then only checks ranges and combinations
// with c.Errorf/Warnf. A factory reading a key its spec does not declare is
// a bug that cmd/flumed/internal/agent's test over every registered spec catches, and
// the README's tables are rendered from the specs by that package's tests.

package config
