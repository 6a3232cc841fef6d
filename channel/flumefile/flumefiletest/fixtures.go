// Package flumefiletest is for tests of Flume file-channel imports: it finds
// the fixtures real Apache Flume wrote (testdata/flume-file-channel), copies
// them for a test to change, reads what Flume delivered from each, and
// writes Flume's on-disk format (encode.go) to build large or damaged
// channels. Only tests and benchmarks import it.
package flumefiletest

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Root is the fixtures' directory in the repository.
func Root() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("flumefiletest: no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "flume-file-channel")
}

// Cases lists the fixture cases, by folder name.
func Cases(t testing.TB) []string {
	t.Helper()
	ents, err := os.ReadDir(Root())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	if len(out) != 8 {
		t.Fatalf("found %d fixture cases in %s, want 8", len(out), Root())
	}
	return out
}

// Event is one event as Flume delivered it.
type Event struct {
	Headers map[string]string
	Body    []byte
}

// Expected reads the case's expected.jsonl: the events real Flume delivered
// when restarted on it, in order.
func Expected(t testing.TB, name string) []Event {
	t.Helper()
	f, err := os.Open(filepath.Join(Root(), name, "expected.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var line struct {
			Headers map[string]string `json:"headers"`
			Body    string            `json:"body_b64"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("%s expected.jsonl line %d: %v", name, len(out)+1, err)
		}
		body, err := base64.StdEncoding.DecodeString(line.Body)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Event{Headers: line.Headers, Body: body})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Channel is a fixture's channel configuration: the a1.channels.c1.* keys
// of its flume.properties, with the directories made absolute under dir.
type Channel struct {
	Keys          map[string]string
	CheckpointDir string
	BackupDir     string // backupCheckpointDir when useDualCheckpoints is true
	DataDirs      []string
}

// ReadChannel reads the channel keys of the fixture case copied to dir (or
// of the fixture itself when dir is Root()/name).
func ReadChannel(t testing.TB, dir string) Channel {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "flume.properties"))
	if err != nil {
		t.Fatal(err)
	}
	c := Channel{Keys: map[string]string{}}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if ok && strings.HasPrefix(k, "a1.channels.c1.") {
			c.Keys[strings.TrimPrefix(k, "a1.channels.c1.")] = v
		}
	}
	c.CheckpointDir = filepath.Join(dir, c.Keys["checkpointDir"])
	for _, d := range strings.Split(c.Keys["dataDirs"], ",") {
		c.DataDirs = append(c.DataDirs, filepath.Join(dir, strings.TrimSpace(d)))
	}
	if c.Keys["useDualCheckpoints"] == "true" {
		c.BackupDir = filepath.Join(dir, c.Keys["backupCheckpointDir"])
	}
	return c
}

// Copy copies the fixture case into a new temporary directory, writable,
// and returns the copy's path.
func Copy(t testing.TB, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	CopyDir(t, filepath.Join(Root(), name), dst)
	return dst
}

// CopyDir copies the tree at src to dst, making everything writable.
func CopyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
