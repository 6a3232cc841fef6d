package main

// How the wal commands find a channel: DIR is recognised by what it holds
// (checkpoint/ and data/, a data directory with its checkpoint beside it or
// given with --checkpoint-dir, a checkpoint directory with data/ beside it),
// or the directories come from a Flume configuration with -c, -n and
// --channel. A path that does not exist or is not a channel, and any misuse
// of the flags, is a usage error: exit 2, naming the path.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flumed/flumed/channel"
)

func TestWalFindsTheChannelByContent(t *testing.T) {
	base := newWalChannel(t)
	ck, data := filepath.Join(base, "checkpoint"), filepath.Join(base, "data")
	for _, c := range []struct {
		name string
		args []string
		how  string
	}{
		{"the channel directory", []string{base}, "channel directory (checkpoint/ and data/)"},
		{"the data directory, its checkpoint beside it", []string{data}, "data directory, its checkpoint directory beside it"},
		{"the data directory with --checkpoint-dir", []string{data, "--checkpoint-dir", ck}, "data directory, checkpoint directory from --checkpoint-dir"},
		{"the checkpoint directory, data beside it", []string{ck}, "checkpoint directory, its data directory beside it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runWal(t, append([]string{"wal", "inspect"}, c.args...)...)
			if code != 0 || !strings.Contains(out, "Found as:        "+c.how+"\n") ||
				!strings.Contains(out, "Data dir:        "+data+"\n") || !strings.Contains(out, "Checkpoint dir:  "+ck+"\n") {
				t.Errorf("exit %d, stderr %q, output:\n%s", code, errs, out)
			}
		})
	}

	t.Run("a data directory holding its own checkpoint", func(t *testing.T) {
		dir := t.TempDir()
		o := walOptions(dir)
		o.CheckpointDir = o.DataDir
		buildChannel(t, o)
		code, out, _ := runWal(t, "wal", "inspect", "--json", o.DataDir)
		var rep inspectJSON
		if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || rep.CheckpointDir != o.DataDir || rep.QueuedEvents != 1 {
			t.Errorf("exit %d, %+v, %v", code, rep, err)
		}
	})
}

// buildChannel opens and closes a channel in o's directories with one event.
func buildChannel(t *testing.T, o channel.FileOptions) {
	t.Helper()
	ch, err := channel.OpenFile("c1", o, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx := ch.Begin()
	if err := tx.Put(walEvent(1)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestWalUsageErrorsExit2NamingThePath(t *testing.T) {
	base := newWalChannel(t)
	empty := t.TempDir()
	file := filepath.Join(empty, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	lone := t.TempDir() // a data directory with no checkpoint anywhere near
	if err := os.CopyFS(lone, os.DirFS(filepath.Join(base, "data"))); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"a directory that does not exist", []string{"inspect", filepath.Join(empty, "nope")}, filepath.Join(empty, "nope") + ": no such directory"},
		{"a file", []string{"verify", file}, file + ": not a directory"},
		{"a directory that is not a channel", []string{"dump", empty}, empty + ": not a file channel directory"},
		{"a data directory without its checkpoint", []string{"inspect", lone}, lone + ": no checkpoint directory found"},
		{"--checkpoint-dir with a non-data directory", []string{"inspect", empty, "--checkpoint-dir", base}, empty + ": not a file channel data directory"},
		{"no DIR", []string{"inspect"}, "no channel given"},
		{"two DIRs", []string{"inspect", base, base}, "one DIR only"},
		{"an unknown flag", []string{"inspect", "--jsn", base}, "unknown flag: --jsn"},
		{"a negative --limit", []string{"dump", "--limit", "-1", base}, "--limit -1"},
		{"--json with --body", []string{"dump", "--json", "--body", base}, "exclude each other"},
		{"an unknown wal command", []string{"inspekt", base}, `unknown wal command "inspekt"`},
		{"-n without -c", []string{"inspect", "-n", "a1", base}, "-n and --channel go with -c FILE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runWal(t, append([]string{"wal"}, c.args...)...)
			if code != exitUsage || !strings.Contains(errs, c.want) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2 and %q", code, out, errs, c.want)
			}
		})
	}
	t.Run("verify needs no checkpoint directory", func(t *testing.T) {
		if code, out, errs := runWal(t, "wal", "verify", lone); code != 0 || !strings.Contains(out, "none found (the log only is checked)") {
			t.Errorf("exit %d, stdout:\n%s\nstderr: %s", code, out, errs)
		}
	})
}

