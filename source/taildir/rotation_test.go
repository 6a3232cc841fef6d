package taildir

// Rotation: while an application appends to app.log, the file is rotated the
// ways applications and logrotate do it. In every case each line written is
// delivered exactly once, and the lines of each file in the order written:
//   - rename and create: the renamed file is read to its end (also the lines
//     the application still writes into it before reopening), the new file
//     from 0;
//   - with the rotated names matched by the pattern too, a renamed file keeps
//     its position instead of being read again (Flume's duplicate);
//   - copytruncate: the shrunk file restarts at 0 and the log says so; when the
//     copies are matched too, a reader that lags behind finishes from the copy
//     what the truncation took away;
//   - delete: a deleted file still open is read to its end.
// The processor is slowed down so the source lags behind the writer and
// rotations catch it with unread lines.

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/source/internal/sourcetest"
)

type tdRotation struct {
	pattern string          // file name part of the group's path
	rotate  func(*tdWriter) // runs with the writer paused
	// seen makes each rotation wait until the source has read a line of the
	// current file: a file rotated away or deleted before anyone opened it
	// cannot be read by anyone.
	seen bool
	lag  time.Duration // per batch
}

// run writes 6 rotations' worth of lines through p while rotating, then
// checks that every line arrived exactly once.
func (r tdRotation) run(t *testing.T, p *sourcetest.Recorder) *sourcetest.Log {
	dir := t.TempDir()
	w := newTDWriter(t, dir, "app.log", 100)
	src, lg := tdTaildir(t, dir, map[string]string{"filegroups": "g", "filegroups.g": dir + "/" + r.pattern,
		"batchSize": "20", "idleTimeout": "300"})
	p.Delay = r.lag
	poll := tdRun(t, src, p)
	for range 6 {
		for range 8 {
			w.write(25)
			time.Sleep(time.Millisecond) // pacing: an application writes over time
		}
		if r.seen {
			gen := w.gen
			await.True(t, fmt.Sprintf("a line of file %d", gen), func() bool { return tdSawGen(t, p, gen) })
		}
		w.rotate(func() { r.rotate(w) })
	}
	w.write(100)
	tdSettle(t, p, poll, w.written())
	sourcetest.ExactlyOnce(t, p.Bodies(), w.written())
	return lg
}

func tdSawGen(t *testing.T, p *sourcetest.Recorder, gen int) bool {
	for _, b := range p.Bodies() {
		if _, g := sourcetest.Line(t, b); g == gen {
			return true
		}
	}
	return false
}

func TestTaildirRotation(t *testing.T) {
	t.Run("rename and create: the old file is finished, the new one starts at 0", func(t *testing.T) {
		tdRotation{pattern: `app\.log`, seen: true, lag: time.Millisecond, rotate: func(w *tdWriter) {
			os.Rename(w.path(), w.path()+".1")
			w.reopen()
		}}.run(t, &sourcetest.Recorder{})
	})

	t.Run("logrotate create: lines written into the renamed file before the reopen are read", func(t *testing.T) {
		tdRotation{pattern: `app\.log`, seen: true, lag: time.Millisecond, rotate: func(w *tdWriter) {
			w.shift(3)
			os.Rename(w.path(), w.path()+".1")
			os.WriteFile(w.path(), nil, 0o644) // logrotate creates the new file
			w.writeLocked(10)                  // the application has not reopened yet
			w.reopen()
		}}.run(t, &sourcetest.Recorder{})
	})

	t.Run("logrotate create with the rotated names matched: renamed files keep their position", func(t *testing.T) {
		lg := tdRotation{pattern: `app\.log.*`, seen: true, lag: time.Millisecond, rotate: func(w *tdWriter) {
			w.shift(4)
			os.Rename(w.path(), w.path()+".1")
			os.WriteFile(w.path(), nil, 0o644)
			w.writeLocked(10)
			w.reopen()
		}}.run(t, &sourcetest.Recorder{})
		if !strings.Contains(lg.String(), "file renamed; keeping its position") {
			t.Errorf("no rename was noticed:\n%s", lg)
		}
	})

	t.Run("copytruncate: the shrunk file restarts at 0 and the log says so", func(t *testing.T) {
		p := &sourcetest.Recorder{}
		lg := tdRotation{pattern: `app\.log`, rotate: func(w *tdWriter) {
			// Without the copy in the pattern, only lines read before the
			// truncation can be delivered: wait until the source caught up.
			await.True(t, "the source to catch up", func() bool { return p.Count() == w.seq })
			w.copyTo(w.path() + ".1")
			os.Truncate(w.path(), 0)
			w.gen++ // what follows is a new file's content
		}}.run(t, p)
		if !strings.Contains(lg.String(), "file was truncated or rewritten (copytruncate?); restarting at 0") {
			t.Errorf("the truncation was not logged:\n%s", lg)
		}
	})

	t.Run("logrotate copytruncate with the copies matched: a lagging reader finishes from the copy", func(t *testing.T) {
		lg := tdRotation{pattern: `app\.log.*`, lag: 3 * time.Millisecond, rotate: func(w *tdWriter) {
			w.shift(10)
			w.copyTo(w.path() + ".1")
			os.Truncate(w.path(), 0)
			w.gen++
		}}.run(t, &sourcetest.Recorder{})
		if !strings.Contains(lg.String(), "copy") {
			t.Errorf("no copy was recognised:\n%s", lg)
		}
	})

	t.Run("delete: a deleted file still written by the application is read to its end", func(t *testing.T) {
		tdRotation{pattern: `app\.log`, seen: true, lag: time.Millisecond, rotate: func(w *tdWriter) {
			os.Remove(w.path())
			w.writeLocked(10) // into the deleted file
			w.reopen()
		}}.run(t, &sourcetest.Recorder{})
	})
}
