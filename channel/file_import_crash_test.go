package channel_test

// An import survives kill -9 at any step: the test binary runs itself as a
// child that opens a file channel on a copy of a Flume fixture and stops at
// a given step of the import (after the Flume backlog is read, after the
// marker, after an append, after the sync, after the checkpoint, after the
// "imported" marker, after the note, after a file is set aside, before and
// after the marker's removal); the parent SIGKILLs it there, sometimes twice
// in a row at later steps of the resumed import, then opens the channel
// itself. Whatever the step, the channel then holds exactly what Flume
// delivered from the fixture, once, in order; Flume's files are all set
// aside, unchanged; and no marker is left.
//
// A second test sweeps the crash point over every write, sync, rename and
// removal the open makes through the file-system seam (a crash before that
// operation), then restarts on the real file system.

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/channel/flumefile/flumefiletest"
	"github.com/flumed/flumed/internal/fsutil"
)

const (
	importKillDirEnv  = "FLUMED_IMPORT_KILL_DIR"
	importKillStepEnv = "FLUMED_IMPORT_KILL_STEP" // step name and occurrence: "appended:3"
	importFixture     = "multi-dir-rolled"        // two data dirs, six data files, 10000 events
)

// smallImport makes the import write uncompressed records of 16 KiB in
// appends of 64 KiB: about 45 appends, so that kills land between them.
func smallImport(o channel.FileOptions, step func(string)) channel.FileOptions {
	o.Compress = false
	return channel.WithImportSteps(o, step, 16<<10, 64<<10)
}

func TestFileImportKillChild(t *testing.T) {
	dir := os.Getenv(importKillDirEnv)
	if dir == "" {
		t.Skip("the child of TestFileImportSurvivesKill9: runs only when that test starts it")
	}
	name, nth, _ := strings.Cut(os.Getenv(importKillStepEnv), ":")
	want, _ := strconv.Atoi(nth)
	seen := 0
	o := smallImport(flumeChannelOptions(t, dir), func(step string) {
		if step != name {
			return
		}
		if seen++; seen == want {
			os.Stdout.WriteString("@at " + step + "\n")
			select {} // the parent kills us here
		}
	})
	ch, err := channel.OpenFile("c1", o, nil)
	if err != nil {
		fmt.Printf("@error open: %v\n", err)
		os.Exit(2)
	}
	ch.Close()
	os.Stdout.WriteString("@open\n")
}

// killAt runs the child on dir until it reaches step (occurrence n) and
// kills it there. It reports false when the child opened without reaching
// the step (the import had already passed it).
func killAt(t *testing.T, dir, step string, n int) bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFileImportKillChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), importKillDirEnv+"="+dir, fmt.Sprintf("%s=%s:%d", importKillStepEnv, step, n))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "@at "):
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			return true
		case strings.HasPrefix(line, "@error"):
			t.Fatalf("child: %s", line)
		case line == "@open":
			return false
		}
	}
	t.Fatalf("child ended without reaching %s #%d: %v", step, n, cmd.Wait())
	return false
}

// checkImported opens the channel on dir and checks it holds exactly what
// Flume delivered, with Flume's files set aside and no marker left.
func checkImported(t *testing.T, dir string) {
	t.Helper()
	o := flumeChannelOptions(t, dir)
	ch := openFile(t, o)
	got := drainEvents(t, ch)
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	sameEvents(t, got, flumefiletest.Expected(t, importFixture))
	if left := flumeFilesLeft(t, o); len(left) > 0 {
		t.Fatalf("Flume files still in place: %v", left)
	}
	if _, err := os.Stat(filepath.Join(o.CheckpointDir, "flume-import.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("marker left behind (%v)", err)
	}
	var moved int
	for _, a := range asideDirs(t, dir) {
		ents, err := os.ReadDir(a)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Name() == "IMPORTED-BY-FLUMED.txt" {
				continue
			}
			moved++
			rel, _ := filepath.Rel(dir, filepath.Join(filepath.Dir(a), e.Name()))
			orig, err1 := os.ReadFile(filepath.Join(flumefiletest.Root(), importFixture, rel))
			kept, err2 := os.ReadFile(filepath.Join(a, e.Name()))
			if err1 != nil || err2 != nil || string(orig) != string(kept) {
				t.Fatalf("%s not kept unchanged (%v, %v)", rel, err1, err2)
			}
		}
	}
	if want := len(flumeFilesLeft(t, flumeChannelOptions(t, filepath.Join(flumefiletest.Root(), importFixture)))); moved != want {
		t.Fatalf("%d Flume files set aside, want %d", moved, want)
	}
}

func TestFileImportSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the kill test starts many processes")
	}
	type kill struct {
		step string
		n    int
	}
	cases := []struct {
		name  string
		kills []kill
	}{
		{"after Flume's backlog is read, before anything is written", []kill{{"read", 1}}},
		{"after the marker, before the first append", []kill{{"marked", 1}}},
		{"after the first append", []kill{{"appended", 1}}},
		{"in the middle of the appends", []kill{{"appended", 20}}},
		{"in the middle of the appends, then again in the resumed import", []kill{{"appended", 15}, {"appended", 10}}},
		{"after the log's sync, before the checkpoint", []kill{{"synced", 1}}},
		{"after the checkpoint, before the imported marker", []kill{{"checkpointed", 1}}},
		{"after the imported marker, before anything is moved", []kill{{"imported", 1}}},
		{"after the first note", []kill{{"noted", 1}}},
		{"after the first file is set aside", []kill{{"moved", 1}}},
		{"half way through setting files aside, then again", []kill{{"moved", 9}, {"moved", 3}}},
		{"after everything is set aside, before the marker goes", []kill{{"aside", 1}}},
		{"after the marker goes", []kill{{"done", 1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := flumefiletest.Copy(t, importFixture)
			for _, k := range tc.kills {
				if !killAt(t, dir, k.step, k.n) {
					t.Fatalf("the import did not reach %s #%d", k.step, k.n)
				}
			}
			checkImported(t, dir)
		})
	}
}

// stopFS lets the first n operations through and fails every later one,
// as a crash before operation n+1 would leave the disk (a process crash
// keeps what was written: the page cache survives it).
type stopFS struct {
	mu   sync.Mutex
	left int
}

var errStopped = errors.New("crashed here")

func (s *stopFS) step() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.left == 0 {
		return errStopped
	}
	s.left--
	return nil
}

func (s *stopFS) OpenFile(name string, flag int, perm os.FileMode) (fsutil.File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND) != 0 {
		if err := s.step(); err != nil {
			return nil, err
		}
	}
	f, err := fsutil.OS{}.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &stopFile{File: f, fs: s}, nil
}

func (s *stopFS) Rename(a, b string) error {
	if err := s.step(); err != nil {
		return err
	}
	return os.Rename(a, b)
}

func (s *stopFS) Remove(name string) error {
	if err := s.step(); err != nil {
		return err
	}
	return os.Remove(name)
}

func (s *stopFS) SyncDir(dir string) error {
	if err := s.step(); err != nil {
		return err
	}
	return fsutil.OS{}.SyncDir(dir)
}

func (s *stopFS) Statfs(dir string) (fsutil.Space, error) { return fsutil.OS{}.Statfs(dir) }

func (s *stopFS) CheckWrite(string, int64) error { return s.step() }

type stopFile struct {
	fsutil.File
	fs *stopFS
}

func (f *stopFile) Write(b []byte) (int, error) {
	if err := f.fs.step(); err != nil {
		return 0, err
	}
	return f.File.Write(b)
}

func (f *stopFile) Sync() error {
	if err := f.fs.step(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *stopFile) Truncate(n int64) error {
	if err := f.fs.step(); err != nil {
		return err
	}
	return f.File.Truncate(n)
}

func TestFileImportCrashPointSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the sweep opens the channel hundreds of times")
	}
	var points int
	for n := 0; ; n++ {
		dir := flumefiletest.Copy(t, importFixture)
		o := channel.WithImportSteps(flumeChannelOptions(t, dir), nil, 256<<10, 1<<20)
		o.FS = &stopFS{left: n}
		ch, err := channel.OpenFile("c1", o, nil)
		if err == nil {
			// n operations are enough for the whole open: the sweep is done.
			ch.Close()
			checkImported(t, dir)
			points = n
			break
		}
		if !errors.Is(err, errStopped) {
			t.Fatalf("crash before operation %d: open failed with %v, not the crash", n+1, err)
		}
		checkImported(t, dir)
		if t.Failed() {
			t.Fatalf("after a crash before operation %d", n+1)
		}
		os.RemoveAll(dir)
	}
	if points < 40 {
		t.Fatalf("the sweep covered only %d operations", points)
	}
	t.Logf("crash points swept: %d", points)
}