func TestWalTakesTheDirectoriesFromAFlumeConfig(t *testing.T) {
	base := newWalChannel(t)
	conf := writeConfig(t, `a1.sources = r1
a1.channels = c1 c2 m1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = `+filepath.Join(base, "checkpoint")+`
a1.channels.c1.dataDirs = `+filepath.Join(base, "data")+`, /elsewhere
a1.channels.c2.type = org.apache.flume.channel.file.FileChannel
a1.channels.c2.checkpointDir = `+filepath.Join(base, "missing")+`
a1.channels.c2.dataDirs = `+filepath.Join(base, "data")+`
a1.channels.m1.type = memory
a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
`)
	t.Run("the named file channel", func(t *testing.T) {
		code, out, errs := runWal(t, "wal", "inspect", "-c", conf, "-n", "a1", "--channel", "c1")
		if code != 0 || !strings.Contains(out, "Found as:        channel c1 of agent a1 in "+conf) || !strings.Contains(out, "Queued:          6 events") {
			t.Errorf("exit %d, stderr %q, output:\n%s", code, errs, out)
		}
	})
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"two file channels and no --channel", []string{"-c", conf}, "agent a1 has file channels c1, c2: choose one with --channel"},
		{"a channel that is not there", []string{"-c", conf, "--channel", "c9"}, "agent a1 has no channel c9 (its channels: c1, c2, m1)"},
		{"a memory channel", []string{"-c", conf, "--channel", "m1"}, `channel m1 of agent a1 is of type "memory", not a file channel`},
		{"a checkpoint directory that does not exist", []string{"-c", conf, "--channel", "c2"}, filepath.Join(base, "missing") + " (checkpointDir of channel c2): no such directory"},
		{"an agent that is not there", []string{"-c", conf, "-n", "a2", "--channel", "c1"}, "no agent a2"},
		{"both DIR and -c", []string{base, "-c", conf}, "give either DIR or -c FILE, not both"},
		{"a configuration file that does not exist", []string{"-c", filepath.Join(base, "nope.properties")}, "nope.properties"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := runWal(t, append([]string{"wal", "inspect"}, c.args...)...)
			if code != exitUsage || !strings.Contains(errs, c.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errs, c.want)
			}
		})
	}
}

func TestWalUsesTheBackupCheckpointAsARestartWould(t *testing.T) {
	base := t.TempDir()
	o := walOptions(base)
	o.BackupCheckpointDir = filepath.Join(base, "backup")
	fillWalChannel(t, o) // Close copies the ack state (events 0-3 taken) to the backup
	for _, slot := range []string{"checkpoint-0", "checkpoint-1"} {
		if err := os.Remove(filepath.Join(o.CheckpointDir, slot)); err != nil {
			t.Fatal(err)
		}
	}
	conf := writeConfig(t, `a1.channels = c1
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = `+o.CheckpointDir+`
a1.channels.c1.dataDirs = `+o.DataDir+`
a1.channels.c1.useDualCheckpoints = true
a1.channels.c1.backupCheckpointDir = `+o.BackupCheckpointDir+`
`)
	for name, args := range map[string][]string{
		"from the configuration":       {"-c", conf},
		"from --backup-checkpoint-dir": {base, "--backup-checkpoint-dir", o.BackupCheckpointDir},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errs := runWal(t, append([]string{"wal", "inspect"}, args...)...)
			for _, want := range []string{"Backup dir:      " + o.BackupCheckpointDir, "Queued:          6 events", "backup checkpoint (the primary is missing"} {
				if code != 0 || !strings.Contains(out, want) {
					t.Errorf("exit %d, stderr %q, no %q in:\n%s", code, errs, want, out)
				}
			}
		})
	}
	t.Run("without it every record is delivered again", func(t *testing.T) {
		if code, out, _ := runWal(t, "wal", "inspect", base); code != 0 || !strings.Contains(out, "Queued:          10 events") {
			t.Errorf("exit %d:\n%s", code, out)
		}
	})
}
