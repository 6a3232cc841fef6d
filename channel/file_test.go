// The file channel passes the conformance suite, durability included (Reopen
// closes the channel and opens the same directories again), and keeps Flume's
// file channel semantics where the suite leaves channels free: capacity is
// taken at Put (waiting keep-alive), an empty Take answers at once, and a
// second Open of the same directories fails naming the holder.
package channel_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/channel/channeltest"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/clock"
	"github.com/flumed/flumed/internal/fsutil"
)

// fileOptions are options for a test channel in dir: small intervals, no
// disk floor.
func fileOptions(dir string) channel.FileOptions {
	o := channel.DefaultFileOptions()
	o.CheckpointDir = filepath.Join(dir, "checkpoint")
	o.DataDir = filepath.Join(dir, "data")
	o.MinimumRequiredSpace = -1
	o.ReclaimInterval = 10 * time.Millisecond
	o.CheckpointInterval = 50 * time.Millisecond
	o.SegmentSize = 1 << 20
	return o
}

func openFile(t testing.TB, o channel.FileOptions) *channel.File {
	t.Helper()
	f, err := channel.OpenFile("c1", o, nil)
	if err != nil {
		t.Fatalf("open file channel: %v", err)
	}
	return f
}

func TestFileConformance(t *testing.T) {
	channeltest.Run(t, channeltest.Factory{
		New: func(t *testing.T, o channeltest.Options) channel.Channel {
			fo := fileOptions(t.TempDir())
			fo.Capacity, fo.TransactionCapacity, fo.KeepAlive = o.Capacity, o.TransactionCapacity, o.KeepAlive
			f := openFile(t, fo)
			if o.Clock != nil {
				f.SetClock(o.Clock)
			}
			return f
		},
		Reopen: func(t *testing.T, ch channel.Channel) channel.Channel {
			f := ch.(*channel.File)
			if err := f.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			return openFile(t, f.Options())
		},
	})
}

func TestFileDirectoryLock(t *testing.T) {
	t.Run("a second open of the same directories fails naming the holder", func(t *testing.T) {
		o := fileOptions(t.TempDir())
		f := openFile(t, o)
		defer f.Close()
		_, err := channel.OpenFile("c2", o, nil)
		if !errors.Is(err, fsutil.ErrLocked) {
			t.Fatalf("second open: %v, want ErrLocked", err)
		}
		if want := "process " + strconv.Itoa(os.Getpid()); !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	})
	t.Run("the directories open again after Close", func(t *testing.T) {
		o := fileOptions(t.TempDir())
		f := openFile(t, o)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		g := openFile(t, o)
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("checkpoint and data may share one directory", func(t *testing.T) {
		o := fileOptions(t.TempDir())
		o.DataDir = o.CheckpointDir
		f := openFile(t, o)
		filePut(t, f, fileEv("a"))
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		f = openFile(t, o)
		defer f.Close()
		if got := fileTake(t, f, 10); len(got) != 1 || string(got[0].Body) != "a" {
			t.Fatalf("after reopen: %v", got)
		}
	})
}

func TestFileTakeDoesNotWait(t *testing.T) {
	o := fileOptions(t.TempDir())
	o.KeepAlive = time.Hour
	f := openFile(t, o)
	defer f.Close()
	f.SetClock(clock.NewFake()) // it never moves: a take waiting keep-alive would never return
	type result struct {
		events []channel.Event
		err    error
	}
	done := make(chan result, 1)
	go func() {
		tx := f.Begin()
		evs, err := tx.Take(5)
		if err == nil {
			err = tx.Commit()
		}
		done <- result{evs, err}
	}()
	r := await.Recv(t, "an empty take to answer at once, as Flume's file channel does", done)
	if r.err != nil || len(r.events) != 0 {
		t.Fatalf("empty take: %d events, %v", len(r.events), r.err)
	}
}

func fileEv(body string) channel.Event {
	return channel.Event{Headers: map[string]string{"b": body}, Body: []byte(body)}
}

func filePut(t testing.TB, ch channel.Channel, events ...channel.Event) {
	t.Helper()
	tx := ch.Begin()
	if err := tx.Put(events...); err != nil {
		_ = tx.Rollback()
		t.Fatalf("put: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit put: %v", err)
	}
}

func fileTake(t testing.TB, ch channel.Channel, n int) []channel.Event {
	t.Helper()
	tx := ch.Begin()
	got, err := tx.Take(n)
	if err != nil {
		_ = tx.Rollback()
		t.Fatalf("take: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit take: %v", err)
	}
	return got
}
