package taildir

// Copytruncate races: logrotate copies a log and truncates it while the
// source works on it, at any moment between two of the source's calls. Each
// line is still delivered exactly once. A batch counts against a file only
// if the file still held what was checked when the batch was read, and a
// copy resumes where its original stopped, judged by bytes read before the
// truncation, never after it.
//
// The tests step the source by hand (tdStepper) and run the rotation between
// two chosen calls, so every run replays the race; TestTaildirRotation plays
// the same rotations at full speed.

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/source/internal/sourcetest"
)

func TestTaildirCopytruncateRaces(t *testing.T) {
	// The writer appends to app.log and logrotate rotates with copytruncate:
	// copy to app.log.1, truncate, and the application goes on writing. Both
	// names match the pattern. Lines are numbered from 800 (file 4) as in
	// the run of TestTaildirRotation that first lost lines.
	setup := func(t *testing.T, lineLen int) (*tdStepper, *tdWriter) {
		dir := t.TempDir()
		w := newTDWriter(t, dir, "app.log", lineLen)
		w.seq, w.gen = 800, 4
		w.write(200)
		s := tdStepped(t, dir, map[string]string{"filegroups": "g", "filegroups.g": dir + `/app\.log.*`, "batchSize": "20"})
		return s, w
	}
	copytruncate := func(w *tdWriter) {
		w.rotate(func() {
			w.copyTo(w.path() + ".1")
			if err := os.Truncate(w.path(), 0); err != nil {
				w.t.Errorf("truncate: %v", err)
			}
			w.gen++
		})
		w.write(25) // lines 1000-1024, into the truncated file
	}

	t.Run("a rotation between the identity check and the read: the new lines are not counted against the old file", func(t *testing.T) {
		s, w := setup(t, 100)
		// The check reads at most the fingerprinted head; the read of lines
		// asks for a whole buffer.
		fired := s.fs.before(func(op tdOp) bool {
			return op.kind == "read" && op.path == w.path() && op.n > tailFPMax
		}, func() { copytruncate(w) })
		s.settle(225)
		if !fired() {
			t.Fatal("the rotation never ran: the test proves nothing")
		}
		sourcetest.ExactlyRange(t, s.p.Bodies(), 800, 1025)
	})

	t.Run("a rotation while the channel takes a batch: the copy resumes after the delivered lines", func(t *testing.T) {
		// Short lines: the bytes kept before a position then hold line
		// numbers, so those of the new content differ from the copy's.
		s, w := setup(t, 30)
		s.p.During = func(call int) {
			if call == 1 {
				copytruncate(w)
			}
		}
		s.settle(225)
		sourcetest.ExactlyRange(t, s.p.Bodies(), 800, 1025)
	})

	t.Run("the original truncated between its check and the comparison with a new copy: the copy resumes where it stopped", func(t *testing.T) {
		s, w := setup(t, 100)
		s.poll() // lines 800-819
		c := w.path() + ".1"
		w.rotate(func() { w.copyTo(c) })
		// A scan checks the followed files for truncation before it takes up
		// new ones; the truncation comes right after.
		fired := s.fs.before(func(op tdOp) bool { return op.kind == "open" && op.path == c }, func() {
			w.rotate(func() {
				if err := os.Truncate(w.path(), 0); err != nil {
					t.Errorf("truncate: %v", err)
				}
				w.gen++
			})
			w.write(25)
		})
		s.settle(225)
		if !fired() {
			t.Fatal("the rotation never ran: the test proves nothing")
		}
		sourcetest.ExactlyRange(t, s.p.Bodies(), 800, 1025)
	})

	t.Run("a copy taken up while still empty: once written it resumes where its original stopped", func(t *testing.T) {
		s, w := setup(t, 100)
		s.poll() // lines 800-819
		c := w.path() + ".1"
		if err := os.WriteFile(c, nil, 0o644); err != nil { // created, not yet written
			t.Fatal(err)
		}
		// The scan reads the empty copy once; the copy and the truncation
		// complete before the source looks at it again.
		reads := 0
		fired := s.fs.before(func(op tdOp) bool {
			if op.kind == "read" && op.path == c {
				reads++
			}
			return reads == 2
		}, func() { copytruncate(w) })
		s.settle(225)
		if !fired() {
			t.Fatal("the rotation never ran: the test proves nothing")
		}
		sourcetest.ExactlyRange(t, s.p.Bodies(), 800, 1025)
	})

	t.Run("a file truncated while empty and written again: its new lines are fingerprinted from the read that returned them", func(t *testing.T) {
		s, w := setup(t, 100)
		s.poll() // lines 800-819; the rest of file 4 stays in the read buffer
		rotate := func() {
			w.rotate(func() {
				w.shift(10)
				w.copyTo(w.path() + ".1")
				if err := os.Truncate(w.path(), 0); err != nil {
					t.Errorf("truncate: %v", err)
				}
				w.gen++
			})
		}
		rotate()
		// The source notices the truncation while the file is empty; the
		// application writes file 5 before the source reads it.
		fired := s.fs.before(func(op tdOp) bool {
			return op.kind == "read" && op.path == w.path() && op.n > tailFPMax
		}, func() { w.write(100) })
		s.poll() // lines 1000-1019; 1020-1099 stay in the read buffer
		if !fired() {
			t.Fatal("file 5 was never written: the test proves nothing")
		}
		// The next rotation, and file 6 (lines 1100-1199) as long as what
		// was read of file 5.
		rotate()
		w.write(100)
		s.settle(400)
		sourcetest.ExactlyRange(t, s.p.Bodies(), 800, 1200)
	})

	t.Run("a file closed while idle, truncated and written to the same size: its new lines are read", func(t *testing.T) {
		dir := t.TempDir()
		w := newTDWriter(t, dir, "app.log", 100)
		w.seq, w.gen = 800, 4
		w.write(200)
		// Only app.log matches; no rescan runs, so only the poll of the
		// closed file can notice the new content.
		s := tdStepped(t, dir, map[string]string{"filegroups": "g", "filegroups.g": dir + `/app\.log`,
			"batchSize": "20", "idleTimeout": "300", "rescanInterval": "3600000"})
		idle := func() {
			for s.poll() {
			}
			s.clk.Advance(300 * time.Millisecond)
			s.poll() // flushes and closes the idle file
		}
		idle()
		if !strings.Contains(s.lg.String(), "closed idle file") {
			t.Fatalf("the file was not closed:\n%s", s.lg)
		}
		w.rotate(func() {
			w.copyTo(w.path() + ".1")
			if err := os.Truncate(w.path(), 0); err != nil {
				t.Errorf("truncate: %v", err)
			}
			w.gen++
		})
		w.write(200) // exactly as long as the position
		for range 5 {
			idle()
		}
		sourcetest.ExactlyRange(t, s.p.Bodies(), 800, 1200)
	})
}
