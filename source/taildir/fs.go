package taildir

import (
	"errors"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// This file is the taildir source's seam to the file system it reads: every
// directory listing, stat, open and read of a followed file goes through a
// tailFS. Production uses osFS; tests wrap it to run a rotation between two
// chosen calls, which is how a race between the source and logrotate is
// replayed step by step instead of hoped for under load. The position files
// are written through fsutil.FS, not this.

// tailFS is what the taildir source reads files through. Only the source's
// goroutine calls it.
type tailFS interface {
	// ReadDir lists the names in dir.
	ReadDir(dir string) ([]string, error)
	// Stat describes path, following symlinks as Flume does.
	Stat(path string) (tailStat, error)
	// Open opens path for reading.
	Open(path string) (tailHandle, error)
}

// tailHandle is an open file. ReadAt may return io.EOF with a short read.
type tailHandle interface {
	io.ReaderAt
	// Stat describes the open file (fstat).
	Stat() (tailStat, error)
	// Birth is the file's creation time in ns, or 0 where the file system
	// keeps none.
	Birth() int64
	Close() error
}

// fileID is a file's identity while it exists: device and inode.
type fileID struct{ dev, ino uint64 }

// tailStat is what the source needs to know of a stat.
type tailStat struct {
	id      fileID
	size    int64
	mtime   time.Time
	regular bool
}

// osFS is the real file system.
type osFS struct{}

var _ tailFS = osFS{}

func (osFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, err
}

func (osFS) Stat(path string) (tailStat, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return tailStat{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return statOf(&st), nil
}

func (osFS) Open(path string) (tailHandle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return osHandle{f}, nil
}

type osHandle struct{ *os.File }

func (h osHandle) Stat() (tailStat, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(h.Fd()), &st); err != nil {
		return tailStat{}, &os.PathError{Op: "fstat", Path: h.Name(), Err: err}
	}
	return statOf(&st), nil
}

func (h osHandle) Birth() int64 {
	var stx unix.Statx_t
	if unix.Statx(int(h.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_BTIME, &stx) != nil || stx.Mask&unix.STATX_BTIME == 0 {
		return 0
	}
	return stx.Btime.Sec*1e9 + int64(stx.Btime.Nsec)
}

func statOf(st *syscall.Stat_t) tailStat {
	return tailStat{id: fileID{dev: uint64(st.Dev), ino: st.Ino}, size: st.Size,
		mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec), regular: st.Mode&syscall.S_IFMT == syscall.S_IFREG}
}

// handleID is the identity of an open file.
func handleID(f tailHandle) (fileID, bool) {
	st, err := f.Stat()
	return st.id, err == nil
}

// fileSize is the size of an open file, 0 when unknown.
func fileSize(f tailHandle) int64 {
	if f == nil {
		return 0
	}
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	return st.size
}

// readAtMost reads up to len(buf) bytes at off; a short file is not an error.
func readAtMost(f io.ReaderAt, buf []byte, off int64) (int, error) {
	n, err := f.ReadAt(buf, off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}
