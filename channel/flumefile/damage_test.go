package flumefile

// Damage is handled as Flume handles it. Where Flume goes on (OP_EOF, an
// unknown op code, a blanked record, a file ending inside a length, and —
// with fsyncPerTransaction=false — a corrupt record), the reader goes on the
// same way; where Flume fails, Open or Events fails naming the file and the
// offset, and nothing is yielded past the failure.

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"

	"github.com/flumed/flumed/channel/flumefile/flumefiletest"
)

// scene writes a Flume channel with the test encoder: one data file, and a
// checkpoint only when checkpoint is called.
type scene struct {
	t        *testing.T
	ckptDir  string
	dataDir  string
	w        *flumefiletest.LogWriter
	wo       int64
	meta     flumefiletest.LogMeta
	offsets  map[string]int32 // body -> offset of its put
	ptrs     map[string]int64
	fsyncOff bool
	patches  []func() // applied by close, after the writer's last flush
	cut      int64    // when not 0, close cuts the data file to this size
}

func newScene(t *testing.T) *scene {
	t.Helper()
	root := t.TempDir()
	s := &scene{t: t, ckptDir: filepath.Join(root, "checkpoint"), dataDir: filepath.Join(root, "data"),
		wo: 1000, offsets: map[string]int32{}, ptrs: map[string]int64{}}
	for _, d := range []string{s.ckptDir, s.dataDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w, err := flumefiletest.CreateLog(s.dataDir, 1)
	if err != nil {
		t.Fatal(err)
	}
	s.w = w
	return s
}

func (s *scene) next() int64 { s.wo++; return s.wo }

func (s *scene) append(payload []byte) int32 {
	off, err := s.w.Append(payload)
	if err != nil {
		s.t.Fatal(err)
	}
	return off
}

// puts commits one put transaction per body.
func (s *scene) puts(txn int64, bodies ...string) {
	for _, b := range bodies {
		off := s.append(flumefiletest.PutRecord(txn, s.next(), flumefiletest.Put{
			Headers: []flumefiletest.Header{{Key: "n", Value: b}}, Body: []byte(b)}))
		s.offsets[b], s.ptrs[b] = off, flumefiletest.Pointer(1, off)
	}
	s.append(flumefiletest.CommitRecord(txn, s.next(), flumefiletest.TypePut))
}

// takes commits a take transaction of the events with these bodies.
func (s *scene) takes(txn int64, bodies ...string) {
	for _, b := range bodies {
		s.append(flumefiletest.TakeRecord(txn, s.next(), 1, s.offsets[b]))
	}
	s.append(flumefiletest.CommitRecord(txn, s.next(), flumefiletest.TypeTake))
}

func (s *scene) close() {
	if err := s.w.Close(s.meta); err != nil {
		s.t.Fatal(err)
	}
	for _, p := range s.patches {
		p()
	}
	if s.cut > 0 {
		if err := os.Truncate(s.w.Path, s.cut); err != nil {
			s.t.Fatal(err)
		}
	}
}

func (s *scene) opts() Options {
	return Options{CheckpointDir: s.ckptDir, DataDirs: []string{s.dataDir}, FsyncPerTransaction: !s.fsyncOff}
}

// read opens the channel and returns the bodies of its events, and the
// first error.
func (s *scene) read() ([]string, error) {
	b, err := Open(s.opts())
	if err != nil {
		return nil, err
	}
	defer b.Close()
	var out []string
	for ev, err := range b.Events(nil) {
		if err != nil {
			return out, err
		}
		out = append(out, string(ev.Body))
	}
	return out, nil
}

// patch overwrites bytes of the data file at off, when it is closed.
func (s *scene) patch(off int64, b []byte) {
	s.patches = append(s.patches, func() {
		f, err := os.OpenFile(s.w.Path, os.O_WRONLY, 0)
		if err != nil {
			s.t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(b, off); err != nil {
			s.t.Fatal(err)
		}
	})
}

// bodyEnd is the offset of the last body byte in the record scene.puts
// writes for body: before the checksum (tag and 8 bytes) and the footer.
func bodyEnd(body string) int64 {
	p := flumefiletest.PutRecord(0, 0, flumefiletest.Put{Headers: []flumefiletest.Header{{Key: "n", Value: body}}, Body: []byte(body)})
	return int64(len(flumefiletest.Frame(p))) - 11
}

func wantCorrupt(t *testing.T, err error, file string, off int64) {
	t.Helper()
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a CorruptError", err)
	}
	if ce.File != file || ce.Offset != off {
		t.Fatalf("CorruptError names %s at %d, want %s at %d", ce.File, ce.Offset, file, off)
	}
	if !strings.Contains(err.Error(), file) {
		t.Fatalf("message %q does not name the file", err)
	}
}

func TestDamage(t *testing.T) {
	type result struct {
		bodies  []string
		corrupt bool // a CorruptError at the damaged record
	}
	cases := []struct {
		name string
		// damage writes records after "a" "b" "c" (committed, in one file,
		// no checkpoint: a full replay); it returns the offset it damaged.
		damage       func(s *scene) int64
		strict, lax  result
		bothSameFail string // an error both modes give, other than corruption
	}{
		{
			name:   "OP_EOF after the records ends the file",
			damage: func(s *scene) int64 { return 0 },
			strict: result{bodies: []string{"a", "b", "c"}}, lax: result{bodies: []string{"a", "b", "c"}},
		},
		{
			name: "an unknown op code ends the file, as Flume stops there",
			damage: func(s *scene) int64 {
				off := s.w.Pos()
				s.w.AppendRaw([]byte{0x42})
				s.puts(20, "d")
				return off
			},
			strict: result{bodies: []string{"a", "b", "c"}}, lax: result{bodies: []string{"a", "b", "c"}},
		},
		{
			name: "a blanked record is skipped by replay",
			damage: func(s *scene) int64 {
				s.puts(20, "d")
				s.patch(int64(s.offsets["d"]), []byte{0x00})
				s.puts(21, "e")
				return 0
			},
			// d's put is gone, its commit has nothing to add.
			strict: result{bodies: []string{"a", "b", "c", "e"}}, lax: result{bodies: []string{"a", "b", "c", "e"}},
		},
		{
			name: "a file ending inside a record length ends there",
			damage: func(s *scene) int64 {
				s.w.AppendRaw([]byte{0x7f, 0, 0})
				s.cut = s.w.Pos()
				return 0
			},
			strict: result{bodies: []string{"a", "b", "c"}}, lax: result{bodies: []string{"a", "b", "c"}},
		},
		{
			name: "a record cut by the end of the file",
			damage: func(s *scene) int64 {
				off := s.w.Pos()
				rec := flumefiletest.Frame(flumefiletest.PutRecord(20, s.next(), flumefiletest.Put{Body: []byte("d")}))
				s.w.AppendRaw(rec[:len(rec)-3])
				s.cut = s.w.Pos()
				return off
			},
			strict: result{corrupt: true}, lax: result{bodies: []string{"a", "b", "c"}},
		},
		{
			name: "a negative record length",
			damage: func(s *scene) int64 {
				off := s.w.Pos()
				s.w.AppendRaw([]byte{0x7f, 0xff, 0xff, 0xff, 0xf0})
				s.puts(20, "d")
				return off
			},
			strict: result{corrupt: true}, lax: result{bodies: []string{"a", "b", "c"}},
		},
		{
			name: "a flipped body byte of a record replay reads fails its checksum",
			damage: func(s *scene) int64 {
				s.puts(20, "dddd")
				off := int64(s.offsets["dddd"])
				s.patch(off+bodyEnd("dddd"), []byte{'X'})
				s.puts(21, "e")
				return off
			},
			// Without fsyncPerTransaction the rest of the file counts as consumed.
			strict: result{corrupt: true}, lax: result{bodies: []string{"a", "b", "c"}},
		},
		{
			name: "garbage where a header should be fails to parse",
			damage: func(s *scene) int64 {
				off := s.w.Pos()
				s.append([]byte{0x05, 0xff, 0xff, 0xff, 0xff, 0xff})
				return off
			},
			strict: result{corrupt: true}, lax: result{bodies: []string{"a", "b", "c"}},
		},
		{
			name: "an unknown record type fails replay in both modes",
			damage: func(s *scene) int64 {
				p := flumefiletest.CommitRecord(20, s.next(), flumefiletest.TypePut)
				p[2] = 9 // the header's type field
				off := s.append(p)
				return int64(off)
			},
			bothSameFail: "unknown record type",
		},
		{
			name: "a record without its footer fails replay in both modes",
			damage: func(s *scene) int64 {
				p := flumefiletest.CommitRecord(20, s.next(), flumefiletest.TypePut)
				return int64(s.append(p[:len(p)-1]))
			},
			bothSameFail: "footer missing",
		},
	}
	for _, tc := range cases {
		for _, strict := range []bool{true, false} {
			want := tc.strict
			mode := "fsyncPerTransaction"
			if !strict {
				want, mode = tc.lax, "no fsyncPerTransaction"
			}
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				s := newScene(t)
				s.fsyncOff = !strict
				s.puts(10, "a", "b")
				s.puts(11, "c")
				off := tc.damage(s)
				s.close()
				got, err := s.read()
				switch {
				case tc.bothSameFail != "":
					if err == nil || !strings.Contains(err.Error(), tc.bothSameFail) {
						t.Fatalf("err = %v, want %q", err, tc.bothSameFail)
					}
					wantCorrupt(t, err, s.w.Path, off)
				case want.corrupt:
					wantCorrupt(t, err, s.w.Path, off)
				case err != nil:
					t.Fatal(err)
				case !slices.Equal(got, want.bodies):
					t.Fatalf("events %q, want %q", got, want.bodies)
				}
			})
		}
	}
}

