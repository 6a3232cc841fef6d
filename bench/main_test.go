package bench

import (
	"os"
	"testing"

	"github.com/flumed/flumed/internal/gcpolicy"
)

// TestMain runs every benchmark under the garbage-collection policy the
// flumed binary applies at start (internal/gcpolicy), baselines included, so
// that in-process figures are those of the program operators run. Set GOGC
// to measure under another target.
func TestMain(m *testing.M) {
	gcpolicy.Start()
	os.Exit(m.Run())
}
