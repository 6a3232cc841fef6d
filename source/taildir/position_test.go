package taildir

// Positions survive restarts and crashes. The position file keeps Flume's
// exact shape (so Flume and flumed can take it over from each other); a
// Flume-written one is picked up by inode. A torn or empty position file is
// trusted up to the damage, the journal fills in what it lost, and the log
// says so. Each committed batch is in the journal before the next is read, so
// a crash repeats nothing that was committed. A file whose inode now holds
// different bytes is read from 0; a file renamed while flumed was stopped
// keeps its position, also when it left the pattern.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/flumed/flumed/internal/fsutil"
	"github.com/flumed/flumed/source/internal/sourcetest"
)

func tdInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// tdRestart runs a fresh source over the same files and position file until
// n more lines arrived, and returns them.
func tdRestart(t *testing.T, dir string, kv map[string]string, n int) ([]string, *sourcetest.Log) {
	t.Helper()
	src, lg := tdTaildir(t, dir, kv)
	p := &sourcetest.Recorder{}
	r := tdRun(t, src, p)
	tdSettle(t, p, r, n)
	r.Stop()
	return p.Bodies(), lg
}

func TestTaildirPositions(t *testing.T) {
	t.Run("a Flume-written position file is picked up by inode", func(t *testing.T) {
		dir := t.TempDir()
		a, b := newTDWriter(t, dir, "a.log", 50), newTDWriter(t, dir, "b.log", 50)
		a.write(30)
		b.write(30)
		pos := filepath.Join(dir, "flume.json")
		flume := fmt.Sprintf(`[{"inode":%d,"pos":%d,"file":"%s"},{"inode":%d,"pos":%d,"file":"%s"}]`,
			tdInode(t, a.path()), 10*50, a.path(), tdInode(t, b.path()), 25*50, b.path())
		os.WriteFile(pos, []byte(flume), 0o644)
		got, lg := tdRestart(t, dir, map[string]string{"filegroups": "g", "filegroups.g": dir + `/.\.log`,
			"positionFile": pos}, 25)
		if len(got) != 25 {
			t.Fatalf("got %d lines, want 20 from a and 5 from b: %q", len(got), got)
		}
		if !strings.Contains(lg.String(), "picking up a position file without a flumed journal") {
			t.Errorf("migration not logged:\n%s", lg)
		}
	})

	t.Run("the position file has Flume's exact shape", func(t *testing.T) {
		dir := t.TempDir()
		a := newTDWriter(t, dir, "a.log", 50)
		a.write(7)
		tdRestart(t, dir, map[string]string{"filegroups": "g", "filegroups.g": dir + `/a\.log`}, 7)
		data, err := os.ReadFile(filepath.Join(dir, "pos", "taildir_position.json"))
		if err != nil {
			t.Fatal(err)
		}
		var entries []map[string]any
		if err := json.Unmarshal(data, &entries); err != nil {
			t.Fatalf("not a JSON array: %v: %s", err, data)
		}
		if len(entries) != 1 {
			t.Fatalf("entries: %s", data)
		}
		var keys []string
		for k := range entries[0] {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		// Flume's reader throws on any other name: nothing else may be there.
		if strings.Join(keys, ",") != "file,inode,pos" || entries[0]["pos"] != float64(7*50) ||
			entries[0]["inode"] != float64(tdInode(t, a.path())) || entries[0]["file"] != a.path() {
			t.Fatalf("entry: %s", data)
		}
	})

	t.Run("a torn position file is trusted up to the damage and the journal fills in the rest", func(t *testing.T) {
		dir := t.TempDir()
		a, b := newTDWriter(t, dir, "a.log", 50), newTDWriter(t, dir, "b.log", 50)
		a.write(100)
		b.write(100)
		kv := map[string]string{"filegroups": "g", "filegroups.g": dir + `/.\.log`}
		tdRestart(t, dir, kv, 200)
		a.write(10)
		b.write(10)
		// Flume rewrites the file in place: a crash leaves a prefix.
		pos := filepath.Join(dir, "pos", "taildir_position.json")
		data, _ := os.ReadFile(pos)
		cut := strings.Index(string(data), "},{") + 1
		os.WriteFile(pos, data[:cut+5], 0o644)
		got, lg := tdRestart(t, dir, kv, 20)
		// Only the new lines: a's position from the torn file, b's from the journal.
		sourcetest.ExactlyRange(t, tdFilterFile(got, "a.log"), 100, 110)
		sourcetest.ExactlyRange(t, tdFilterFile(got, "b.log"), 100, 110)
		if !strings.Contains(lg.String(), "position file is empty or damaged") || !strings.Contains(lg.String(), "using the journal's position") {
			t.Errorf("damage not logged:\n%s", lg)
		}
	})

	t.Run("an empty position file without a journal starts files at 0 and says so", func(t *testing.T) {
		dir := t.TempDir()
		a := newTDWriter(t, dir, "a.log", 50)
		a.write(10)
		pos := filepath.Join(dir, "pos", "taildir_position.json")
		os.MkdirAll(filepath.Dir(pos), 0o755)
		os.WriteFile(pos, nil, 0o644)
		got, lg := tdRestart(t, dir, map[string]string{"filegroups": "g", "filegroups.g": dir + `/a\.log`}, 10)
		sourcetest.ExactlyOnce(t, got, 10)
		if !strings.Contains(lg.String(), "position file is empty or damaged") {
			t.Errorf("damage not logged:\n%s", lg)
		}
	})

	t.Run("a torn journal tail is ignored and logged", func(t *testing.T) {
		dir := t.TempDir()
		a := newTDWriter(t, dir, "a.log", 50)
		a.write(10)
		kv := map[string]string{"filegroups": "g", "filegroups.g": dir + `/a\.log`, "writePosInterval": "600000"}
		src, _ := tdTaildir(t, dir, kv)
		p := &sourcetest.Recorder{}
		r := tdRun(t, src, p)
		tdSettle(t, p, r, 10)
		src.abandon() // crash: only the journal knows about the 10 lines
		j, _ := os.OpenFile(filepath.Join(dir, "pos", "taildir_position.json.journal"), os.O_WRONLY|os.O_APPEND, 0)
		j.WriteString(`0000abcd {"dev":1,"ino`)
		j.Close()
		a.write(5)
		got, lg := tdRestart(t, dir, kv, 5)
		if len(got) != 5 || !strings.HasPrefix(got[0], "seq=0000010") {
			t.Fatalf("got %q", got)
		}
		if !strings.Contains(lg.String(), "position journal has a damaged tail") {
			t.Errorf("torn journal not logged:\n%s", lg)
		}
	})

	t.Run("after a crash the journal repeats nothing that was committed", func(t *testing.T) {
		dir := t.TempDir()
		w := newTDWriter(t, dir, "a.log", 80)
		kv := map[string]string{"filegroups": "g", "filegroups.g": dir + `/a\.log`, "batchSize": "16",
			"writePosInterval": "600000"} // the Flume file is written only at start
		var all []string
		for range 5 {
			src, _ := tdTaildir(t, dir, kv)
			p := &sourcetest.Recorder{}
			r := tdRun(t, src, p)
			w.write(333)
			tdSettle(t, p, r, 333)
			src.abandon()
			all = append(all, p.Bodies()...)
		}
		sourcetest.ExactlyOnce(t, all, 5*333)
	})

	t.Run("positionSync=batch syncs the journal per batch, interval only at checkpoints", func(t *testing.T) {
		for _, mode := range []string{"batch", "interval"} {
			dir := t.TempDir()
			w := newTDWriter(t, dir, "a.log", 80)
			w.write(100)
			src, _ := tdTaildir(t, dir, map[string]string{"filegroups": "g", "filegroups.g": dir + `/a\.log`,
				"positionSync": mode, "batchSize": "10", "writePosInterval": "600000"})
			faulty := fsutil.NewFaulty(nil)
			src.fs = faulty
			p := &sourcetest.Recorder{}
			r := tdRun(t, src, p)
			tdSettle(t, p, r, 100)
			r.Stop()
			// Each checkpoint (start, stop) syncs 2 files and 2 directory entries.
			batchSyncs := faulty.Syncs() - 2*4
			if want := map[string]int{"batch": 10, "interval": 0}[mode]; batchSyncs != want {
				t.Errorf("positionSync=%s: %d syncs besides the checkpoints, want %d", mode, batchSyncs, want)
			}
		}
	})

	t.Run("a file whose inode holds different bytes is read from 0", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "a.log")
		os.WriteFile(path, []byte(strings.Repeat("old line\n", 200)), 0o644)
		kv := map[string]string{"filegroups": "g", "filegroups.g": dir + `/a\.log`}
		tdRestart(t, dir, kv, 200)
		ino := tdInode(t, path)
		// Same inode, same size, other content: what inode reuse looks like.
		os.WriteFile(path, []byte(strings.Repeat("new line\n", 200)), 0o644)
		if tdInode(t, path) != ino {
			t.Skip("the file system gave the rewritten file a new inode; nothing to test")
		}
		got, lg := tdRestart(t, dir, kv, 200)
		if len(got) != 200 || got[0] != "new line" {
			t.Fatalf("got %d lines starting %q", len(got), got[:min(1, len(got))])
		}
		if !strings.Contains(lg.String(), "inode holds a different file") {
			t.Errorf("not logged:\n%s", lg)
		}
	})

	t.Run("a file rotated out of the pattern while stopped is read to its end", func(t *testing.T) {
		dir := t.TempDir()
		w := newTDWriter(t, dir, "app.log", 50)
		w.write(40)
		kv := map[string]string{"filegroups": "g", "filegroups.g": dir + `/app\.log`, "idleTimeout": "100"}
		tdRestart(t, dir, kv, 40)
		w.write(10)
		os.Rename(w.path(), w.path()+".1")
		w.reopen()
		w.write(5)
		got, lg := tdRestart(t, dir, kv, 15)
		sourcetest.ExactlyOnce(t, append(tdEarlierLines(40), got...), 55)
		if !strings.Contains(lg.String(), "gone=true") {
			t.Errorf("the rotated file was not found:\n%s", lg)
		}
	})

	t.Run("a failing journal write is logged and the next checkpoint recovers", func(t *testing.T) {
		dir := t.TempDir()
		w := newTDWriter(t, dir, "a.log", 50)
		src, lg := tdTaildir(t, dir, map[string]string{"filegroups": "g", "filegroups.g": dir + `/a\.log`})
		faulty := fsutil.NewFaulty(nil)
		src.fs = faulty
		p := &sourcetest.Recorder{}
		r := tdRun(t, src, p)
		faulty.FailSyncs(0, errors.New("EIO"))
		w.write(50)
		tdSettle(t, p, r, 50)
		faulty.Heal()
		w.write(50)
		tdSettle(t, p, r, 100)
		sourcetest.ExactlyOnce(t, p.Bodies(), 100)
		if !strings.Contains(lg.String(), "cannot record a position") {
			t.Errorf("not logged:\n%s", lg)
		}
	})
}

// filterFile keeps the lines written to the named file.
func tdFilterFile(bodies []string, name string) []string {
	var out []string
	for _, b := range bodies {
		if strings.Contains(b, " "+name+" ") {
			out = append(out, b)
		}
	}
	return out
}

// makeSeqLines stands for lines 0..n-1 of file 0, delivered by an earlier run.
func tdEarlierLines(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("seq=%07d gen=000 earlier", i)
	}
	return out
}
