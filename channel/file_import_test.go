package channel_test

// The import contract: a file channel opened on directories where Apache
// Flume's file channel left its files delivers exactly what Flume would
// have delivered from them (same order, bytes and headers), before anything
// put after it; Flume's files end up set aside, whole, in a
// flume-imported-<time> directory beside them with a note, never deleted;
// and a reopen imports nothing again.

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/channel/flumefile"
	"github.com/flumed/flumed/channel/flumefile/flumefiletest"
)

// flumeChannelOptions are a file channel's options for the fixture copied
// to dir, from its flume.properties (the keys a user keeps when moving).
func flumeChannelOptions(t testing.TB, dir string) channel.FileOptions {
	t.Helper()
	c := flumefiletest.ReadChannel(t, dir)
	o := channel.DefaultFileOptions()
	o.CheckpointDir, o.DataDir, o.DataDirs = c.CheckpointDir, c.DataDirs[0], c.DataDirs
	o.BackupCheckpointDir = c.BackupDir
	o.MinimumRequiredSpace = -1
	if v, err := strconv.Atoi(c.Keys["capacity"]); err == nil {
		o.Capacity = v
	}
	if v, err := strconv.Atoi(c.Keys["transactionCapacity"]); err == nil {
		o.TransactionCapacity = v
	}
	return o
}

// drainEvents takes everything, 100 at a time (the fixtures' sink batch).
func drainEvents(t testing.TB, ch channel.Channel) []channel.Event {
	t.Helper()
	var out []channel.Event
	for {
		tx := ch.Begin()
		evs, err := tx.Take(100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			out = append(out, channel.Event{Headers: maps.Clone(e.Headers), Body: bytes.Clone(e.Body)})
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return out
		}
	}
}

func sameEvents(t testing.TB, got []channel.Event, want []flumefiletest.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events, Flume delivered %d", len(got), len(want))
	}
	for i := range want {
		h := got[i].Headers
		if h == nil {
			h = map[string]string{}
		}
		if !bytes.Equal(got[i].Body, want[i].Body) || !maps.Equal(h, want[i].Headers) {
			t.Fatalf("event %d = %q %v, Flume delivered %q %v", i, got[i].Body, h, want[i].Body, want[i].Headers)
		}
	}
}

// flumeFilesLeft lists the Flume files still where the channel looks.
func flumeFilesLeft(t testing.TB, o channel.FileOptions) []string {
	t.Helper()
	l, err := flumefile.Detect(flumefile.Options{CheckpointDir: o.CheckpointDir,
		BackupCheckpointDir: o.BackupCheckpointDir, DataDirs: o.DataDirs})
	if err != nil {
		t.Fatal(err)
	}
	return l.Paths()
}

// asideDirs finds the flume-imported-* directories under root.
func asideDirs(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), "flume-imported-") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestFileImportsEveryFlumeFixture(t *testing.T) {
	for _, name := range flumefiletest.Cases(t) {
		t.Run(name, func(t *testing.T) {
			dir := flumefiletest.Copy(t, name)
			o := flumeChannelOptions(t, dir)
			before := flumeFilesLeft(t, o)
			want := flumefiletest.Expected(t, name)

			ch := openFile(t, o)
			if got := ch.Stats().Size; got != int64(len(want)) {
				t.Errorf("Size after import = %d, Flume had %d queued", got, len(want))
			}
			// Something put now comes after the whole backlog.
			tx := ch.Begin()
			if err := tx.Put(channel.Event{Body: []byte("after")}); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			got := drainEvents(t, ch)
			if len(got) == 0 || string(got[len(got)-1].Body) != "after" {
				t.Fatal("the event put after opening is not last")
			}
			sameEvents(t, got[:len(got)-1], want)
			if err := ch.Close(); err != nil {
				t.Fatal(err)
			}

			// Set aside, whole, with a note; nothing left to import.
			if left := flumeFilesLeft(t, o); len(left) > 0 {
				t.Fatalf("Flume files still in place: %v", left)
			}
			aside := asideDirs(t, dir)
			if len(aside) == 0 {
				t.Fatal("no flume-imported directory")
			}
			var kept int
			for _, a := range aside {
				note, err := os.ReadFile(filepath.Join(a, "IMPORTED-BY-FLUMED.txt"))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(note), strconv.Itoa(len(want))+" events") {
					t.Fatalf("note does not give the count: %s", note)
				}
				ents, _ := os.ReadDir(a)
				kept += len(ents) - 1
			}
			if kept != len(before) {
				t.Fatalf("%d files set aside, Flume had %d: %v", kept, len(before), before)
			}
			for _, p := range before {
				orig, err := os.ReadFile(filepath.Join(flumefiletest.Root(), name, mustRel(t, dir, p)))
				if err != nil {
					continue // a directory (queueset)
				}
				moved, err := os.ReadFile(filepath.Join(filepath.Dir(p), filepath.Base(asideIn(t, aside, filepath.Dir(p))), filepath.Base(p)))
				if err != nil || !bytes.Equal(orig, moved) {
					t.Fatalf("%s was not set aside unchanged (%v)", p, err)
				}
			}

			// A reopen imports nothing again.
			ch = openFile(t, o)
			if n := ch.Stats().Size; n != 0 {
				t.Fatalf("reopened with %d events, want 0", n)
			}
			ch.Close()
		})
	}
}

