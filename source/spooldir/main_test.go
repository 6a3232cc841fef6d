package spooldir

import (
	"testing"

	"go.uber.org/goleak"
)

// The source waits in backoffs that must end when it stops: every test
// must leave no goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
