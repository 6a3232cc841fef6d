package channel_test

// A file channel reopened on a backlog reads it from the data log, ahead of
// its takers, in a goroutine of its own: what it hands out must be exactly
// the committed events, once each, in order, whatever the takers do meanwhile
// (roll back, take odd sizes, while producers keep committing), and however
// far the backlog exceeds what the read-ahead may hold.

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/flumed/flumed/channel"
)

// bigEv is event i: 40 KiB that do not compress, so that records take their
// size on disk and in the tail cache.
func bigEv(i int) channel.Event {
	body := make([]byte, 40<<10)
	rand.NewChaCha8([32]byte{byte(i), byte(i >> 8)}).Read(body)
	copy(body, fmt.Sprintf("%08d", i))
	return channel.Event{Headers: map[string]string{"i": strconv.Itoa(i)}, Body: body}
}

func evIndex(t *testing.T, e channel.Event) int {
	t.Helper()
	i, err := strconv.Atoi(e.Headers["i"])
	if err != nil || !strings.HasPrefix(string(e.Body), fmt.Sprintf("%08d", i)) {
		t.Fatalf("event with headers %v and body %.12q is not one the test put", e.Headers, e.Body)
	}
	return i
}

func TestFileReadAheadDeliversABacklogOnceInOrder(t *testing.T) {
	o := fileOptions(t.TempDir())
	o.TransactionCapacity = 10
	ch := openFile(t, o)
	const backlog = 300 // 300 records of 40 KiB: three times the read-ahead bound
	for i := range backlog {
		filePut(t, ch, bigEv(i))
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	ch = openFile(t, o)
	defer ch.Close()

	next, produced := 0, backlog
	for round := 0; next < produced || round < 40; round++ {
		tx := ch.Begin()
		got, err := tx.Take(1 + round%7)
		if err != nil {
			t.Fatalf("take: %v", err)
		}
		if round%5 == 4 {
			// Rolled back: the same events come first next time.
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		for _, e := range got {
			if i := evIndex(t, e); i != next {
				t.Fatalf("round %d: took event %d, want %d", round, i, next)
			}
			next++
		}
		if err := tx.Commit(); err != nil {
			t.Fatalf("commit take: %v", err)
		}
		if round < 40 {
			// Producers keep committing while the backlog drains.
			filePut(t, ch, bigEv(produced))
			produced++
		}
	}
	if next != produced {
		t.Fatalf("took %d events, want %d", next, produced)
	}
	if left := fileTake(t, ch, 10); len(left) != 0 {
		t.Fatalf("%d events left after the backlog drained", len(left))
	}
}

func TestFileReadAheadStopsWithTheChannel(t *testing.T) {
	o := fileOptions(t.TempDir())
	ch := openFile(t, o)
	for i := range 200 {
		filePut(t, ch, bigEv(i))
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopen, take a little (the read-ahead starts and fills up), close with
	// the rest unread, reopen: the rest is still there, and TestMain's leak
	// check proves the goroutine ended with the channel.
	ch = openFile(t, o)
	got := fileTake(t, ch, 3)
	if len(got) != 3 || evIndex(t, got[0]) != 0 {
		t.Fatalf("took %d events starting at %v", len(got), got)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	ch = openFile(t, o)
	defer ch.Close()
	rest := 0
	for {
		got := fileTake(t, ch, 50)
		if len(got) == 0 {
			break
		}
		for _, e := range got {
			if i := evIndex(t, e); i != 3+rest {
				t.Fatalf("after reopening took event %d, want %d", i, 3+rest)
			}
			rest++
		}
	}
	if rest != 197 {
		t.Fatalf("after reopening took %d events, want 197", rest)
	}
}

func TestFileReadAheadSkippedByTheTailCacheIsNotDelivered(t *testing.T) {
	// Records committed after the reopen are both in the tail cache and in
	// the read-ahead's queue; the taker gets them from the cache, then falls
	// behind the cache again and reads the log: the queue's copies are stale
	// and must not be handed out for later records.
	o := fileOptions(t.TempDir())
	o.TransactionCapacity = 10
	o.SegmentSize = 16 << 20
	ch := openFile(t, o)
	for i := range 10 {
		filePut(t, ch, bigEv(i))
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	ch = openFile(t, o)
	defer ch.Close()
	n := 10
	for ; n < 13; n++ {
		filePut(t, ch, bigEv(n)) // in the tail cache and, soon, read ahead
	}
	next := 0
	expect := func(got []channel.Event) {
		t.Helper()
		for _, e := range got {
			if i := evIndex(t, e); i != next {
				t.Fatalf("took event %d, want %d", i, next)
			}
			next++
		}
	}
	expect(fileTake(t, ch, 1)) // from the log: the read-ahead starts
	for next < 13 {
		expect(fileTake(t, ch, 10)) // 1..9 read ahead, 10..12 from the cache
	}
	// More than the tail cache holds (4 MiB): the oldest new records drop
	// out of it before the taker gets to them.
	for ; n < 13+150; n++ {
		filePut(t, ch, bigEv(n))
	}
	for {
		got := fileTake(t, ch, 10)
		if len(got) == 0 {
			break
		}
		expect(got)
	}
	if next != n {
		t.Fatalf("took %d events, want %d", next, n)
	}
}

func TestFileMemoryStaysBoundedWithCompressibleEvents(t *testing.T) {
	// Compressed records must be kept at their compressed size: the tail
	// cache holds up to 4 MiB of records, and a record that kept its
	// worst-case compression buffer (~60 KiB for a 100-event batch whose
	// body compresses to a few hundred bytes) made that 4 MiB of records
	// hold hundreds of MiB of heap.
	o := fileOptions(t.TempDir())
	o.TransactionCapacity = 100
	o.Compress = true
	ch := openFile(t, o)
	defer ch.Close()
	batch := make([]channel.Event, 100)
	for i := range batch {
		batch[i] = channel.Event{Headers: map[string]string{"host": "web-1"}, Body: []byte(strings.Repeat("GET /index.html 200 ", 25))}
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 1500 {
		filePut(t, ch, batch...)
		if got := fileTake(t, ch, 100); len(got) != 100 {
			t.Fatalf("took %d events, want 100", len(got))
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 32<<20 {
		t.Fatalf("heap in use grew by %d MiB over 150,000 events that were all taken; want under 32 MiB", grown>>20)
	}
}
