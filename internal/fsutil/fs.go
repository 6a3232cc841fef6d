// Package fsutil is the small file-system layer under the write-ahead log and
// the file channel: data sync of files, directory sync, atomic file replacement,
// a directory lock, a free-space query, and a seam (FS) through which all of it
// goes so tests can inject ENOSPC and EIO.
//
// It knows nothing about events, records or channels, and it never retries a
// failed sync: after a failed fsync the kernel may have dropped the dirty pages
// and marked them clean, so a second fsync that succeeds proves nothing. Callers
// treat a sync error as fatal for whatever they were making durable.
package fsutil

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// File is an open file as the FS hands it out. *os.File satisfies it except for
// Sync, whose meaning here is narrower: see OS.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.Closer
	Name() string
	// Sync makes the file's data and size durable (fdatasync on Linux). An error
	// means the data written since the last successful Sync may be lost; never
	// retry and trust a later success.
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
}

// Space is what Statfs reports about the file system holding a directory.
type Space struct {
	Total uint64 // bytes in the file system
	Free  uint64 // bytes free, including those reserved for root
	Avail uint64 // bytes an unprivileged process may still write
}

// FS is the seam between the log and the operating system. Every write, sync,
// rename and removal that matters for durability goes through it, so a test can
// swap OS for a Faulty one. Reading files and directories goes straight to the
// os package: a read fault is just an error, with nothing to prove about it.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	// SyncDir makes the directory's entries (created, renamed, removed names)
	// durable. Creating or renaming a file is not durable until its directory
	// is synced.
	SyncDir(dir string) error
	// Statfs reports the space of the file system holding dir.
	Statfs(dir string) (Space, error)
	// CheckWrite is called before n bytes are appended to the file name by code
	// that writes through its own handle (tidwall/wal holds its own *os.File).
	// OS always allows it; Faulty counts the bytes as a write and fails it the
	// way a real write would have failed.
	CheckWrite(name string, n int64) error
}

// OS is the real file system.
type OS struct{}

var _ FS = OS{}

// OpenFile opens a file like os.OpenFile.
func (OS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Rename renames like os.Rename; the directory still needs SyncDir.
func (OS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// Remove removes like os.Remove; the directory still needs SyncDir.
func (OS) Remove(name string) error { return os.Remove(name) }

// SyncDir fsyncs the directory itself.
func (OS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return fmt.Errorf("sync dir %s: %w", dir, serr)
	}
	return cerr
}

// Statfs queries the file system holding dir.
func (OS) Statfs(dir string) (Space, error) { return statfs(dir) }

// CheckWrite allows every write: the real disk reports its own errors.
func (OS) CheckWrite(string, int64) error { return nil }

// osFile is an *os.File whose Sync is a data sync.
type osFile struct{ *os.File }

func (f osFile) Sync() error { return datasync(f.File) }

// StartWriteback asks the kernel to start writing [off, off+n) of f to disk
// now, without waiting for it (sync_file_range SYNC_FILE_RANGE_WRITE on
// Linux), so that a writer streaming large appends keeps the disk busy while
// it copies the next bytes, and its next Sync waits for little. It is advice
// only: it makes nothing durable (only Sync does), an error is ignored, and
// files that are not the OS's (Faulty's) and other systems get nothing.
func StartWriteback(f File, off, n int64) {
	if o, ok := f.(osFile); ok && n > 0 {
		startWriteback(o.File, off, n)
	}
}

// WriteFileAtomic replaces path with data so that after a crash the file holds
// either its old content or all of data, never a mix: it writes a temporary
// file next to path, syncs it, renames it over path and syncs the directory.
// The temporary file is path+".tmp"; one writer per path is assumed, and a
// leftover from a crash is simply overwritten by the next call.
func WriteFileAtomic(fsys FS, path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		fsys.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	// The content must be durable before the name points at it, or a crash
	// could leave the new name on an empty or partial file.
	if err := f.Sync(); err != nil {
		f.Close()
		fsys.Remove(tmp)
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		fsys.Remove(tmp)
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := fsys.Rename(tmp, path); err != nil {
		fsys.Remove(tmp)
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	// The rename itself is only durable once the directory is synced.
	return fsys.SyncDir(filepath.Dir(path))
}