func mustRel(t testing.TB, base, p string) string {
	t.Helper()
	r, err := filepath.Rel(base, p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func asideIn(t testing.TB, aside []string, dir string) string {
	t.Helper()
	for _, a := range aside {
		if filepath.Dir(a) == dir {
			return a
		}
	}
	t.Fatalf("no aside directory in %s", dir)
	return ""
}

func TestFileImportRefusals(t *testing.T) {
	t.Run("an encrypted Flume channel is refused and its files kept", func(t *testing.T) {
		dir := flumefiletest.Copy(t, "clean-stop")
		o := flumeChannelOptions(t, dir)
		meta := filepath.Join(o.DataDir, "log-1.meta")
		if err := os.WriteFile(meta, flumefiletest.LogMetaBytes(flumefiletest.LogMeta{ID: 1,
			Cipher: "AESCTRNOPADDING", KeyAlias: "key-0"}), 0o644); err != nil {
			t.Fatal(err)
		}
		before := flumeFilesLeft(t, o)
		_, err := channel.OpenFile("c1", o, nil)
		var ee *flumefile.EncryptedError
		var re *channel.ImportRefusedError
		if !errors.As(err, &ee) || !errors.As(err, &re) || !strings.Contains(err.Error(), "cannot decrypt") {
			t.Fatalf("err = %v, want a refusal saying flumed cannot decrypt", err)
		}
		if after := flumeFilesLeft(t, o); !equalStrings(before, after) || len(asideDirs(t, dir)) > 0 {
			t.Fatalf("Flume's files moved: %v -> %v", before, after)
		}
	})
	t.Run("a corrupt queued event is refused, naming file and offset, and nothing is half-imported", func(t *testing.T) {
		dir := flumefiletest.Copy(t, "clean-stop")
		o := flumeChannelOptions(t, dir)
		want := flumefiletest.Expected(t, "clean-stop")
		// Flip the body of the 1500th event: 1499 are appended before the
		// import meets it.
		log1 := filepath.Join(o.DataDir, "log-1")
		data, err := os.ReadFile(log1)
		if err != nil {
			t.Fatal(err)
		}
		body := want[1499].Body
		at := bytes.Index(data, append([]byte{0x12, byte(len(body))}, body...))
		if at < 0 {
			t.Fatal("event not found")
		}
		data[at+2] ^= 0xff
		if err := os.WriteFile(log1, data, 0o644); err != nil {
			t.Fatal(err)
		}
		appends := 0
		small := channel.WithImportSteps(o, func(step string) {
			if step == "appended" {
				appends++
			}
		}, 8<<10, 16<<10)
		_, err = channel.OpenFile("c1", small, nil)
		var ce *flumefile.CorruptError
		if !errors.As(err, &ce) || ce.File != log1 || !strings.Contains(err.Error(), "at offset") ||
			!strings.Contains(err.Error(), "Flume's files are kept") {
			t.Fatalf("err = %v, want a refusal naming %s and an offset", err, log1)
		}
		if appends == 0 {
			t.Fatal("nothing was appended before the corrupt event: the voiding is not tested")
		}
		// What was appended is voided: the channel's own log queues nothing.
		rep, err := channel.InspectFile(o.CheckpointDir, o.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		// The appended records' events got numbers (Next), and every one of
		// them is acknowledged (nothing queued).
		if rep.Queued != 0 || rep.Next == 0 {
			t.Fatalf("after the refusal: %d events queued, next number %d; want the appended events all acknowledged",
				rep.Queued, rep.Next)
		}
		if len(asideDirs(t, dir)) > 0 {
			t.Fatal("Flume's files were set aside")
		}
		// The channel's own log holds events appended before the corrupt one,
		// voided: after the Flume files are fixed, the import delivers each
		// event once.
		data[at+2] ^= 0xff
		if err := os.WriteFile(log1, data, 0o644); err != nil {
			t.Fatal(err)
		}
		ch := openFile(t, o)
		defer ch.Close()
		got := drainEvents(t, ch)
		sameEvents(t, got, want)
	})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
