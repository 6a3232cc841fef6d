package main

// `flumed wal inspect|verify|dump|repair`, run in-process on real file
// channel directories built through channel.OpenFile. inspect, verify and
// dump change no file (the directories are hashed before and after), work
// beside a running channel and name its pid; verify exits 0 on an intact log
// and 1 naming the index, segment and offset of a flipped byte; dump prints
// the logger sink's lines or JSON lines, limited by --limit; repair cuts a
// torn tail and refuses while the channel is open. DIR is recognised by its
// content, and anything else is a usage error (exit 2) naming the path. No
// progress bar ever reaches a stderr that is not a terminal.
//
// The human and JSON outputs are golden files under testdata/wal, with the
// temporary directory, the log id, times and ages redacted. After an
// intended change of the output, rewrite them with
//
//	go test ./cmd/flumed -run TestWal -update
//
// and review the diff.

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/wal"
)

// The -update flag may already be defined by another test file of this
// package; package variables are initialised before init functions run, so
// this defines it only if nobody did.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files")
	}
}

func updating() bool {
	return flag.Lookup("update").Value.(flag.Getter).Get().(bool)
}

func walOptions(base string) channel.FileOptions {
	o := channel.DefaultFileOptions()
	o.CheckpointDir = filepath.Join(base, "checkpoint")
	o.DataDir = filepath.Join(base, "data")
	o.MinimumRequiredSpace = -1
	o.SegmentSize = 1 << 20
	return o
}

// walEvent is event id: a header or two and a short text body.
func walEvent(id int) channel.Event {
	h := map[string]string{"id": strconv.Itoa(id)}
	if id%2 == 0 {
		h["host"] = "web-1"
	}
	return channel.Event{Headers: h, Body: []byte(fmt.Sprintf("event number %d\x00\xff", id))}
}

// newWalChannel builds a stopped channel under a fresh directory: three put
// transactions (events 0-2, 3-6, 7-9) and a committed take of 0-3, so
// 4-9 are queued. It returns the channel directory.
// walUpstream is the origin of the upstream flumed whose batch the test
// channel holds.
var walUpstream = channel.OriginID{0xab, 0xcd, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}

func newWalChannel(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	fillWalChannel(t, walOptions(base))
	return base
}

