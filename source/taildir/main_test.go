package taildir

import (
	"testing"

	"go.uber.org/goleak"
)

// The source watches directories with fsnotify, whose goroutine must end
// with the source: every test must leave none behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
