package fsutil

import (
	"os"
	"sync"
)

// Faulty wraps an FS and fails writes or syncs on demand, the way a full or
// failing disk does, and can pretend the disk has a given amount of free space.
// It is for tests; it is safe for concurrent use.
//
// Once a fault has fired it keeps firing until Heal: a full disk stays full and
// a failed device stays failed.
type Faulty struct {
	base FS

	mu         sync.Mutex
	writeLeft  int64 // bytes still allowed before writeErr fires; <0: no fault
	writeErr   error
	syncLeft   int // syncs still allowed before syncErr fires; <0: no fault
	syncErr    error
	avail      uint64
	fakeAvail  bool
	syncs      int
	wroteBytes int64
}

var _ FS = (*Faulty)(nil)

// NewFaulty returns a Faulty over base (OS{} when nil) with no fault armed.
func NewFaulty(base FS) *Faulty {
	if base == nil {
		base = OS{}
	}
	return &Faulty{base: base, writeLeft: -1, syncLeft: -1}
}

// FailWrites lets n more bytes be written, then fails every write with err (a
// write that crosses the limit writes its first bytes and returns err, like a
// short write on a full disk).
func (f *Faulty) FailWrites(n int64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writeLeft, f.writeErr = n, err
}

// FailSyncs lets n more syncs (file or directory) succeed, then fails every
// sync with err.
func (f *Faulty) FailSyncs(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncLeft, f.syncErr = n, err
}

// SetAvail makes Statfs report avail bytes available (and free).
func (f *Faulty) SetAvail(avail uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.avail, f.fakeAvail = avail, true
}

// Heal disarms every fault and the fake free space.
func (f *Faulty) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writeLeft, f.syncLeft, f.fakeAvail = -1, -1, false
}

// Syncs counts the syncs that succeeded, files and directories together.
func (f *Faulty) Syncs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncs
}

// Written counts the bytes written or announced through CheckWrite.
func (f *Faulty) Written() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wroteBytes
}

// allowWrite returns how many of n bytes may be written and the error to
// return after them.
func (f *Faulty) allowWrite(n int64) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writeLeft < 0 || n <= f.writeLeft {
		if f.writeLeft >= 0 {
			f.writeLeft -= n
		}
		f.wroteBytes += n
		return n, nil
	}
	ok := f.writeLeft
	f.writeLeft = 0
	f.wroteBytes += ok
	return ok, f.writeErr
}

func (f *Faulty) sync(op, path string, do func() error) error {
	f.mu.Lock()
	if f.syncLeft == 0 {
		err := f.syncErr
		f.mu.Unlock()
		return &os.PathError{Op: op, Path: path, Err: err}
	}
	if f.syncLeft > 0 {
		f.syncLeft--
	}
	f.mu.Unlock()
	if err := do(); err != nil {
		return err
	}
	f.mu.Lock()
	f.syncs++
	f.mu.Unlock()
	return nil
}

// OpenFile opens through the base FS and wraps the file so its writes and
// syncs obey the armed faults.
func (f *Faulty) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.base.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: file, fs: f}, nil
}

// Rename passes through.
func (f *Faulty) Rename(oldpath, newpath string) error { return f.base.Rename(oldpath, newpath) }

// Remove passes through.
func (f *Faulty) Remove(name string) error { return f.base.Remove(name) }

// SyncDir fails like a file sync when a sync fault is armed.
func (f *Faulty) SyncDir(dir string) error {
	return f.sync("sync dir", dir, func() error { return f.base.SyncDir(dir) })
}

// Statfs reports the fake free space when one is set.
func (f *Faulty) Statfs(dir string) (Space, error) {
	sp, err := f.base.Statfs(dir)
	if err != nil {
		return sp, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fakeAvail {
		sp.Avail, sp.Free = f.avail, f.avail
	}
	return sp, nil
}

// CheckWrite fails when the armed write budget cannot hold n more bytes.
func (f *Faulty) CheckWrite(name string, n int64) error {
	_, err := f.allowWrite(n)
	if err != nil {
		return &os.PathError{Op: "write", Path: name, Err: err}
	}
	return nil
}

type faultyFile struct {
	File
	fs *Faulty
}

func (f *faultyFile) Write(p []byte) (int, error) {
	ok, ferr := f.fs.allowWrite(int64(len(p)))
	n, err := f.File.Write(p[:ok])
	if err != nil {
		return n, err
	}
	if ferr != nil {
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: ferr}
	}
	return n, nil
}

func (f *faultyFile) Sync() error { return f.fs.sync("fdatasync", f.Name(), f.File.Sync) }
