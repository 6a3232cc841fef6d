// The "file" channel type reads Flume's file channel keys (FLUME.md §2.8):
// defaults as in Flume; capacity a soft limit; maxFileSize clamped to flumed's
// memory-safe segment sizes (with a warning); only the first of several
// dataDirs used (with a warning); the keys flumed has no use for accepted with
// a warning; bad numbers, transactionCapacity > capacity and a missing or
// clashing backupCheckpointDir reported with file, line and key.
package channel_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
)

func TestFileConfig(t *testing.T) {
	type want struct {
		capacity, txCap                 int
		segment, minSpace               int64
		keepAlive, interval, fsyncEvery time.Duration
		fsync, onClose, compress, dual  bool
	}
	def := want{capacity: 1_000_000, txCap: 10_000, segment: 4 << 20, minSpace: 500 << 20, keepAlive: 3 * time.Second,
		interval: 30 * time.Second, fsyncEvery: 5 * time.Second, fsync: true, onClose: true, compress: true}
	cases := []struct {
		name     string
		keys     map[string]string
		want     func(w *want)
		problems []string // substrings of the errors, in line order
		warnings []string // substrings of the warnings, in line order
	}{
		{"no keys but the directories give Flume's defaults", nil, nil, nil, nil},
		{"every key is read", map[string]string{
			"capacity": "5000", "transactionCapacity": "500", "checkpointInterval": "60000", "maxFileSize": "8388608",
			"minimumRequiredSpace": "104857600", "keep-alive": "1", "checkpointOnClose": "false",
			"fsyncPerTransaction": "false", "fsyncInterval": "2", "compression": "none", "useDualCheckpoints": "true",
			"backupCheckpointDir": "BACKUP"},
			func(w *want) {
				*w = want{capacity: 5000, txCap: 500, segment: 8 << 20, minSpace: 100 << 20, keepAlive: time.Second,
					interval: time.Minute, fsyncEvery: 2 * time.Second, dual: true}
			}, nil, nil},
		{"Flume's floors: checkpointInterval 1 s, minimumRequiredSpace 1 MiB", map[string]string{
			"checkpointInterval": "10", "minimumRequiredSpace": "1000"},
			func(w *want) { w.interval, w.minSpace = time.Second, 1<<20 }, nil, nil},
		{"maxFileSize is clamped to flumed's segment bounds, with a warning", map[string]string{"maxFileSize": "2146435071"},
			func(w *want) { w.segment = 16 << 20 }, nil, []string{"maxFileSize: flumed's segments are 16777216 bytes"}},
		{"several dataDirs: the first holds the log, the others are read only for a Flume import, with a warning",
			map[string]string{"dataDirs": "DATA , OTHER"},
			nil, nil, []string{"dataDirs: flumed keeps its log in the first data directory"}},
		{"keys flumed has no use for are accepted with a warning", map[string]string{
			"use-fast-replay": "true", "use-log-replay-v1": "false", "compressBackupCheckpoint": "true"},
			nil, nil, []string{"compressBackupCheckpoint: known to Flume but not used",
				"use-fast-replay: known", "use-log-replay-v1: known"}},
		{"Flume's JCEKS encryption is refused with the way to a key flumed reads, never ignored", map[string]string{
			"encryption.activeKey": "key-0", "encryption.cipherProvider": "AESCTRNOPADDING",
			"encryption.keyProvider": "JCEKSFILE", "encryption.keyProvider.keyStoreFile": "/k.jceks",
			"encryption.keyProvider.keys": "key-0", "encryption.keyProvider.keys.key-0.passwordFile": "/p"},
			nil, []string{"encryption.keyProvider: flumed does not read JCEKS keystores; give each key as a file: `openssl rand -hex 32"}, nil},
		{"an encryption key without activeKey is an error, not a silent plain-text log", map[string]string{
			"encryption.keyProvider": "KEYFILE"},
			nil, []string{"encryption.keyProvider: encryption is off without encryption.activeKey"}, nil},
		{"bad numbers are problems and defaults are kept", map[string]string{
			"capacity": "-1", "transactionCapacity": "x", "checkpointInterval": "0", "minimumRequiredSpace": "0",
			"keep-alive": "-1", "fsyncInterval": "0", "maxFileSize": "0"},
			nil, []string{"capacity: must be a positive", "checkpointInterval: must be a positive", "fsyncInterval: must be a positive",
				"keep-alive: must be zero or more", "maxFileSize: must be a positive", "minimumRequiredSpace: must be a positive",
				`transactionCapacity: not an integer: "x"`}, nil},
		{"transactionCapacity above capacity is a problem", map[string]string{"capacity": "100"},
			func(w *want) { w.capacity, w.txCap = 100, 100 }, []string{"transactionCapacity: 10000 is more than capacity 100"}, nil},
		{"useDualCheckpoints needs a backupCheckpointDir that is not the checkpointDir", map[string]string{
			"useDualCheckpoints": "true", "backupCheckpointDir": "CKPT"},
			nil, []string{"backupCheckpointDir: must differ from checkpointDir"}, nil},
		{"useDualCheckpoints without a backupCheckpointDir is a problem", map[string]string{"useDualCheckpoints": "true"},
			nil, []string{"backupCheckpointDir: required when useDualCheckpoints is true"}, nil},
		{"a misspelt key is reported with a suggestion", map[string]string{"checkpointIntervall": "1000"},
			nil, []string{"checkpointIntervall: unknown key (did you mean checkpointInterval?)"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Not t.TempDir(): case names hold commas, which split dataDirs.
			dir, err := os.MkdirTemp("", "filecfg")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			keys := map[string]string{"checkpointDir": filepath.Join(dir, "ckpt"), "dataDirs": filepath.Join(dir, "data")}
			for k, v := range c.keys {
				for _, d := range []string{"CKPT", "DATA", "OTHER", "BACKUP"} {
					v = strings.ReplaceAll(v, d, filepath.Join(dir, strings.ToLower(d)))
				}
				keys[k] = v
			}
			ctx := config.FromMap("a1.channels.c1.", keys)
			factory, ok := channel.Lookup("file")
			if !ok {
				t.Fatal(`"file" is not registered`)
			}
			spec, err := factory("c1", ctx)
			if err != nil {
				t.Fatalf("factory: %v", err)
			}
			check := func(kind string, got []config.Problem, want []string) {
				t.Helper()
				if len(got) != len(want) {
					t.Fatalf("%s: %v, want %d matching %q", kind, got, len(want), want)
				}
				for i, w := range want {
					if s := got[i].String(); !strings.Contains(s, w) || !strings.HasPrefix(s, "<inline>:") {
						t.Errorf("%s %d: %q, want it to contain %q with file and line", kind, i, s, w)
					}
				}
			}
			check("problems", ctx.Problems().Errors(), c.problems)
			check("warnings", ctx.Problems().Warnings(), c.warnings)

			w := def
			if c.want != nil {
				c.want(&w)
			}
			if spec.TransactionCapacity() != w.txCap {
				t.Errorf("TransactionCapacity() = %d, want %d", spec.TransactionCapacity(), w.txCap)
			}
			if len(c.problems) > 0 {
				return // a configuration with problems is never opened
			}
			ch, err := spec.Open("c1", nil)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer ch.Close()
			o := ch.(*channel.File).Options()
			got := want{capacity: o.Capacity, txCap: o.TransactionCapacity, segment: o.SegmentSize, minSpace: o.MinimumRequiredSpace,
				keepAlive: o.KeepAlive, interval: o.CheckpointInterval, fsyncEvery: o.FsyncInterval, fsync: o.FsyncPerTransaction,
				onClose: o.CheckpointOnClose, compress: o.Compress, dual: o.BackupCheckpointDir != ""}
			if got != w {
				t.Errorf("options %+v, want %+v", got, w)
			}
			if o.DataDir != filepath.Join(dir, "data") || o.CheckpointDir != filepath.Join(dir, "ckpt") {
				t.Errorf("directories %s, %s", o.CheckpointDir, o.DataDir)
			}
		})
	}
}

func TestFileLookup(t *testing.T) {
	for _, name := range []string{"file", "FILE", "File", "org.apache.flume.channel.file.FileChannel"} {
		if _, ok := channel.Lookup(name); !ok {
			t.Errorf("Lookup(%q) found nothing", name)
		}
	}
}

func TestFileDefaultDirectories(t *testing.T) {
	o := channel.DefaultFileOptions()
	if !strings.HasSuffix(o.CheckpointDir, filepath.Join(".flume", "file-channel", "checkpoint")) ||
		!strings.HasSuffix(o.DataDir, filepath.Join(".flume", "file-channel", "data")) {
		t.Errorf("default directories %s, %s: want Flume's ~/.flume/file-channel/{checkpoint,data}", o.CheckpointDir, o.DataDir)
	}
}
