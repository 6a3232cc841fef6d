package taildir

// A crash between a rotation and the first batch: a file the source has
// taken up (seen under the pattern) is in the journal with an identity at
// once, before any of its lines is delivered, so when it is renamed out of
// the pattern while flumed is down, the restart finds it by inode and reads
// it from its start. This holds where the file system keeps no creation
// time too: the journal then names the file by its first bytes, recorded as
// soon as it has any. A file that matched the pattern only while flumed was
// down was never seen and is not read: no tailer can know it was a log.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/source/internal/sourcetest"
)

// tdJournal returns the journal's latest record per file.
func tdJournal(t *testing.T, dir string) map[fileID]tailPos {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "pos", "taildir_position.json.journal"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	state, _, _ := readTailJournal(data)
	return state
}

// tdJournaled reports whether the journal names inode ino.
func tdJournaled(t *testing.T, dir string, ino uint64) bool {
	for id := range tdJournal(t, dir) {
		if id.ino == ino {
			return true
		}
	}
	return false
}

// tdForgetBirths rewrites the journal as a file system without creation
// times would have written it.
func tdForgetBirths(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, "pos", "taildir_position.json.journal")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, line := range strings.SplitAfter(string(data), "\n") {
		rec, ok := decodeJournalLine([]byte(strings.TrimSuffix(line, "\n")))
		if !ok {
			continue
		}
		rec.Birth = 0
		out = appendJournalLine(out, rec)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTaildirRestartAfterRotation(t *testing.T) {
	// The position file is written only at start and stop: a crash leaves
	// the journal's records alone to tell what the source had seen.
	kv := func(dir string) map[string]string {
		return map[string]string{"filegroups": "g", "filegroups.g": dir + `/app\.log`, "writePosInterval": "600000"}
	}
	for _, birth := range []bool{true, false} {
		name := "a file taken up but never delivered from, rotated away while stopped, is read from its start"
		if !birth {
			name += " (file system without creation times)"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			w := newTDWriter(t, dir, "app.log", 50) // created empty: taken up before its first line
			src, _ := tdTaildir(t, dir, kv(dir))
			// A full channel: the source reads the lines but delivers none.
			p := &sourcetest.Recorder{Refuse: func(int) bool { return true }}
			tdRun(t, src, p)
			ino := tdInode(t, w.path())
			await.True(t, "the source to take up app.log", func() bool { return tdJournaled(t, dir, ino) })
			w.write(10)
			await.True(t, "a refused batch", func() bool { return p.Calls() > 0 })
			src.abandon() // crash
			if !birth {
				tdForgetBirths(t, dir)
			}
			// While flumed is down: the last lines, rotation, a new file.
			w.write(5)
			w.rotate(func() { os.Rename(w.path(), w.path()+".1") })
			w.reopen()
			w.write(3)
			got, lg := tdRestart(t, dir, kv(dir), 18)
			sourcetest.ExactlyOnce(t, got, 18)
			if !strings.Contains(lg.String(), "gone=true") {
				t.Errorf("the rotated file was not found by its inode:\n%s", lg)
			}
		})
	}

	t.Run("a file that matched the pattern only while flumed was stopped is not read", func(t *testing.T) {
		dir := t.TempDir()
		w := newTDWriter(t, dir, "app.log", 50)
		w.write(4) // lines 0-3
		tdRestart(t, dir, kv(dir), 4)
		// Two rotations while down: the second file was app.log only then.
		for n := 1; n <= 2; n++ {
			w.write(3) // lines 4-6 into the first file, 7-9 into the second
			w.rotate(func() { os.Rename(w.path(), fmt.Sprintf("%s.%d", w.path(), n)) })
			w.reopen()
		}
		w.write(2) // lines 10-11
		got, _ := tdRestart(t, dir, kv(dir), 5)
		var seqs []int
		for _, b := range got {
			seq, _ := sourcetest.Line(t, b)
			seqs = append(seqs, seq)
		}
		if want := []int{4, 5, 6, 10, 11}; !slices.Equal(seqs, want) {
			t.Errorf("lines %v arrived, want %v: the first file finished and the new one read, the unseen one not", seqs, want)
		}
	})
}
