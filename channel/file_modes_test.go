// Modes and options of the file channel beyond the conformance suite:
//
//   - fsyncPerTransaction=false: commits return without a sync; the log and
//     the checkpoint are synced every fsyncInterval and at Close, and the
//     records say which mode wrote them;
//   - useDualCheckpoints: the ack state is copied to backupCheckpointDir, and
//     a primary checkpoint that is unreadable falls back to it (events taken
//     since come back, none is lost);
//   - capacity is a soft limit, not a layout: reopening with a capacity below
//     what is queued works, takes drain, puts wait until there is room;
//   - a Put waiting for capacity wakes as soon as a take commits.
package channel_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/clock"
	"github.com/flumed/flumed/internal/fsutil"
)

func TestFileIntervalMode(t *testing.T) {
	o := fileOptions(t.TempDir())
	faulty := fsutil.NewFaulty(nil) // only to count syncs
	o.FS = faulty
	o.FsyncPerTransaction = false
	o.FsyncInterval = time.Hour
	ch := openFile(t, o)
	base := faulty.Syncs()
	for i := range 20 {
		filePut(t, ch, idEvents(i, i+1)...)
	}
	if got := ids(fileTake(t, ch, 5)); !slices.Equal(got, span(0, 5)) {
		t.Fatalf("take: %v", got)
	}
	if n := faulty.Syncs() - base; n != 0 {
		t.Errorf("%d syncs for 20 put and 1 take commits in interval mode, want none before the interval", n)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if faulty.Syncs() == base {
		t.Errorf("Close did not sync")
	}
	rep, err := channel.InspectFile(o.CheckpointDir, o.DataDir)
	if err != nil || rep.Durability != "fsyncInterval" || rep.Queued != 15 {
		t.Fatalf("inspect: durability %q, queued %d, %v", rep.Durability, rep.Queued, err)
	}

	t.Run("the interval syncs what was committed", func(t *testing.T) {
		o.FsyncInterval = 20 * time.Millisecond
		ch := openFile(t, o)
		defer ch.Close()
		base := faulty.Syncs()
		filePut(t, ch, idEvents(100, 101)...)
		fileTake(t, ch, 1)
		await.True(t, "the interval's syncs", func() bool { return faulty.Syncs() >= base+2 })
	})
}

func TestFileBackupCheckpoint(t *testing.T) {
	o := fileOptions(t.TempDir())
	o.BackupCheckpointDir = filepath.Join(filepath.Dir(o.CheckpointDir), "backup")
	o.CheckpointInterval = time.Hour // only Close writes the backup here
	ch := openFile(t, o)
	filePut(t, ch, idEvents(0, 10)...)
	fileTake(t, ch, 3)
	if err := ch.Close(); err != nil { // checkpointOnClose: the backup says 3 taken
		t.Fatal(err)
	}
	ch = openFile(t, o)
	fileTake(t, ch, 2) // the primary says 5 taken; the backup still 3
	ch.Crash()

	for _, name := range []string{"checkpoint-0", "checkpoint-1"} {
		if err := os.WriteFile(filepath.Join(o.CheckpointDir, name), []byte("garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ch = openFile(t, o)
	defer ch.Close()
	if got := drainIDs(t, ch); !slices.Equal(got, span(3, 10)) {
		t.Fatalf("from the backup: %v, want 3..9 (the two taken since the backup come back)", got)
	}

	t.Run("without a backup an unreadable checkpoint delivers the whole log again", func(t *testing.T) {
		o := fileOptions(t.TempDir())
		ch := openFile(t, o)
		filePut(t, ch, idEvents(0, 4)...)
		fileTake(t, ch, 2)
		ch.Close()
		os.WriteFile(filepath.Join(o.CheckpointDir, "checkpoint-0"), []byte("garbage"), 0o644)
		os.WriteFile(filepath.Join(o.CheckpointDir, "checkpoint-1"), []byte("garbage"), 0o644)
		ch = openFile(t, o)
		defer ch.Close()
		if got := drainIDs(t, ch); !slices.Equal(got, span(0, 4)) {
			t.Fatalf("%v, want 0..3", got)
		}
	})
}

func TestFileCapacityIsSoft(t *testing.T) {
	o := fileOptions(t.TempDir())
	o.Capacity, o.TransactionCapacity = 100, 10
	ch := openFile(t, o)
	for i := 0; i < 50; i += 10 {
		filePut(t, ch, idEvents(i, i+10)...)
	}
	ch.Close()

	o.Capacity, o.TransactionCapacity, o.KeepAlive = 20, 10, 0
	ch = openFile(t, o)
	defer ch.Close()
	if st := ch.Stats(); st.Size != 50 || st.Capacity != 20 {
		t.Fatalf("after reopening with a smaller capacity: size %d, capacity %d", st.Size, st.Capacity)
	}
	if err := tryPut(ch, idEvents(50, 51)...); !errors.Is(err, channel.ErrFull) {
		t.Fatalf("put over capacity: %v, want ErrFull", err)
	}
	var got []int
	for range 4 {
		got = append(got, ids(fileTake(t, ch, 10))...)
	}
	if !slices.Equal(got, span(0, 40)) {
		t.Fatalf("takes: %v", got)
	}
	if err := tryPut(ch, idEvents(50, 51)...); err != nil {
		t.Fatalf("put with room again: %v", err)
	}
}

func TestFilePutWaitsForCapacity(t *testing.T) {
	o := fileOptions(t.TempDir())
	o.Capacity, o.TransactionCapacity, o.KeepAlive = 5, 5, 10*time.Second
	ch := openFile(t, o)
	defer ch.Close()
	// A fake clock never lets keep-alive pass: the put can only succeed
	// because the take freed capacity, and its waiter shows it waits.
	clk := clock.NewFake()
	ch.SetClock(clk)
	filePut(t, ch, idEvents(0, 5)...)
	result := make(chan error, 1)
	go func() { result <- tryPut(ch, idEvents(5, 7)...) }()
	await.True(t, "the put to wait for capacity or return", func() bool { return clk.Waiters() > 0 || len(result) > 0 })
	if len(result) > 0 {
		t.Fatalf("the put into a full channel returned before any take: %v", <-result)
	}
	fileTake(t, ch, 2)
	if err := await.Recv(t, "the put to wake when the take committed", result); err != nil {
		t.Fatalf("waiting put: %v", err)
	}
	got := ids(fileTake(t, ch, 5))
	if !slices.Equal(got, span(2, 7)) {
		t.Fatalf("%v", got)
	}
}
