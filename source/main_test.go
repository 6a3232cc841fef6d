package source

import (
	"testing"

	"go.uber.org/goleak"
)

// Sources start goroutines (exec readers, netcat connections, runners): every
// test must leave none behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
