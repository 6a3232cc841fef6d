// Faults injected through the fsutil seam: the disk fills (ENOSPC) or fails
// (EIO) on the data log's writes and syncs, or on the checkpoint's sync, or the
// free space drops below minimumRequiredSpace. In every case:
//
//   - the commit that hit the fault fails and is not acknowledged: a put's
//     events are never delivered, even if its record reached the disk; a
//     take's events come back, in order;
//   - nothing acknowledged before is lost, and takes and acks keep working
//     while puts are refused (ErrFull, with the reason);
//   - the channel marks itself Unhealthy, reopens the log (repairing it) and
//     takes puts again once the fault is gone, across restarts too.
package channel_test

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/channel/channeltest"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/fsutil"
)

// routeFS sends what happens under dir to in, the rest to out, so a fault can
// hit the data log and spare the checkpoint, or the reverse.
type routeFS struct {
	dir     string
	in, out fsutil.FS
}

func (r routeFS) pick(p string) fsutil.FS {
	if strings.HasPrefix(p, r.dir) {
		return r.in
	}
	return r.out
}

func (r routeFS) OpenFile(name string, flag int, perm os.FileMode) (fsutil.File, error) {
	return r.pick(name).OpenFile(name, flag, perm)
}
func (r routeFS) Rename(o, n string) error                { return r.pick(o).Rename(o, n) }
func (r routeFS) Remove(name string) error                { return r.pick(name).Remove(name) }
func (r routeFS) SyncDir(dir string) error                { return r.pick(dir).SyncDir(dir) }
func (r routeFS) Statfs(dir string) (fsutil.Space, error) { return r.pick(dir).Statfs(dir) }
func (r routeFS) CheckWrite(name string, n int64) error   { return r.pick(name).CheckWrite(name, n) }

func idEvents(from, to int) []channel.Event {
	var out []channel.Event
	for i := from; i < to; i++ {
		out = append(out, channel.Event{Headers: map[string]string{"id": strconv.Itoa(i)}, Body: []byte("body " + strconv.Itoa(i))})
	}
	return out
}

func ids(events []channel.Event) []int {
	var out []int
	for _, e := range events {
		n, _ := strconv.Atoi(e.Headers["id"])
		out = append(out, n)
	}
	return out
}

