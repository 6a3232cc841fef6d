package flumefile

import (
	"os"

	"golang.org/x/sys/unix"
)

// prefetch asks the kernel to start reading [off, off+n) of f into the page
// cache without waiting for it (POSIX_FADV_WILLNEED), so that reading a
// data file overlaps decoding the part already read. It is only advice: an
// error changes nothing.
func prefetch(f *os.File, off, n int64) {
	_ = unix.Fadvise(int(f.Fd()), off, n, unix.FADV_WILLNEED)
}
