package avrorpc

import (
	"crypto/md5"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func hashOf(b []byte) Hash { return Hash(md5.Sum(b)) }
