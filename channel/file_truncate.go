package channel

import (
	"time"
)

// The maintenance goroutine: space reclaim and the backup checkpoint, both
// off the hot path.
//
// Reclaim gives back segments whose records are all below the durable floor,
// through the log's Release, every ReclaimInterval and never per commit.
// Release copies nothing: it records the new front in the wal's manifest and
// deletes whole sealed segments outside the lock the writer appends under
// (wal/FORMAT.md). Reclaim still works a segment at a time, pausing between them,
// so that a large backlog drained at once is given back in small steps:
//
//   - when the floor has reached the end of the log (the sinks keep up),
//     every sealed segment is released in one call; the tail stays until it
//     fills (at most one segment of disk), because releasing it would roll
//     it early, syncs under the lock the writer appends under;
//   - otherwise the oldest segment is released, then the next, and so on;
//   - nothing happens while the floor is still in the oldest segment.
//
// The longest call is recorded (MaxReclaimStall): it bounds the stall a
// commit can suffer from reclaiming.
//
// It owns nothing but its timers; it reads the durable ack state through
// file_state.go and the log under f.walMu (read side: the log serializes
// Release itself).

// releasePause is the pause between two segment releases of one reclaim.
const releasePause = time.Millisecond

func (f *File) maintain() {
	defer f.wg.Done()
	reclaim := time.NewTicker(f.opts.ReclaimInterval)
	defer reclaim.Stop()
	var backup <-chan time.Time
	if f.backup != nil {
		t := time.NewTicker(f.opts.CheckpointInterval)
		defer t.Stop()
		backup = t.C
	}
	for {
		select {
		case <-f.stop:
			return
		case <-reclaim.C:
			f.reclaim()
			f.reclaimRounds.Add(1)
		case <-backup:
			if err := f.writeBackup(); err != nil {
				f.log.Warn("file channel: backup checkpoint failed", "err", err)
			}
		}
	}
}

// reclaim releases what lies wholly below the durable floor, one segment at
// a time.
func (f *File) reclaim() {
	for {
		select {
		case <-f.stop:
			return
		default:
		}
		more, err := f.releaseOnce()
		if err != nil {
			f.log.Warn("file channel: release segments", "err", err)
			return
		}
		if !more {
			return
		}
		time.Sleep(releasePause)
	}
}

// releaseOnce makes one Release call if there is a whole segment to give
// back, and reports whether it did.
func (f *File) releaseOnce() (bool, error) {
	floor := f.syncedFloorIndex()
	f.walMu.RLock()
	defer f.walMu.RUnlock()
	if f.wal == nil {
		return false, nil
	}
	segs := f.wal.Segments()
	if len(segs) < 2 || floor < segs[1].First {
		return false, nil // the floor is still in the oldest segment
	}
	upTo := segs[1].First // the oldest segment only
	if floor > f.wal.LastIndex() {
		// All consumed: every sealed segment goes. The tail stays until it
		// fills and rolls: releasing it too would roll it now, a sync of
		// the tail and of the manifest under the lock puts append under,
		// for at most one segment of disk.
		upTo = segs[len(segs)-1].First
	}
	began := time.Now()
	err := f.wal.Release(upTo)
	if us := time.Since(began).Microseconds(); us > f.maxReclaimMicros.Load() {
		f.maxReclaimMicros.Store(us)
	}
	return err == nil && upTo < segs[len(segs)-1].First, err
}

// writeBackup copies the durable ack state to the backup checkpoint, when it
// changed since the last copy.
func (f *File) writeBackup() error {
	c, gen := f.backupCandidate(time.Now().UnixMilli())
	if c == nil {
		return nil
	}
	if err := f.backup.write(c, true); err != nil {
		f.backupErrors.Add(1)
		return err
	}
	f.backedUpTo(gen)
	return nil
}

// MaxReclaimStall is the longest a single release of log space has held the
// data log, for benchmarks and monitoring: the worst stall a commit has
// suffered from reclaiming space.
func (f *File) MaxReclaimStall() time.Duration {
	return time.Duration(f.maxReclaimMicros.Load()) * time.Microsecond
}
