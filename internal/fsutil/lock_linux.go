package fsutil

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// Open-file-description locks: like flock they belong to the open file (so two
// opens in one process conflict, and the lock dies with the descriptor), and
// unlike flock they can be tested without being taken (F_OFD_GETLK), so Probe
// never makes a starting agent fail.

func tryLock(f *os.File) (held bool, err error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	err = unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return true, nil
	}
	return false, err
}

func testLock(f *os.File) (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return false, err
	}
	return lk.Type != unix.F_UNLCK, nil
}
