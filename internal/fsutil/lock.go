package fsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFile is the name of the lock file LockDir creates in a directory.
// It is shorter than 20 bytes, so tidwall/wal never mistakes it for a segment.
const LockFile = "in_use.lock"

// ErrLocked is matched (errors.Is) by the *LockedError LockDir returns when
// another open file description, in this process or another, holds the lock.
var ErrLocked = errors.New("directory is locked")

// LockedError says who holds a directory lock.
type LockedError struct {
	Dir string
	PID int // the holder's process id as it wrote it; 0 if unreadable
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("directory %s is in use by process %d", e.Dir, e.PID)
	}
	return fmt.Sprintf("directory %s is in use by another process", e.Dir)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// DirLock is an exclusive lock on a directory, held until Unlock or until the
// process dies (the kernel drops it with the last descriptor: a SIGKILLed
// holder never leaves a stale lock behind).
type DirLock struct {
	f *os.File
}

// LockDir takes the exclusive lock of dir without blocking and writes this
// process's id into the lock file. It returns a *LockedError when the lock is
// held, even by another LockDir in this same process.
func LockDir(dir string) (*DirLock, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if held {
		pid := readPID(path)
		f.Close()
		return nil, &LockedError{Dir: dir, PID: pid}
	}
	// The PID is for humans and Probe only; the lock itself is the kernel's, so
	// it needs no sync.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &DirLock{f: f}, nil
}

// Unlock releases the lock. The lock file stays: removing it would race with
// the next locker opening it.
func (l *DirLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Probe reports whether dir's lock is held, and by which process, without
// taking it and without creating anything: it is for inspection tools that
// must not disturb a running agent.
func Probe(dir string) (locked bool, pid int, err error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("open lock %s: %w", path, err)
	}
	defer f.Close()
	locked, err = testLock(f)
	if err != nil || !locked {
		return false, 0, err
	}
	return true, readPID(path), nil
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}
