package taildir

// Renames under a scan: logrotate renames app.log.1 to app.log.2, app.log to
// app.log.1 and creates app.log while the source lists the directory. A
// listing is not a snapshot: it may miss a file under both its old and its
// new name. A file missed once is not forgotten, so when the next listing
// finds it under its new name it keeps its position instead of being read
// again from 0.

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/source/internal/sourcetest"
)

func TestTaildirRenamesUnderAScan(t *testing.T) {
	t.Run("a closed file missed by one listing keeps its position when the next finds it", func(t *testing.T) {
		dir := t.TempDir()
		w := newTDWriter(t, dir, "app.log", 100)
		w.write(10) // lines 0-9, file 0
		s := tdStepped(t, dir, map[string]string{"filegroups": "g", "filegroups.g": dir + `/app\.log.*`,
			"batchSize": "20", "idleTimeout": "300"})
		s.round()
		w.rotate(func() { logrotate(t, w) })
		w.reopen()
		w.write(10) // lines 10-19, file 1
		s.round()
		s.clk.Advance(300 * time.Millisecond)
		s.round() // both files idle: closed
		if n := strings.Count(s.lg.String(), "closed idle file"); n != 2 {
			t.Fatalf("%d files closed, want 2:\n%s", n, s.lg)
		}
		// The next listing reads the names, then logrotate renames before
		// the first of them is looked at.
		listed := false
		fired := s.fs.before(func(op tdOp) bool {
			if op.kind == "readdir" {
				listed = true
				return false
			}
			return listed && op.kind == "stat" && strings.HasPrefix(op.path, dir+"/")
		}, func() {
			w.rotate(func() { logrotate(t, w) })
			w.reopen()
			w.write(10) // lines 20-29, file 2
		})
		s.settle(30)
		if !fired() {
			t.Fatal("the rotation never ran: the test proves nothing")
		}
		sourcetest.ExactlyOnce(t, s.p.Bodies(), 30)
	})
}

// logrotate renames app.log.N to app.log.N+1, then app.log to app.log.1.
func logrotate(t *testing.T, w *tdWriter) {
	w.shift(10)
	if err := os.Rename(w.path(), w.path()+".1"); err != nil {
		t.Errorf("rotate: %v", err)
	}
}
