package channel

import (
	"log/slog"

	"github.com/flumed/flumed/internal/config"
)

// Spec is a configured, not yet opened channel.
type Spec interface {
	// TransactionCapacity is the most events one transaction may hold; the
	// agent checks sources' and sinks' batch sizes against it.
	TransactionCapacity() int
	// Open creates the channel (the file channel locks its directories,
	// repairs and loads its log here).
	Open(name string, log *slog.Logger) (Channel, error)
}

// Factory makes a channel's spec from c, which has been checked against the
// type's config.Spec (unknown keys and type errors are reported already): it
// reads typed values through the type's declared keys and records problems
// in c rather than failing on the first.
type Factory func(name string, c *config.Context) (Spec, error)

// registry lists every channel type flumed has, and the Flume channel types
// it has not, so that naming one says so.
var registry = config.NewRegistry("channel", []config.Entry[Factory]{
	{Spec: memoryType, New: memoryFactory},
	{Spec: fileType, New: fileFactory},
	{Spec: kafkaChannelType, New: kafkaChannelFactory},
}, []config.Unsupported{
	{Type: "jdbc", Classes: []string{"org.apache.flume.channel.jdbc.JdbcChannel"}},
	{Type: "spillablememory", Classes: []string{"org.apache.flume.channel.SpillableMemoryChannel"}},
})

// Registry is every channel type: the agent builds channels through it and
// the README's tables are rendered from it.
func Registry() *config.Registry[Factory] { return registry }

// Lookup finds a channel type by the registry's rule (config.Registry) and
// returns its factory, which checks the context against the type's spec
// before reading it: how tests and tools make a channel from a context.
func Lookup(typ string) (Factory, bool) {
	e, ok := registry.Lookup(typ)
	if !ok {
		return nil, false
	}
	return func(name string, c *config.Context) (Spec, error) {
		c.Check(e.Spec)
		return e.New(name, c)
	}, true
}

// readCapacities reads the capacity and transactionCapacity keys every
// channel type has (with its own defaults): both must be positive and a
// transaction must fit in the channel. Problems are recorded in c and the
// defaults (or the capacity, for an oversized transactionCapacity) are kept.
func readCapacities(c *config.Context, capKey, txKey config.Key[int]) (capacity, txCap int) {
	capacity, txCap = capKey.Default(), txKey.Default()
	if v := capKey.Get(c); v > 0 {
		capacity = v
	} else {
		c.Errorf(capKey.Name(), "must be a positive number of events, not %d", v)
	}
	if v := txKey.Get(c); v > 0 {
		txCap = v
	} else {
		c.Errorf(txKey.Name(), "must be a positive number of events, not %d", v)
	}
	if txCap > capacity {
		c.Errorf(txKey.Name(), "%d is more than capacity %d (a transaction must fit in the channel)",
			txCap, capacity)
		txCap = capacity
	}
	return capacity, txCap
}
