package main

// `flumed wal inspect` on directories Apache Flume's file channel wrote: it
// reads them as Flume's restart would, changes nothing, and reports the
// events queued, the first in line and how the file channel will import
// them; with -c it finds every data directory of the channel. It exits 1
// when the backlog cannot be imported (saying why), and the commands that
// read flumed's log refuse Flume's files with a usage error pointing to
// inspect. Outputs are golden files (testdata/wal/flume-*).

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/channel/flumefile/flumefiletest"
)

// absProperties rewrites a fixture copy's flume.properties with absolute
// directories (the fixture's are relative to the agent's working directory).
func absProperties(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "flume.properties"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		key := strings.TrimSpace(k)
		if ok && (strings.HasSuffix(key, ".checkpointDir") || strings.HasSuffix(key, ".backupCheckpointDir") || strings.HasSuffix(key, ".dataDirs")) {
			var dirs []string
			for _, d := range strings.Split(v, ",") {
				dirs = append(dirs, filepath.Join(dir, strings.TrimSpace(d)))
			}
			line = k + "= " + strings.Join(dirs, ",")
		}
		out = append(out, line)
	}
	p := filepath.Join(dir, "abs.properties")
	if err := os.WriteFile(p, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWalInspectFlume(t *testing.T) {
	t.Run("a Flume channel directory: queue, first event, import; nothing changed", func(t *testing.T) {
		dir := flumefiletest.Copy(t, "kill9-mid-stream")
		before := treeHash(t, dir)
		code, out, errs := runWal(t, "wal", "inspect", dir)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		want := flumefiletest.Expected(t, "kill9-mid-stream")
		for _, s := range []string{"Apache Flume file channel", "Queued:          8203 events",
			`"e-868"`, "imports these 8203 events", "nothing is deleted"} {
			if !strings.Contains(out, s) {
				t.Errorf("output lacks %q:\n%s", s, out)
			}
		}
		if string(want[0].Body) != "e-868" {
			t.Fatalf("fixture changed: first event %q", want[0].Body)
		}
		golden(t, "flume-inspect.txt", redact(t, out, dir))
		code, out, _ = runWal(t, "wal", "inspect", "--json", dir)
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		var j flumeJSON
		if err := json.Unmarshal([]byte(out), &j); err != nil {
			t.Fatal(err)
		}
		if j.Format != "flume" || j.QueuedEvents != 8203 || !j.Importable || j.Oldest == nil ||
			j.Oldest.Body != base64.StdEncoding.EncodeToString(want[0].Body) || j.Replay["puts"] != 5094 {
			t.Fatalf("json %+v", j)
		}
		golden(t, "flume-inspect.json", redact(t, out, dir))
		if treeHash(t, dir) != before {
			t.Fatal("inspect changed the directories")
		}
	})
	t.Run("-c finds every data directory of the channel", func(t *testing.T) {
		dir := flumefiletest.Copy(t, "multi-dir-rolled")
		code, out, errs := runWal(t, "wal", "inspect", "-c", absProperties(t, dir))
		if code != 0 || !strings.Contains(out, "Queued:          10000 events") || !strings.Contains(out, "d1, ") {
			t.Fatalf("exit %d: %s%s", code, out, errs)
		}
	})
	t.Run("an encrypted Flume channel: exit 1, saying flumed cannot decrypt it", func(t *testing.T) {
		dir := flumefiletest.Copy(t, "clean-stop")
		meta := flumefiletest.LogMetaBytes(flumefiletest.LogMeta{ID: 1, Cipher: "AESCTRNOPADDING", KeyAlias: "k"})
		if err := os.WriteFile(filepath.Join(dir, "data", "log-1.meta"), meta, 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, _ := runWal(t, "wal", "inspect", dir)
		if code != 1 || !strings.Contains(out, "refused") || !strings.Contains(out, "cannot decrypt") {
			t.Fatalf("exit %d: %s", code, out)
		}
	})
	t.Run("verify, dump and repair refuse Flume's files, pointing to inspect", func(t *testing.T) {
		dir := flumefiletest.Copy(t, "clean-stop")
		for _, c := range []string{"verify", "dump", "repair"} {
			code, _, errs := runWal(t, "wal", c, dir)
			if code != 2 || !strings.Contains(errs, "flumed wal inspect") {
				t.Errorf("%s: exit %d: %s", c, code, errs)
			}
		}
	})
	t.Run("a Flume data directory without its checkpoint beside it is a usage error", func(t *testing.T) {
		dir := flumefiletest.Copy(t, "multi-dir-rolled")
		code, _, errs := runWal(t, "wal", "inspect", filepath.Join(dir, "data", "d1"))
		if code != 2 || !strings.Contains(errs, "--checkpoint-dir") {
			t.Fatalf("exit %d: %s", code, errs)
		}
	})
	t.Run("after the import, inspect reports flumed's log and no Flume backlog", func(t *testing.T) {
		dir := flumefiletest.Copy(t, "clean-stop")
		o := channel.DefaultFileOptions()
		o.CheckpointDir, o.DataDir, o.MinimumRequiredSpace = filepath.Join(dir, "checkpoint"), filepath.Join(dir, "data"), -1
		ch, err := channel.OpenFile("c1", o, nil)
		if err != nil {
			t.Fatal(err)
		}
		ch.Close()
		code, out, errs := runWal(t, "wal", "inspect", dir)
		if code != 0 || !strings.Contains(out, "Queued:          2000 events") || strings.Contains(out, "Apache Flume") {
			t.Fatalf("exit %d: %s%s", code, out, errs)
		}
	})
}
