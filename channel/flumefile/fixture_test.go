package flumefile

// The contract, against ground truth: for every state real Apache Flume 1.11
// left on disk (testdata/flume-file-channel), Open and Events yield exactly
// the events real Flume delivered when restarted on it — same order, same
// body bytes, same headers — and leave every file as it was.

import (
	"bytes"
	"crypto/sha256"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/flumed/flumed/channel/flumefile/flumefiletest"
)

func fixtureOptions(c flumefiletest.Channel) Options {
	return Options{CheckpointDir: c.CheckpointDir, BackupCheckpointDir: c.BackupDir,
		DataDirs: c.DataDirs, FsyncPerTransaction: c.Keys["fsyncPerTransaction"] != "false"}
}

func TestFixturesYieldWhatFlumeDelivered(t *testing.T) {
	for _, name := range flumefiletest.Cases(t) {
		t.Run(name, func(t *testing.T) {
			dir := flumefiletest.Copy(t, name)
			before := treeDigest(t, dir)
			want := flumefiletest.Expected(t, name)
			b, err := Open(fixtureOptions(flumefiletest.ReadChannel(t, dir)))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if b.Len() != len(want) {
				t.Errorf("Len = %d, Flume delivered %d", b.Len(), len(want))
			}
			i := 0
			for ev, err := range b.Events(nil) {
				if err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				if i >= len(want) {
					t.Fatalf("more events than the %d Flume delivered", len(want))
				}
				if !bytes.Equal(ev.Body, want[i].Body) || !maps.Equal(ev.HeaderMap(), want[i].Headers) {
					t.Fatalf("event %d = %q %v, Flume delivered %q %v", i, ev.Body, ev.HeaderMap(), want[i].Body, want[i].Headers)
				}
				i++
			}
			if i != len(want) {
				t.Fatalf("%d events, Flume delivered %d", i, len(want))
			}
			t.Logf("%s: %+v", name, b.Report)
			if after := treeDigest(t, dir); !maps.Equal(before, after) {
				t.Fatal("reading changed the channel's files")
			}
		})
	}
}

// treeDigest maps every path under dir to a digest of its content and mode.
func treeDigest(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		var b []byte
		if !d.IsDir() {
			if b, err = os.ReadFile(p); err != nil {
				return err
			}
		}
		b = append(b, []byte(info.Mode().String())...)
		out[p] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
