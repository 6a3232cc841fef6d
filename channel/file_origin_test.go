// The file channel's origin identity: kept across every restart that resumes
// from the primary checkpoint of a run that synced each commit (a clean
// close, a crash, with events queued), new whenever a sequence number could
// come back under it (the checkpoint directory lost, interval syncing), and
// different for every channel, memory channels included.
package channel_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/flumed/flumed/channel"
)

func TestFileOrigin(t *testing.T) {
	t.Run("kept across a clean close and a crash, with events queued", func(t *testing.T) {
		o := fileOptions(t.TempDir())
		f := openFile(t, o)
		id := f.Origin()
		if id == (channel.OriginID{}) {
			t.Fatal("an open channel has no origin")
		}
		filePut(t, f, fileEv("a"), fileEv("b"))
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		// Every slot written carries it, marked durable (a slot file not
		// yet written is empty).
		written := 0
		for _, slot := range []string{"checkpoint-0", "checkpoint-1"} {
			got, durable, err := channel.SlotOrigin(filepath.Join(o.CheckpointDir, slot))
			if err != nil {
				continue
			}
			written++
			if got != id || !durable {
				t.Fatalf("%s: origin %s durable %v, want %s durable", slot, got, durable, id)
			}
		}
		if written == 0 {
			t.Fatal("no checkpoint slot was written")
		}
		f = openFile(t, o)
		if f.Origin() != id {
			t.Fatalf("origin %s after a clean close, was %s", f.Origin(), id)
		}
		filePut(t, f, fileEv("c"))
		f.Crash()
		f = openFile(t, o)
		defer f.Close()
		if f.Origin() != id {
			t.Fatalf("origin %s after a crash, was %s", f.Origin(), id)
		}
		if got := fileTake(t, f, 10); len(got) != 3 {
			t.Fatalf("took %d events after the restarts, want 3", len(got))
		}
	})
	t.Run("new when the checkpoint directory is lost", func(t *testing.T) {
		o := fileOptions(t.TempDir())
		f := openFile(t, o)
		id := f.Origin()
		filePut(t, f, fileEv("a"))
		f.Crash()
		if err := os.RemoveAll(o.CheckpointDir); err != nil {
			t.Fatal(err)
		}
		f = openFile(t, o)
		defer f.Close()
		if f.Origin() == id {
			t.Fatalf("origin %s kept without the checkpoint that made it safe", id)
		}
	})
	t.Run("new at every open when commits are synced at intervals", func(t *testing.T) {
		o := fileOptions(t.TempDir())
		o.FsyncPerTransaction = false
		f := openFile(t, o)
		id := f.Origin()
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		f = openFile(t, o)
		id2 := f.Origin()
		if id2 == id {
			t.Fatalf("origin %s kept by an interval-synced channel", id)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		// Synced commits again: the slot was written by an interval run,
		// whose numbers a machine crash may have taken back.
		o.FsyncPerTransaction = true
		f = openFile(t, o)
		id3 := f.Origin()
		if id3 == id2 {
			t.Fatalf("origin %s kept after an interval-synced run", id2)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		f = openFile(t, o)
		defer f.Close()
		if f.Origin() != id3 {
			t.Fatalf("origin %s, want %s kept from a synced run", f.Origin(), id3)
		}
	})
	t.Run("every channel has its own", func(t *testing.T) {
		a := openFile(t, fileOptions(t.TempDir()))
		defer a.Close()
		b := openFile(t, fileOptions(t.TempDir()))
		defer b.Close()
		m1 := channel.NewMemory("m1", channel.DefaultMemoryOptions())
		m2 := channel.NewMemory("m2", channel.DefaultMemoryOptions())
		ids := map[channel.OriginID]bool{a.Origin(): true, b.Origin(): true, m1.Origin(): true, m2.Origin(): true}
		if len(ids) != 4 {
			t.Fatalf("4 channels share origins: %v", ids)
		}
	})
}
