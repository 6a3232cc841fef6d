// Inspection of a file channel (InspectFile, Events, VerifyFile) reports what
// a restart would see — queued events, floor and acked ranges, segments,
// commit times, the durability mode that wrote the data, damage — and never
// changes a byte, a name or a lock: on a stopped channel, on a torn one, and
// beside a running one (which it reports as locked, naming the process).
package channel_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/flumed/flumed/channel"
)

// dirSnapshot is every file under dir with its size, mode and content hash.
func dirSnapshot(t *testing.T, dirs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, dir := range dirs {
		err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			if fi.IsDir() {
				out[path] = "dir"
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out[path] = fmt.Sprintf("%d %v %x %v", fi.Size(), fi.Mode(), sha256.Sum256(b), fi.ModTime())
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func sameSnapshot(t *testing.T, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed: %q -> %q", k, v, after[k])
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("%s appeared", k)
		}
	}
}

// inspected returns a closed channel with ids 4..9 queued (0..3 taken).
func inspected(t *testing.T, o channel.FileOptions) {
	ch := openFile(t, o)
	filePut(t, ch, idEvents(0, 3)...)
	filePut(t, ch, idEvents(3, 7)...)
	filePut(t, ch, idEvents(7, 10)...)
	if got := ids(fileTake(t, ch, 4)); !slices.Equal(got, span(0, 4)) {
		t.Fatal(got)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
}

func queuedIDs(t *testing.T, rep *channel.FileReport) (out []int, errs int) {
	for q, err := range rep.Events() {
		if err != nil {
			errs++
			continue
		}
		id, _ := strconv.Atoi(q.Headers["id"])
		if want := "body " + strconv.Itoa(id); string(q.Body) != want {
			t.Errorf("event %d body %q", id, q.Body)
		}
		out = append(out, id)
	}
	return out, errs
}

func TestInspectFile(t *testing.T) {
	t.Run("a stopped channel: what is queued, where, since when, in which mode", func(t *testing.T) {
		o := fileOptions(t.TempDir())
		inspected(t, o)
		before := dirSnapshot(t, o.CheckpointDir, o.DataDir)
		rep, err := channel.InspectFile(o.CheckpointDir, o.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Locked || rep.Queued != 6 || rep.Floor != 4 || rep.Next != 10 || rep.CheckpointSource != "checkpoint" {
			t.Fatalf("report: locked %v queued %d floor %d next %d source %q", rep.Locked, rep.Queued, rep.Floor, rep.Next, rep.CheckpointSource)
		}
		if rep.Durability != "fsyncPerTransaction" || rep.OldestQueued.IsZero() || rep.NewestQueued.Before(rep.OldestQueued) {
			t.Errorf("durability %q, oldest %v, newest %v", rep.Durability, rep.OldestQueued, rep.NewestQueued)
		}
		if len(rep.Log.Segments) == 0 || rep.Log.LastIndex != 3 || rep.QueuedBytes == 0 || rep.LogID == "" || len(rep.Damage) != 0 {
			t.Errorf("log: %+v, queued bytes %d, id %q, damage %v", rep.Log, rep.QueuedBytes, rep.LogID, rep.Damage)
		}
		if got, errs := queuedIDs(t, rep); !slices.Equal(got, span(4, 10)) || errs != 0 {
			t.Errorf("events %v (%d errors), want 4..9", got, errs)
		}
		v, err := channel.VerifyFile(o.DataDir, nil)
		if err != nil || !v.OK() || v.Records != 3 || v.Events != 10 || v.SyncedRecords != 3 {
			t.Errorf("verify: %+v, %v", v, err)
		}
		sameSnapshot(t, before, dirSnapshot(t, o.CheckpointDir, o.DataDir))
	})

	t.Run("a running channel is reported locked by this process and still read", func(t *testing.T) {
		o := fileOptions(t.TempDir())
		inspected(t, o)
		ch := openFile(t, o)
		defer ch.Close()
		tx := ch.Begin() // an open take: its events stay queued on disk
		if _, err := tx.Take(2); err != nil {
			t.Fatal(err)
		}
		rep, err := channel.InspectFile(o.CheckpointDir, o.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Locked || rep.LockPID != os.Getpid() || rep.Queued != 6 {
			t.Fatalf("locked %v by %d (we are %d), queued %d", rep.Locked, rep.LockPID, os.Getpid(), rep.Queued)
		}
		if _, err := channel.OpenFile("c2", o, nil); err == nil {
			t.Fatal("the inspection took the lock: a second open succeeded")
		}
	})

	t.Run("damage is reported, not repaired", func(t *testing.T) {
		o := fileOptions(t.TempDir())
		inspected(t, o)
		segs, _ := filepath.Glob(filepath.Join(o.DataDir, "0*"))
		last := segs[len(segs)-1]
		b, _ := os.ReadFile(last)
		b[len(b)/2] ^= 0x40                   // a bit flip in the middle record
		b = append(b, 1, 2, 3, 4, 5, 6, 7, 8) // and a torn tail
		os.WriteFile(last, b, 0o640)
		os.Remove(filepath.Join(o.CheckpointDir, "checkpoint-0"))
		os.Remove(filepath.Join(o.CheckpointDir, "checkpoint-1"))
		before := dirSnapshot(t, o.CheckpointDir, o.DataDir)

		rep, err := channel.InspectFile(o.CheckpointDir, o.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		if rep.CheckpointSource != "none (missing)" || rep.Log.TornTail == nil || len(rep.Damage) == 0 {
			t.Errorf("source %q, torn tail %v, damage %v", rep.CheckpointSource, rep.Log.TornTail, rep.Damage)
		}
		if got, errs := queuedIDs(t, rep); errs != 2 || !slices.Equal(got, append(span(0, 3), span(7, 10)...)) {
			t.Errorf("events %v with %d errors, want 0..2 and 7..9 around the damaged record, then the torn tail", got, errs)
		}
		v, err := channel.VerifyFile(o.DataDir, nil)
		if err != nil || v.OK() || v.DamagedCount != 2 || v.Records != 2 {
			t.Errorf("verify: %+v, %v; want the damaged record and the torn tail", v, err)
		}
		sameSnapshot(t, before, dirSnapshot(t, o.CheckpointDir, o.DataDir))
	})

	t.Run("interval mode is named", func(t *testing.T) {
		o := fileOptions(t.TempDir())
		o.FsyncPerTransaction = false
		ch := openFile(t, o)
		filePut(t, ch, idEvents(0, 2)...)
		ch.Close()
		rep, err := channel.InspectFile(o.CheckpointDir, o.DataDir)
		if err != nil || rep.Durability != "fsyncInterval" || rep.Queued != 2 {
			t.Fatalf("durability %q, queued %d, %v", rep.Durability, rep.Queued, err)
		}
	})

	t.Run("with the primary checkpoint gone, the backup is what a restart uses, and so what is reported", func(t *testing.T) {
		o := fileOptions(t.TempDir())
		o.BackupCheckpointDir = filepath.Join(filepath.Dir(o.CheckpointDir), "backup")
		inspected(t, o) // Close copies the ack state to the backup
		for _, slot := range []string{"checkpoint-0", "checkpoint-1"} {
			if err := os.Remove(filepath.Join(o.CheckpointDir, slot)); err != nil {
				t.Fatal(err)
			}
		}
		rep, err := channel.InspectFile(o.CheckpointDir, o.DataDir)
		if err != nil || rep.CheckpointSource != "none (missing)" || rep.Queued != 10 {
			t.Fatalf("without the backup: source %q, queued %d, %v", rep.CheckpointSource, rep.Queued, err)
		}
		rep, err = channel.InspectFileDirs(channel.FileDirs{Checkpoint: o.CheckpointDir, BackupCheckpoint: o.BackupCheckpointDir, Data: o.DataDir})
		if err != nil || !strings.HasPrefix(rep.CheckpointSource, "backup checkpoint (the primary is missing") || rep.Queued != 6 {
			t.Fatalf("with the backup: source %q, queued %d, %v", rep.CheckpointSource, rep.Queued, err)
		}
		reported, _ := queuedIDs(t, rep)
		ch := openFile(t, o)
		defer ch.Close()
		if got := drainIDs(t, ch); !slices.Equal(got, reported) || !slices.Equal(got, span(4, 10)) {
			t.Fatalf("a restart delivered %v, the report said %v", got, reported)
		}
	})

	t.Run("an empty, new channel", func(t *testing.T) {
		o := fileOptions(t.TempDir())
		ch := openFile(t, o)
		ch.Close()
		rep, err := channel.InspectFile(o.CheckpointDir, o.DataDir)
		if err != nil || rep.Queued != 0 || rep.Durability != "" || !rep.OldestQueued.IsZero() {
			t.Fatalf("%+v, %v", rep, err)
		}
		for _, err := range rep.Events() {
			t.Fatalf("an empty channel yielded an event (%v)", err)
		}
	})
}
