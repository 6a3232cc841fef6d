package wal

// The fault contract: when the disk fails a write or a sync (ENOSPC, EIO),
// the call returns an error wrapping both ErrFailed and the cause, the handle
// is dead (every later call returns that same error, even once the disk is
// healthy again: a failed sync is never retried and trusted), and after Close
// and Open every record acknowledged before the fault is there, intact, with
// nothing that was never written.

import (
	"errors"
	"syscall"
	"testing"

	"github.com/flumed/flumed/internal/fsutil"
)

func TestDiskFaultsKillTheHandleAndLoseNothingAcknowledged(t *testing.T) {
	cases := []struct {
		name string
		arm  func(f *fsutil.Faulty)
		// crossSegment makes the failing batch start a new segment file, so
		// the directory sync is the first to fail.
		crossSegment bool
		cause        error
	}{
		{"ENOSPC on write", func(f *fsutil.Faulty) { f.FailWrites(0, syscall.ENOSPC) }, false, syscall.ENOSPC},
		{"EIO on write once a byte budget runs out", func(f *fsutil.Faulty) { f.FailWrites(300, syscall.EIO) }, false, syscall.EIO},
		{"ENOSPC on fsync", func(f *fsutil.Faulty) { f.FailSyncs(0, syscall.ENOSPC) }, false, syscall.ENOSPC},
		{"EIO on fsync", func(f *fsutil.Faulty) { f.FailSyncs(0, syscall.EIO) }, false, syscall.EIO},
		{"EIO on the directory sync after a new segment", func(f *fsutil.Faulty) { f.FailSyncs(0, syscall.EIO) }, true, syscall.EIO},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			faulty := fsutil.NewFaulty(nil)
			l, err := Open(dir, Options{SegmentSize: 4096, FS: faulty})
			if err != nil {
				t.Fatal(err)
			}
			appendRange(t, l, 1, 20, 5)
			acked := l.LastIndex()

			batch := 5
			if tc.crossSegment {
				batch = 30 // more than a 4 KiB segment holds
			}
			var ps [][]byte
			for i := acked + 1; i <= acked+uint64(batch); i++ {
				ps = append(ps, payloadFor(i))
			}
			segsBefore := len(l.Segments())
			tc.arm(faulty)
			_, _, err = l.Append(ps...)
			if err == nil {
				if tc.crossSegment && len(l.Segments()) == segsBefore {
					t.Fatal("setup: the batch did not start a new segment")
				}
				err = l.Sync()
			}
			if !errors.Is(err, ErrFailed) || !errors.Is(err, tc.cause) {
				t.Fatalf("err = %v, want ErrFailed wrapping %v", err, tc.cause)
			}
			faulty.Heal()
			if err2 := l.Sync(); !errors.Is(err2, ErrFailed) {
				t.Fatalf("Sync after the fault healed = %v: a dead handle must stay dead", err2)
			}
			if _, _, err2 := l.Append(payloadFor(999)); !errors.Is(err2, ErrFailed) {
				t.Fatalf("Append on a dead handle = %v", err2)
			}
			if err2 := l.Release(2); !errors.Is(err2, ErrFailed) {
				t.Fatalf("Release on a dead handle = %v", err2)
			}
			if l.Stats().Failed == nil {
				t.Fatal("Stats does not report the failure")
			}
			if err := l.Close(); err != nil {
				t.Fatalf("Close of a dead handle: %v", err)
			}

			l, err = Open(dir, Options{SegmentSize: 4096})
			if err != nil {
				t.Fatalf("reopen after the fault: %v", err)
			}
			defer l.Close()
			intact, corrupt := scan(t, l) // fails on any phantom payload
			if len(corrupt) > 0 {
				t.Fatalf("damaged records after reopen: %v", corrupt)
			}
			for i := uint64(1); i <= acked; i++ {
				if !intact[i] {
					t.Fatalf("acknowledged record %d lost", i)
				}
			}
			if l.LastIndex() > acked+uint64(batch) {
				t.Fatalf("LastIndex %d: records that were never appended", l.LastIndex())
			}
		})
	}
}

// Rolling to a new segment syncs the old tail, creates sealed/ and the
// manifest (the first time), appends to the manifest, and its Sync syncs
// sealed/, the log directory, the manifest and the new tail: whichever of
// those syncs or writes fails, the handle dies and nothing acknowledged is
// lost.
func TestAFaultAnywhereInARollKillsTheHandleAndLosesNothing(t *testing.T) {
	arms := map[string]func(f *fsutil.Faulty, k int){
		"sync":  func(f *fsutil.Faulty, k int) { f.FailSyncs(k, syscall.EIO) },
		"write": func(f *fsutil.Faulty, k int) { f.FailWrites(int64(k)*512, syscall.EIO) },
	}
	for what, arm := range arms {
		for k := 0; ; k++ {
			dir := t.TempDir()
			faulty := fsutil.NewFaulty(nil)
			l, err := Open(dir, Options{SegmentSize: 4096, FS: faulty})
			if err != nil {
				t.Fatal(err)
			}
			appendRange(t, l, 1, 15, 5) // in the first segment: the next batch seals it
			arm(faulty, k)
			var ps [][]byte
			for i := uint64(16); i <= 60; i++ {
				ps = append(ps, payloadFor(i))
			}
			_, _, err = l.Append(ps...)
			if err == nil {
				err = l.Sync()
			}
			faulty.Heal()
			if err == nil {
				l.Close()
				if k == 0 {
					t.Fatalf("%s fault: a batch of two segments went through a fault armed at once", what)
				}
				break // k is past every operation of the roll
			}
			if !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.EIO) {
				t.Fatalf("%s fault %d: err = %v, want ErrFailed wrapping EIO", what, k, err)
			}
			if _, _, err := l.Append(payloadFor(61)); !errors.Is(err, ErrFailed) {
				t.Fatalf("%s fault %d: Append on the dead handle = %v", what, k, err)
			}
			l.Close()
			l, err = Open(dir, Options{SegmentSize: 4096})
			if err != nil {
				t.Fatalf("%s fault %d: reopen: %v", what, k, err)
			}
			intact, corrupt := scan(t, l)
			if len(corrupt) > 0 || len(intact) < 15 || l.LastIndex() > 60 {
				t.Fatalf("%s fault %d: %d intact, corrupt %v, last %d", what, k, len(intact), corrupt, l.LastIndex())
			}
			for i := uint64(1); i <= 15; i++ {
				if !intact[i] {
					t.Fatalf("%s fault %d: acknowledged record %d lost", what, k, i)
				}
			}
			l.Close()
		}
	}
}
