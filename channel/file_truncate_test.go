// Space reclaim: segments wholly below the durable floor are given back in
// the background, never a segment still holding a queued event, so a restart
// after reclaiming delivers exactly what was queued; a drained channel keeps
// at most about one segment of disk.
package channel_test

import (
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/await"
)

// segmentBytes sums the data log's segment files (20-digit names), the tail
// in dir and the sealed ones in dir/sealed.
func segmentBytes(t *testing.T, dir string) (n int, bytes int64) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := os.ReadDir(filepath.Join(dir, "sealed"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range append(ents, sealed...) {
		if len(e.Name()) != 20 {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // released by the reclaim goroutine between ReadDir and Lstat
		}
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() > 0 {
			n++
			bytes += info.Size()
		}
	}
	return n, bytes
}

// reclaimOptions are 1 MiB segments reclaimed every 5 ms.
func reclaimOptions(t *testing.T) channel.FileOptions {
	o := fileOptions(t.TempDir())
	o.SegmentSize = 1 << 20
	o.ReclaimInterval = 5 * time.Millisecond
	o.TransactionCapacity = 100
	return o
}

// putRandom commits events from..to-1 (the id header) of 4000 random bytes,
// so that compression cannot shrink the log, 100 per transaction.
func putRandom(t *testing.T, ch channel.Channel, from, to int) {
	t.Helper()
	body := make([]byte, 4000)
	rand.Read(body)
	for i := from; i < to; i += 100 {
		var evs []channel.Event
		for j := i; j < min(i+100, to); j++ {
			evs = append(evs, channel.Event{Headers: map[string]string{"id": strconv.Itoa(j)}, Body: body})
		}
		filePut(t, ch, evs...)
	}
}

func TestFileReclaim(t *testing.T) {
	o := reclaimOptions(t)
	ch := openFile(t, o)
	defer func() { ch.Close() }()
	const total = 2000 // about 8 MiB: eight segments
	putRandom(t, ch, 0, total)
	full, fullBytes := segmentBytes(t, o.DataDir)
	if full < 6 {
		t.Fatalf("%d segments for 8 MiB of events with 1 MiB segments", full)
	}

	for taken := 0; taken < total/2; {
		taken += len(fileTake(t, ch, 100))
	}
	await.True(t, "segments below the floor to be released", func() bool {
		n, _ := segmentBytes(t, o.DataDir)
		return n <= full/2+1
	})

	// A restart delivers exactly the second half.
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	ch = openFile(t, o)
	var got []int
	for len(got) < total/2 {
		evs := fileTake(t, ch, 100)
		if len(evs) == 0 {
			break
		}
		got = append(got, ids(evs)...)
	}
	if !slices.Equal(got, span(total/2, total)) {
		t.Fatalf("after reclaiming and restarting: %d events (%v...), want %d..%d", len(got), got[:min(5, len(got))], total/2, total-1)
	}
	await.True(t, "a drained log to shrink to about one segment", func() bool {
		_, b := segmentBytes(t, o.DataDir)
		return b <= 2<<20
	})
	// The size above can be reached before the reopened channel's first
	// release, which is what is timed.
	await.True(t, "a release to be timed", func() bool { return ch.MaxReclaimStall() > 0 })
	t.Logf("segments: %d (%d bytes) full, longest release %v", full, fullBytes, ch.MaxReclaimStall())
	if _, err := os.Stat(filepath.Join(o.DataDir, "log-id")); err != nil {
		t.Errorf("log id gone: %v", err)
	}
}

// tailName is the data log's tail segment: the one file with a 20-digit
// name in dir itself (sealed ones are in dir/sealed).
func tailName(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var tails []string
	for _, e := range ents {
		if len(e.Name()) == 20 {
			tails = append(tails, e.Name())
		}
	}
	if len(tails) != 1 {
		t.Fatalf("tail segments in %s: %v, want one", dir, tails)
	}
	return tails[0]
}

func TestFileReclaimReleasesSealedSegmentsAndLeavesTheTailToFill(t *testing.T) {
	o := reclaimOptions(t)
	ch := openFile(t, o)
	defer ch.Close()
	putRandom(t, ch, 0, 700) // about 2.8 MiB: two sealed segments and a tail
	if n, _ := segmentBytes(t, o.DataDir); n < 3 {
		t.Fatalf("%d segments, want sealed ones and a tail", n)
	}
	tail := tailName(t, o.DataDir)
	if got := drainIDs(t, ch); !slices.Equal(got, span(0, 700)) {
		t.Fatalf("drained %d events, want 0..699", len(got))
	}
	await.True(t, "the consumed sealed segments to be released", func() bool {
		n, _ := segmentBytes(t, o.DataDir)
		return n == 1
	})
	// Rolling the consumed tail early would sync the tail and the manifest
	// under the writer's lock for at most one segment of disk: ten more
	// reclaim passes, with everything consumed, leave it alone.
	rounds := ch.ReclaimRounds()
	await.Never(t, "reclaim rolling the consumed tail",
		func() bool { return tailName(t, o.DataDir) != tail },
		func() bool { return ch.ReclaimRounds() >= rounds+10 })
	putRandom(t, ch, 700, 800)
	if got := tailName(t, o.DataDir); got != tail {
		t.Fatalf("the next puts went to %s, not to the tail %s", got, tail)
	}
	if got := drainIDs(t, ch); !slices.Equal(got, span(700, 800)) {
		t.Fatalf("drained %v, want 700..799", got)
	}
}