func tryPut(ch channel.Channel, events ...channel.Event) error {
	tx := ch.Begin()
	if err := tx.Put(events...); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func drainIDs(t *testing.T, ch channel.Channel) []int {
	var all []int
	for {
		got := fileTake(t, ch, 50)
		if len(got) == 0 {
			return all
		}
		all = append(all, ids(got)...)
	}
}

func faultyChannel(t *testing.T, onData bool) (*channel.File, *fsutil.Faulty, channel.FileOptions) {
	o := fileOptions(t.TempDir())
	faulty := fsutil.NewFaulty(nil)
	dir := o.CheckpointDir
	if onData {
		dir = o.DataDir
	}
	o.FS = routeFS{dir: dir, in: faulty, out: fsutil.OS{}}
	return openFile(t, o), faulty, o
}

func TestFileFaults(t *testing.T) {
	t.Run("ENOSPC on the log: puts fail with ErrFull, takes drain, puts resume when space returns", func(t *testing.T) {
		ch, faulty, o := faultyChannel(t, true)
		defer func() { ch.Close() }()
		filePut(t, ch, idEvents(0, 10)...)

		faulty.FailWrites(0, syscall.ENOSPC)
		faulty.SetAvail(0)
		err := tryPut(ch, idEvents(100, 105)...)
		if !errors.Is(err, channel.ErrFull) {
			t.Fatalf("put on a full disk: %v, want ErrFull", err)
		}
		if st := ch.Stats(); !st.Unhealthy || st.PutErrors == 0 {
			t.Errorf("stats after the failure: unhealthy %v, put errors %d", st.Unhealthy, st.PutErrors)
		}
		if err := tryPut(ch, idEvents(105, 106)...); !errors.Is(err, channel.ErrFull) || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("put while the disk is still full: %v, want ErrFull saying the disk is full", err)
		}
		if got := ids(fileTake(t, ch, 4)); !slices.Equal(got, span(0, 4)) {
			t.Fatalf("take while the disk is full: %v", got)
		}

		faulty.Heal()
		await.NoError(t, "put after space returned", func() error { return tryPut(ch, idEvents(10, 12)...) })
		if st := ch.Stats(); st.Unhealthy {
			t.Errorf("still unhealthy after recovering")
		}
		if got := drainIDs(t, ch); !slices.Equal(got, span(4, 12)) {
			t.Fatalf("after recovery: %v, want 4..11 (the failed put's events never)", got)
		}
		ch.Close()
		ch = openFile(t, o)
		filePut(t, ch, idEvents(12, 13)...)
		if got := drainIDs(t, ch); !slices.Equal(got, []int{12}) {
			t.Fatalf("after restart: %v", got)
		}
	})

	t.Run("EIO on the log's fsync: the commit fails and its events never appear, even after restart", func(t *testing.T) {
		ch, faulty, o := faultyChannel(t, true)
		defer func() { ch.Close() }()
		filePut(t, ch, idEvents(0, 5)...)
		faulty.FailSyncs(0, syscall.EIO)
		err := tryPut(ch, idEvents(100, 103)...)
		if err == nil || errors.Is(err, channel.ErrFull) || !errors.Is(err, syscall.EIO) {
			t.Fatalf("put with a failing fsync: %v, want an EIO error", err)
		}
		faulty.Heal()
		await.NoError(t, "put after the device recovered", func() error { return tryPut(ch, idEvents(5, 8)...) })
		if got := ids(fileTake(t, ch, 3)); !slices.Equal(got, span(0, 3)) {
			t.Fatalf("first take: %v", got)
		}
		ch.Close()
		ch = openFile(t, o)
		if got := drainIDs(t, ch); !slices.Equal(got, span(3, 8)) {
			t.Fatalf("after restart: %v, want 3..7", got)
		}
	})

	t.Run("EIO on the checkpoint's fsync: the take commit fails and its events come back in order", func(t *testing.T) {
		ch, faulty, _ := faultyChannel(t, false)
		defer ch.Close()
		filePut(t, ch, idEvents(0, 6)...)
		faulty.FailSyncs(0, syscall.EIO)
		tx := ch.Begin()
		got, err := tx.Take(4)
		if err != nil || len(got) != 4 {
			t.Fatalf("take: %d, %v", len(got), err)
		}
		if err := tx.Commit(); !errors.Is(err, syscall.EIO) {
			t.Fatalf("take commit with a failing checkpoint: %v, want EIO", err)
		}
		if st := ch.Stats(); st.CheckpointErrors == 0 || st.Size != 6 {
			t.Errorf("stats: checkpoint errors %d, size %d", st.CheckpointErrors, st.Size)
		}
		faulty.Heal()
		if got := drainIDs(t, ch); !slices.Equal(got, span(0, 6)) {
			t.Fatalf("after the failed take: %v, want 0..5", got)
		}
	})

	t.Run("EIO on the checkpoint's fsync under CommitAll: every transaction of the group fails and the events come back in order", func(t *testing.T) {
		ch, faulty, _ := faultyChannel(t, false)
		defer ch.Close()
		filePut(t, ch, idEvents(0, 8)...)
		txns := channeltest.OpenTakes(t, ch, 3, 2)
		faulty.FailSyncs(0, syscall.EIO)
		for i, err := range channel.CommitAll(ch, txns) {
			if !errors.Is(err, syscall.EIO) {
				t.Errorf("transaction %d: %v, want EIO", i, err)
			}
		}
		if st := ch.Stats(); st.TakeErrors != 3 || st.Size != 8 {
			t.Errorf("stats: take errors %d (want 3), size %d (want 8)", st.TakeErrors, st.Size)
		}
		faulty.Heal()
		if got := drainIDs(t, ch); !slices.Equal(got, span(0, 8)) {
			t.Fatalf("after the failed group: %v, want 0..7", got)
		}
	})

	t.Run("CommitAll makes a group of takes durable with one checkpoint sync", func(t *testing.T) {
		o := fileOptions(t.TempDir())
		o.CheckpointInterval = time.Hour // no timed checkpoint in between
		faulty := fsutil.NewFaulty(nil)
		o.FS = routeFS{dir: o.CheckpointDir, in: faulty, out: fsutil.OS{}}
		ch := openFile(t, o)
		filePut(t, ch, idEvents(0, 14)...)
		before := faulty.Syncs()
		for _, err := range channel.CommitAll(ch, channeltest.OpenTakes(t, ch, 3, 2)) {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := faulty.Syncs() - before; n != 1 {
			t.Errorf("checkpoint syncs for a group of 3: %d, want 1", n)
		}
		before = faulty.Syncs()
		for range 3 {
			fileTake(t, ch, 2)
		}
		if n := faulty.Syncs() - before; n != 3 {
			t.Errorf("checkpoint syncs for 3 commits one by one: %d, want 3 (the count above means nothing)", n)
		}
		ch.Crash() // what a kill leaves: the group's acknowledgement must be on disk
		ch = openFile(t, o)
		defer ch.Close()
		if got := drainIDs(t, ch); !slices.Equal(got, span(12, 14)) {
			t.Fatalf("after a crash: %v, want 12..13", got)
		}
	})

	t.Run("below minimumRequiredSpace puts fail with ErrFull naming it; takes and acks keep working", func(t *testing.T) {
		o := fileOptions(t.TempDir())
		faulty := fsutil.NewFaulty(nil)
		o.FS = faulty
		o.MinimumRequiredSpace = 100 << 20
		ch := openFile(t, o)
		defer ch.Close()
		filePut(t, ch, idEvents(0, 5)...)
		faulty.SetAvail(50 << 20)
		want := span(0, 5)
		next := 100
		// The free space is cached for up to a second: puts are accepted until
		// it is read again.
		await.NoError(t, "put below the floor", func() error {
			err := tryPut(ch, idEvents(next, next+1)...)
			if errors.Is(err, channel.ErrFull) && strings.Contains(err.Error(), "minimumRequiredSpace") {
				return nil
			}
			if err == nil {
				want = append(want, next)
			}
			next++
			return errors.New("put still accepted")
		})
		if got := drainIDs(t, ch); !slices.Equal(got, want) {
			t.Fatalf("drain below the floor: %v, want %v", got, want)
		}
		faulty.SetAvail(1 << 30)
		await.NoError(t, "put above the floor again", func() error { return tryPut(ch, idEvents(5, 6)...) })
		if got := drainIDs(t, ch); !slices.Equal(got, []int{5}) {
			t.Fatalf("after space returned: %v", got)
		}
	})
}
