package channel

import (
	"log/slog"
	"sort"
	"strings"

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

// Factory reads a channel's keys from c (the "type" key has been read) and
// returns its spec, recording problems in c rather than failing on the first.
type Factory func(name string, c *config.Context) (Spec, error)

// registry maps Flume channel type names (lower case) and Flume's class names
// to factories. Each channel type adds its own line.
var registry = map[string]Factory{
	"memory":                                 memoryFactory,
	"org.apache.flume.channel.MemoryChannel": memoryFactory,
	"file":                                   fileFactory,
	"org.apache.flume.channel.file.FileChannel": fileFactory,
}

// Lookup finds a channel type by Flume type name (case-insensitive) or by
// Flume's class name.
func Lookup(typ string) (Factory, bool) {
	f, ok := registry[strings.ToLower(typ)]
	if !ok {
		f, ok = registry[typ]
	}
	return f, ok
}

// Types lists the registered type names, sorted, for "did you mean" messages.
func Types() []string {
	out := make([]string, 0, len(registry))
	for k := range registry {
		if !strings.Contains(k, ".") {
			out = append(out, k)
		}
	}
	sort.Strings(out) // map order would make messages differ from run to run
	return out
}

// readCapacities reads Flume's capacity and transactionCapacity keys, shared
// by every channel type: both must be positive and a transaction must fit in
// the channel. Problems are recorded in c and the defaults (or the capacity,
// for an oversized transactionCapacity) are kept.
func readCapacities(c *config.Context, capacity, txCap int) (int, int) {
	if v := c.Int("capacity", capacity); v > 0 {
		capacity = v
	} else {
		c.Errorf("capacity", "must be a positive number of events, not %d", v)
	}
	if v := c.Int("transactionCapacity", txCap); v > 0 {
		txCap = v
	} else {
		c.Errorf("transactionCapacity", "must be a positive number of events, not %d", v)
	}
	if txCap > capacity {
		c.Errorf("transactionCapacity", "%d is more than capacity %d (a transaction must fit in the channel)",
			txCap, capacity)
		txCap = capacity
	}
	return capacity, txCap
}