// fillWalChannel is newWalChannel's content, in the channel o describes.
func fillWalChannel(t *testing.T, o channel.FileOptions) {
	t.Helper()
	ch, err := channel.OpenFile("c1", o, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, span := range [][2]int{{0, 3}, {3, 7}, {7, 10}} {
		tx := ch.Begin()
		if span[0] == 7 {
			// The last batch came from an upstream flumed: the dedup
			// table shows its numbers.
			if _, err := channel.PutFrom(tx, walUpstream, []uint64{100, 101, 102}, []channel.Event{walEvent(7), walEvent(8), walEvent(9)}); err != nil {
				t.Fatal(err)
			}
		}
		for id := span[0]; id < span[1] && span[0] != 7; id++ {
			if err := tx.Put(walEvent(id)); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	tx := ch.Begin()
	if got, err := tx.Take(4); err != nil || len(got) != 4 {
		t.Fatalf("take: %d events, %v", len(got), err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
}

// runWal runs flumed with args in-process, as main would, and returns the
// exit code, stdout and stderr.
func runWal(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runWalTo(t, &out, &errb, args...)
	return code, out.String(), errb.String()
}

func runWalTo(t *testing.T, out, errw io.Writer, args ...string) int {
	t.Helper()
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(out)
	root.SetErr(errw)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintf(errw, "flumed: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

var (
	reTime = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	reAge  = regexp.MustCompile(`\d+[dhms](\d+[hms])? (ago|in the future)`)
)

// redact makes output comparable across runs: the temporary directory, the
// log id, times, ages and this process's id vary.
// reOrigin finds the channel's own origin, drawn at random, in both reports.
var reOrigin = regexp.MustCompile(`(?m)(^Origin:\s+|"origin": ")[0-9a-f]{32}`)

func redact(t *testing.T, s, base string) string {
	t.Helper()
	s = strings.ReplaceAll(s, base, "$DIR")
	if b, err := os.ReadFile(filepath.Join(base, "data", "log-id")); err == nil {
		id := strings.TrimPrefix(strings.TrimSpace(string(b)), "flumed-file-channel-log ")
		s = strings.ReplaceAll(s, id, "LOGID")
	}
	s = reOrigin.ReplaceAllString(s, "${1}ORIGIN")
	s = reTime.ReplaceAllString(s, "TIME")
	s = reAge.ReplaceAllString(s, "AGE")
	return strings.ReplaceAll(s, "pid "+strconv.Itoa(os.Getpid()), "pid PID")
}

// golden compares got with testdata/wal/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "wal", name)
	if updating() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (run with -update after an intended change)\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// treeHash is a hash of every name, mode, size, time and byte under dir.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %v %d %d\n", path, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			h.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// flipMidLog flips one byte inside record 2 of the data log and returns the
// segment it damaged.
func flipMidLog(t *testing.T, base string) string {
	t.Helper()
	dataDir := filepath.Join(base, "data")
	r, err := wal.OpenReader(dataDir, 1)
	if err != nil {
		t.Fatal(err)
	}
	var recs []wal.Record
	for {
		rec, err := r.Next()
		if err != nil {
			break
		}
		recs = append(recs, rec)
	}
	r.Close()
	if len(recs) != 3 || recs[1].Segment != recs[2].Segment {
		t.Fatalf("want 3 records in one segment, got %+v", recs)
	}
	path := filepath.Join(dataDir, recs[2].Segment)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[recs[2].Offset-3] ^= 0x40 // inside record 2's payload, just before record 3
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return recs[2].Segment
}

func TestWalInspect(t *testing.T) {
	t.Run("a stopped channel: human report", func(t *testing.T) {
		base := newWalChannel(t)
		before := treeHash(t, base)
		code, out, errs := runWal(t, "wal", "inspect", base)
		if code != 0 || errs != "" {
			t.Fatalf("exit %d, stderr %q", code, errs)
		}
		golden(t, "inspect.txt", redact(t, out, base))
		if after := treeHash(t, base); after != before {
			t.Error("inspect changed the directory")
		}
	})

	t.Run("a stopped channel: JSON with the documented fields", func(t *testing.T) {
		base := newWalChannel(t)
		code, out, _ := runWal(t, "wal", "inspect", "--json", base)
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		var rep inspectJSON
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.QueuedEvents != 6 || rep.Floor != 4 || rep.Next != 10 || rep.Durability != "fsyncPerTransaction" ||
			rep.Locked || rep.OldestCommit == nil || rep.Log.Records != 3 || len(rep.Damage) != 0 {
			t.Errorf("report %+v", rep)
		}
		golden(t, "inspect.json", redact(t, out, base))
	})

	t.Run("an open channel is reported locked by its pid and still read", func(t *testing.T) {
		base := newWalChannel(t)
		ch, err := channel.OpenFile("c1", walOptions(base), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		code, out, _ := runWal(t, "wal", "inspect", base)
		want := fmt.Sprintf("locked by a running agent (pid %d)", os.Getpid())
		if code != 0 || !strings.Contains(out, want) || !strings.Contains(out, "Queued:          6 events") {
			t.Errorf("exit %d, output:\n%s", code, out)
		}
		code, out, _ = runWal(t, "wal", "inspect", "--json", base)
		var rep inspectJSON
		if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || !rep.Locked || rep.LockPID != os.Getpid() {
			t.Errorf("exit %d, locked %v pid %d, %v", code, rep.Locked, rep.LockPID, err)
		}
	})

	t.Run("sealed segments, the manifest and a stray file in sealed/ are shown", func(t *testing.T) {
		base := t.TempDir()
		o := walOptions(base)
		o.Compress = false
		ch, err := channel.OpenFile("c1", o, nil)
		if err != nil {
			t.Fatal(err)
		}
		body := bytes.Repeat([]byte("x"), 8000)
		for range 30 { // about 2.4 MiB: two sealed segments and a tail
			tx := ch.Begin()
			for range 10 {
				if err := tx.Put(channel.Event{Body: body}); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		if err := ch.Close(); err != nil {
			t.Fatal(err)
		}
		stray := "00000000000000009999" // past the tail: no part of the log
		if err := os.WriteFile(filepath.Join(o.DataDir, "sealed", stray), []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, _ := runWal(t, "wal", "inspect", "--json", base)
		var rep inspectJSON
		if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 {
			t.Fatalf("exit %d, %v", code, err)
		}
		segs := rep.Log.Segments
		if len(segs) < 3 || rep.Log.Manifest != "ok" || !slices.Equal(rep.Log.Strays, []string{"sealed/" + stray}) {
			t.Fatalf("segments %+v, manifest %q, strays %v", segs, rep.Log.Manifest, rep.Log.Strays)
		}
		for i, sg := range segs {
			want := "sealed"
			if i == len(segs)-1 {
				want = "tail"
			}
			if sg.Place != want {
				t.Errorf("segment %s: place %q, want %q", sg.Name, sg.Place, want)
			}
		}
		_, out, _ = runWal(t, "wal", "inspect", base)
		for _, want := range []string{"PLACE", "  sealed\n", "  tail\n", "Manifest:        ok", "Strays:          sealed/" + stray} {
			if !strings.Contains(out, want) {
				t.Errorf("the report lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("a torn tail is reported as damage the next open cuts", func(t *testing.T) {
		base := newWalChannel(t)
		appendGarbage(t, base)
		code, out, _ := runWal(t, "wal", "inspect", base)
		if code != 0 || !strings.Contains(out, "Damage:          torn tail of") {
			t.Errorf("exit %d, output:\n%s", code, out)
		}
	})
}

// appendGarbage appends a torn write to the last segment.
func appendGarbage(t *testing.T, base string) {
	t.Helper()
	info, err := wal.Inspect(filepath.Join(base, "data"))
	if err != nil || len(info.Segments) == 0 {
		t.Fatal(info, err)
	}
	f, err := os.OpenFile(filepath.Join(base, "data", info.Segments[len(info.Segments)-1].Name), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte{0x40, 1, 2, 3, 4, 5, 6, 7}); err != nil {
		t.Fatal(err)
	}
}

func TestWalVerify(t *testing.T) {
	t.Run("an intact log exits 0", func(t *testing.T) {
		base := newWalChannel(t)
		before := treeHash(t, base)
		code, out, errs := runWal(t, "wal", "verify", base)
		if code != 0 || errs != "" {
			t.Fatalf("exit %d, stderr %q", code, errs)
		}
		golden(t, "verify.txt", redact(t, out, base))
		if after := treeHash(t, base); after != before {
			t.Error("verify changed the directory")
		}
	})

	t.Run("a byte flipped mid-log exits 1 naming index, segment and offset", func(t *testing.T) {
		base := newWalChannel(t)
		seg := flipMidLog(t, base)
		before := treeHash(t, base)
		code, out, errs := runWal(t, "wal", "verify", base)
		if code != exitDamage || !strings.Contains(out, "record 2 in segment "+seg+" at offset ") {
			t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, errs)
		}
		golden(t, "verify-damaged.txt", redact(t, out+errs, base))
		code, out, _ = runWal(t, "wal", "verify", "--json", base)
		var rep verifyJSON
		if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitDamage || rep.OK ||
			rep.DamagedCount != 1 || rep.Damaged[0].Index != 2 || rep.Damaged[0].Segment != seg || rep.Damaged[0].Offset == 0 {
			t.Errorf("exit %d, %+v, %v", code, rep, err)
		}
		if after := treeHash(t, base); after != before {
			t.Error("verify changed the directory")
		}
	})

	t.Run("piped stderr gets no progress bar", func(t *testing.T) {
		base := newWalChannel(t)
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close()
		var out bytes.Buffer
		code := runWalTo(t, &out, pw, "wal", "verify", base)
		pw.Close()
		errs, _ := io.ReadAll(pr)
		if code != 0 || len(errs) != 0 {
			t.Errorf("exit %d, stderr %q", code, errs)
		}
		if strings.ContainsAny(out.String(), "\r\x1b") {
			t.Errorf("stdout holds control characters: %q", out.String())
		}
	})
}

func TestWalProgressBar(t *testing.T) {
	t.Run("draws at most every interval, always the end, and erases itself", func(t *testing.T) {
		var b bytes.Buffer
		clock := time.Unix(0, 0)
		p := &progressBar{w: &b, label: "verifying", width: 60, every: time.Second, now: func() time.Time { return clock }}
		p.update(0, 4<<20) // first draw
		p.update(1<<20, 4<<20)
		if n := strings.Count(b.String(), "\r"); n != 1 {
			t.Fatalf("%d draws within the interval, want 1: %q", n, b.String())
		}
		clock = clock.Add(time.Second)
		p.update(2<<20, 4<<20)
		if !strings.HasSuffix(b.String(), "\rverifying [#########.........]  50% 2.0 MiB / 4.0 MiB\x1b[K") {
			t.Errorf("half-way bar: %q", b.String())
		}
		p.update(4<<20, 4<<20) // the end draws even within the interval
		if !strings.Contains(b.String(), " 100% 4.0 MiB / 4.0 MiB") {
			t.Errorf("no final bar: %q", b.String())
		}
		p.finish()
		if !strings.HasSuffix(b.String(), "\r\x1b[K") {
			t.Errorf("bar not erased: %q", b.String())
		}
	})

	t.Run("is nil and silent for a writer that is not a terminal", func(t *testing.T) {
		var b bytes.Buffer
		p := newProgress(&b, "verifying")
		p.update(1, 2)
		p.finish()
		if p != nil || b.Len() != 0 {
			t.Errorf("bar %v wrote %q", p, b.String())
		}
	})
}

func TestWalDump(t *testing.T) {
	base := newWalChannel(t)
	before := treeHash(t, base)
	for _, c := range []struct{ name, golden string }{
		{"logger lines", "dump.txt"},
		{"logger lines, --limit 2 --max-bytes 4", "dump-limit.txt"},
		{"JSON lines", "dump.jsonl"},
		{"raw bodies", "dump-body.txt"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := map[string][]string{
				"dump.txt":       {},
				"dump-limit.txt": {"--limit", "2", "--max-bytes", "4"},
				"dump.jsonl":     {"--json"},
				"dump-body.txt":  {"--body"},
			}[c.golden]
			code, out, errs := runWal(t, append([]string{"wal", "dump", base}, args...)...)
			if code != 0 || errs != "" {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			golden(t, c.golden, redact(t, out, base))
		})
	}
	t.Run("JSON lines carry each queued event byte-exact", func(t *testing.T) {
		_, out, _ := runWal(t, "wal", "dump", "--json", base)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 6 {
			t.Fatalf("%d lines, want 6 (events 4-9)", len(lines))
		}
		for i, l := range lines {
			var e dumpJSON
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatal(err)
			}
			want := walEvent(4 + i)
			if e.Seq != uint64(4+i) || string(e.Body) != string(want.Body) || e.Headers["id"] != want.Headers["id"] || e.Committed == nil {
				t.Errorf("line %d: %+v, want event %d", i, e, 4+i)
			}
		}
	})
	if after := treeHash(t, base); after != before {
		t.Error("dump changed the directory")
	}

	t.Run("a damaged record is skipped, named on stderr, and exits 1", func(t *testing.T) {
		base := newWalChannel(t)
		seg := flipMidLog(t, base)
		code, out, errs := runWal(t, "wal", "dump", base)
		if code != exitDamage || !strings.Contains(errs, "index 2 in segment "+seg) || strings.Count(out, "Event: ") != 3 {
			t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, errs)
		}
	})
}

func TestWalRepair(t *testing.T) {
	t.Run("cuts a torn tail, keeps the evidence, then finds nothing to do", func(t *testing.T) {
		base := newWalChannel(t)
		appendGarbage(t, base)
		code, out, errs := runWal(t, "wal", "repair", base)
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, errs)
		}
		golden(t, "repair.txt", redact(t, out, base))
		if code, out, _ := runWal(t, "wal", "verify", base); code != 0 {
			t.Errorf("verify after repair: exit %d\n%s", code, out)
		}
		code, out, _ = runWal(t, "wal", "repair", "--json", base)
		var rep repairJSON
		if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || rep.Changed {
			t.Errorf("second repair: exit %d, %+v, %v", code, rep, err)
		}
	})

	t.Run("refuses while the channel is open", func(t *testing.T) {
		base := newWalChannel(t)
		ch, err := channel.OpenFile("c1", walOptions(base), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		code, _, errs := runWal(t, "wal", "repair", base)
		if code != 1 || !strings.Contains(errs, "refusing to repair") || !strings.Contains(errs, fmt.Sprintf("pid %d", os.Getpid())) {
			t.Errorf("exit %d, stderr %q", code, errs)
		}
	})
}
