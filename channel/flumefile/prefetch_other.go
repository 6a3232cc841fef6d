//go:build !linux

package flumefile

import "os"

// prefetch is a no-op where POSIX_FADV_WILLNEED is not available.
func prefetch(*os.File, int64, int64) {}