func TestDamageMetQueuedAtTake(t *testing.T) {
	// A clean stop: every event is in the checkpoint, replay reads nothing,
	// and the damage is met when the event is read.
	build := func(t *testing.T, fsyncOff bool, damage func(s *scene)) *scene {
		s := newScene(t)
		s.fsyncOff = fsyncOff
		s.puts(10, "a", "b", "c")
		damage(s)
		pos := s.w.Pos()
		s.meta = flumefiletest.LogMeta{CheckpointPosition: pos, CheckpointWriteOrd: s.wo}
		s.close()
		err := flumefiletest.WriteCheckpoint(s.ckptDir, flumefiletest.Checkpoint{Capacity: 100, WriteOrder: s.wo,
			Queue: []int64{s.ptrs["a"], s.ptrs["b"], s.ptrs["c"]}, ActiveLogs: []flumefiletest.ActiveLog{{ID: 1, Count: 3}}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	flip := func(s *scene) { s.patch(int64(s.offsets["b"])+bodyEnd("b"), []byte{'X'}) }
	t.Run("a corrupt queued event fails the take with fsyncPerTransaction", func(t *testing.T) {
		s := build(t, false, flip)
		s.fsyncOff = false
		got, err := s.read()
		wantCorrupt(t, err, s.w.Path, int64(s.offsets["b"]))
		if !slices.Equal(got, []string{"a"}) {
			t.Fatalf("yielded %q before failing, want only a", got)
		}
	})
	t.Run("a corrupt queued event is skipped without fsyncPerTransaction", func(t *testing.T) {
		s := build(t, true, flip)
		got, err := s.read()
		if err != nil || !slices.Equal(got, []string{"a", "c"}) {
			t.Fatalf("events %q (%v), want a c", got, err)
		}
	})
	t.Run("a blanked queued event is skipped", func(t *testing.T) {
		s := build(t, false, func(s *scene) { s.patch(int64(s.offsets["c"]), []byte{0x00}) })
		got, err := s.read()
		if err != nil || !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("events %q (%v), want a b", got, err)
		}
	})
	t.Run("a queued event in a data file that is gone is refused", func(t *testing.T) {
		s := build(t, false, func(*scene) {})
		q := []int64{s.ptrs["a"], flumefiletest.Pointer(7, 0)}
		err := flumefiletest.WriteCheckpoint(s.ckptDir, flumefiletest.Checkpoint{Capacity: 100, WriteOrder: s.wo, Queue: q,
			ActiveLogs: []flumefiletest.ActiveLog{{ID: 1, Count: 1}, {ID: 7, Count: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.read(); err == nil || !strings.Contains(err.Error(), "log-7") {
			t.Fatalf("err = %v, want one naming log-7", err)
		}
	})
}

func TestMetadataAndEncryption(t *testing.T) {
	t.Run("an encrypted data file is refused, naming the file and the cipher", func(t *testing.T) {
		s := newScene(t)
		s.puts(10, "a")
		s.meta = flumefiletest.LogMeta{Cipher: "AESCTRNOPADDING", KeyAlias: "key-0"}
		s.close()
		_, err := s.read()
		var ee *EncryptedError
		if !errors.As(err, &ee) || ee.File != s.w.Path || !strings.Contains(err.Error(), "AESCTRNOPADDING") {
			t.Fatalf("err = %v, want an EncryptedError naming %s", err, s.w.Path)
		}
	})
	t.Run("a data file without metadata is refused", func(t *testing.T) {
		s := newScene(t)
		s.puts(10, "a")
		s.close()
		if err := os.Rename(s.w.Path+".meta", s.w.Path+".meta.tmp"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.read(); err == nil || !strings.Contains(err.Error(), "no .meta") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("an empty data file without metadata is ignored", func(t *testing.T) {
		s := newScene(t)
		s.puts(10, "a")
		s.close()
		if err := os.WriteFile(filepath.Join(s.dataDir, "log-2"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := s.read(); err != nil || !slices.Equal(got, []string{"a"}) {
			t.Fatalf("events %q (%v)", got, err)
		}
	})
}

func TestBadCheckpoints(t *testing.T) {
	// a, b, c committed; the checkpoint (after a and b were taken) holds c.
	build := func(t *testing.T) (*scene, flumefiletest.Checkpoint) {
		s := newScene(t)
		s.puts(10, "a", "b", "c")
		s.takes(11, "a", "b")
		s.meta = flumefiletest.LogMeta{CheckpointPosition: s.w.Pos(), CheckpointWriteOrd: s.wo}
		c := flumefiletest.Checkpoint{Capacity: 50, WriteOrder: s.wo, Queue: []int64{s.ptrs["c"]},
			ActiveLogs: []flumefiletest.ActiveLog{{ID: 1, Count: 1}}}
		s.puts(12, "d")
		s.close()
		return s, c
	}
	write := func(t *testing.T, dir string, c flumefiletest.Checkpoint) {
		if err := flumefiletest.WriteCheckpoint(dir, c); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("a good checkpoint replays only what follows it", func(t *testing.T) {
		s, c := build(t)
		write(t, s.ckptDir, c)
		b, err := Open(s.opts())
		if err != nil {
			t.Fatal(err)
		}
		if r := b.Report; r.Checkpoint != "checkpoint" || r.Puts != 1 || r.Commits != 1 || r.Queued != 2 {
			t.Fatalf("report %+v", r)
		}
		b.Close()
	})
	t.Run("an incomplete checkpoint without a backup replays every data file", func(t *testing.T) {
		s, c := build(t)
		c.Incomplete = true
		write(t, s.ckptDir, c)
		b, err := Open(s.opts())
		if err != nil {
			t.Fatal(err)
		}
		if r := b.Report; r.Checkpoint != "none" || !strings.Contains(r.BadCheckpoint, "incomplete") || r.Queued != 2 {
			t.Fatalf("report %+v", r)
		}
		b.Close()
	})
	t.Run("a wrong inflight checksum restores the backup", func(t *testing.T) {
		s, c := build(t)
		write(t, s.ckptDir, c)
		backup := filepath.Join(filepath.Dir(s.ckptDir), "backup")
		write(t, backup, c)
		if err := os.WriteFile(filepath.Join(backup, backupComplete), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.ckptDir, inflightTakes), make([]byte, 40), 0o644); err != nil {
			t.Fatal(err)
		}
		o := s.opts()
		o.BackupCheckpointDir = backup
		b, err := Open(o)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if r := b.Report; r.Checkpoint != "backup" || r.Queued != 2 {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("a compressed backup (compressBackupCheckpoint) is restored", func(t *testing.T) {
		s, c := build(t)
		c.Incomplete = true
		write(t, s.ckptDir, c)
		c.Incomplete = false
		backup := filepath.Join(filepath.Dir(s.ckptDir), "backup")
		write(t, backup, c)
		// snappy-java's stream: magic, version 1, compatible version 1, then
		// blocks of a big-endian length and a raw snappy block.
		raw, err := os.ReadFile(filepath.Join(backup, checkpointName))
		if err != nil {
			t.Fatal(err)
		}
		stream := append([]byte(nil), snappyMagic...)
		stream = binary.BigEndian.AppendUint32(stream, 1)
		stream = binary.BigEndian.AppendUint32(stream, 1)
		for len(raw) > 0 {
			n := min(len(raw), 32<<10)
			blk := s2.EncodeSnappy(nil, raw[:n])
			stream = binary.BigEndian.AppendUint32(stream, uint32(len(blk)))
			stream = append(stream, blk...)
			raw = raw[n:]
		}
		if err := os.Remove(filepath.Join(backup, checkpointName)); err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{checkpointName + snappySuffix: stream, backupComplete: nil} {
			if err := os.WriteFile(filepath.Join(backup, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		o := s.opts()
		o.BackupCheckpointDir = backup
		b, err := Open(o)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if r := b.Report; r.Checkpoint != "backup" || r.AtCheckpoint != 1 || r.Queued != 2 {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("metadata naming another write order than the checkpoint's is a bad checkpoint", func(t *testing.T) {
		s, c := build(t)
		write(t, s.ckptDir, c)
		data, err := os.ReadFile(filepath.Join(s.ckptDir, checkpointName))
		if err != nil {
			t.Fatal(err)
		}
		binary.BigEndian.PutUint64(data[8:], uint64(c.WriteOrder+1))
		if err := os.WriteFile(filepath.Join(s.ckptDir, checkpointName), data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := s.read()
		if err != nil || !slices.Equal(got, []string{"c", "d"}) {
			t.Fatalf("events %q (%v)", got, err)
		}
	})
}
