package channel

import (
	"fmt"
	"sync"
	"time"

	"github.com/flumed/flumed/internal/fsutil"
)

// The disk floor (Flume's minimumRequiredSpace). Below it puts fail with
// ErrFull and a reason; takes, acks and checkpoints never look at it, so sinks
// keep draining and reclaiming space (Flume refuses them too, and wedges).
//
// statfs is cheap but not free, so the free space is cached and re-read every
// diskFloorRefresh or after diskFloorBytes written, whichever comes first;
// bytes written since the last reading count as used.
const (
	diskFloorRefresh = time.Second
	diskFloorBytes   = 64 << 20
)

type diskFloor struct {
	fs  fsutil.FS
	dir string
	min int64 // bytes that must stay free; < 0: no floor

	mu    sync.Mutex
	avail uint64    // from the last statfs
	at    time.Time // when it was read (zero: never)
	since int64     // bytes written since
	full  bool      // a write failed with ENOSPC: refuse until statfs shows room again
	err   error     // the last statfs error
}

func newDiskFloor(fsys fsutil.FS, dir string, min int64) *diskFloor {
	return &diskFloor{fs: fsys, dir: dir, min: min}
}

// refuse returns why n more bytes must not be written now, or "".
func (d *diskFloor) refuse(n int64) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.min < 0 && !d.full {
		return ""
	}
	if d.at.IsZero() || time.Since(d.at) >= diskFloorRefresh || d.since >= diskFloorBytes {
		d.refresh()
	}
	floor := max(d.min, minimumSpaceFloor)
	if d.err != nil {
		// Not knowing is not a reason to stop intake; the write itself will
		// fail with ENOSPC if the disk is really full.
		return ""
	}
	left := int64(d.avail) - d.since
	if d.full {
		if left >= floor+n {
			d.full = false
			return ""
		}
		return fmt.Sprintf("disk full: %d bytes free on %s, waiting for %d", max(left, 0), d.dir, floor+n)
	}
	if d.min >= 0 && left < d.min+n {
		return fmt.Sprintf("usable space on %s is %d bytes, below minimumRequiredSpace %d", d.dir, max(left, 0), d.min)
	}
	return ""
}

func (d *diskFloor) refresh() {
	sp, err := d.fs.Statfs(d.dir)
	d.at, d.since, d.err = time.Now(), 0, err
	if err == nil {
		d.avail = sp.Avail
	}
}

// wrote counts n bytes written since the last reading.
func (d *diskFloor) wrote(n int64) {
	d.mu.Lock()
	d.since += n
	d.mu.Unlock()
}

// markFull records an ENOSPC: puts are refused until statfs shows room.
func (d *diskFloor) markFull() {
	d.mu.Lock()
	d.full = true
	d.at = time.Time{} // read again at the next put
	d.mu.Unlock()
}
