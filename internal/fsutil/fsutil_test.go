// The contract of fsutil: WriteFileAtomic replaces a file whole and leaves no
// temporary behind; LockDir gives one holder per directory (also within one
// process), reports the holder's PID, and dies with its descriptor; Probe tells
// whether a directory is locked without taking or creating anything; Statfs
// reports real numbers; StartWriteback is advice that changes no byte and is
// no sync; Faulty fails writes after N bytes and syncs after N calls until
// healed, and fakes free space.
package fsutil

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWriteFileAtomicReplacesTheWholeFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "checkpoint")
	if err := WriteFileAtomic(OS{}, path, []byte("old content, longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(OS{}, path, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "new" {
		t.Fatalf("content = %q, %v; want %q", got, err, "new")
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left behind: %v", err)
	}
}

func TestWriteFileAtomicKeepsTheOldFileWhenTheSyncFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "checkpoint")
	if err := WriteFileAtomic(OS{}, path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := NewFaulty(nil)
	fs.FailSyncs(0, syscall.EIO)
	err := WriteFileAtomic(fs, path, []byte("new"), 0o644)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("err = %v, want EIO", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Fatalf("content = %q, want the old content", got)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left behind: %v", err)
	}
}

func TestASecondLockerIsToldThePIDOfTheHolder(t *testing.T) {
	dir := t.TempDir()
	l, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockDir(dir)
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
		t.Fatalf("second LockDir err = %v, want *LockedError", err)
	}
	if le.PID != os.Getpid() {
		t.Fatalf("holder PID = %d, want %d", le.PID, os.Getpid())
	}
	locked, pid, err := Probe(dir)
	if err != nil || !locked || pid != os.Getpid() {
		t.Fatalf("Probe = %v, %d, %v; want locked by %d", locked, pid, err, os.Getpid())
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	locked, _, err = Probe(dir)
	if err != nil || locked {
		t.Fatalf("Probe after Unlock = %v, %v; want unlocked", locked, err)
	}
	l2, err := LockDir(dir)
	if err != nil {
		t.Fatalf("LockDir after Unlock: %v", err)
	}
	l2.Unlock()
}

func TestProbeNeitherLocksNorCreates(t *testing.T) {
	dir := t.TempDir()
	locked, _, err := Probe(dir)
	if err != nil || locked {
		t.Fatalf("Probe of a fresh dir = %v, %v", locked, err)
	}
	if _, err := os.Stat(filepath.Join(dir, LockFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Probe created the lock file: %v", err)
	}
	l, err := LockDir(dir)
	if err != nil {
		t.Fatalf("LockDir after Probe: %v", err)
	}
	l.Unlock()
}

func TestStatfsReportsTheRealDisk(t *testing.T) {
	sp, err := OS{}.Statfs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if sp.Total == 0 || sp.Avail > sp.Free || sp.Free > sp.Total {
		t.Fatalf("implausible space %+v", sp)
	}
}

func TestFaultyWritesShortThenKeepsFailing(t *testing.T) {
	fs := NewFaulty(nil)
	fs.FailWrites(5, syscall.ENOSPC)
	f, err := fs.OpenFile(filepath.Join(t.TempDir(), "f"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := f.Write([]byte("0123456789"))
	if n != 5 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write = %d, %v; want 5 bytes then ENOSPC", n, err)
	}
	if n, err := f.Write([]byte("x")); n != 0 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("next Write = %d, %v; want ENOSPC again", n, err)
	}
	if err := fs.CheckWrite("f", 1); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("CheckWrite = %v; want ENOSPC", err)
	}
	fs.Heal()
	if n, err := f.Write([]byte("ok")); n != 2 || err != nil {
		t.Fatalf("Write after Heal = %d, %v", n, err)
	}
	b := make([]byte, 16)
	n, _ = f.ReadAt(b, 0)
	if string(b[:n]) != "01234ok" {
		t.Fatalf("file holds %q, want the bytes that were let through", b[:n])
	}
}

func TestFaultySyncsFailAfterNCalls(t *testing.T) {
	dir := t.TempDir()
	fs := NewFaulty(nil)
	fs.FailSyncs(2, syscall.EIO)
	f, err := fs.OpenFile(filepath.Join(dir, "f"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := fs.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("third sync = %v, want EIO", err)
	}
	if err := fs.SyncDir(dir); !errors.Is(err, syscall.EIO) {
		t.Fatalf("fourth sync = %v, want EIO", err)
	}
	if fs.Syncs() != 2 {
		t.Fatalf("Syncs = %d, want 2", fs.Syncs())
	}
}

func TestFaultyFakesFreeSpace(t *testing.T) {
	fs := NewFaulty(nil)
	fs.SetAvail(1234)
	sp, err := fs.Statfs(t.TempDir())
	if err != nil || sp.Avail != 1234 {
		t.Fatalf("Statfs = %+v, %v; want Avail 1234", sp, err)
	}
	fs.Heal()
	sp, _ = fs.Statfs(t.TempDir())
	if sp.Avail == 1234 {
		t.Fatal("Heal kept the fake free space")
	}
}

func TestStartWritebackIsAdviceThatChangesNothingAndIsNoSync(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	faulty := NewFaulty(nil) // counts every sync made through it
	for name, fsys := range map[string]FS{"os": OS{}, "faulty": faulty} {
		path := filepath.Join(dir, name)
		f, err := fsys.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		StartWriteback(f, 0, int64(len(data)))
		StartWriteback(f, 1<<20, 4<<20) // past the end too
		StartWriteback(f, 0, 0)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: the file holds %d bytes (%v), want the %d written, unchanged", name, len(got), err, len(data))
		}
	}
	if faulty.Syncs() != 0 {
		t.Fatalf("Faulty counted %d syncs, want none", faulty.Syncs())
	}
}
