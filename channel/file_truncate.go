package channel

import (
	"time"
)

// The maintenance goroutine: space reclaim and the backup checkpoint, both
// off the hot path.
//
// Reclaim frees segments whose records are all below the durable floor. It
// runs every ReclaimInterval, not per commit, and asks the log to drop only
// whole segments: the log may have to rewrite the part of a segment it keeps,
// so the floor given is rounded down by the log to where that copies little.
// The time each reclaim takes is recorded (maxReclaimMicros) because it holds
// the log's lock, and so can stall a commit.
//
// It owns nothing but its timers; it reads the durable ack state under f.mu
// and calls the log's Reclaim, which is safe beside appends and reads.

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
		case <-backup:
			if err := f.writeBackup(); err != nil {
				f.log.Warn("file channel: backup checkpoint failed", "err", err)
			}
		}
	}
}

// reclaim drops the segments wholly below the durable floor.
func (f *File) reclaim() {
	f.mu.Lock()
	floor := f.synced.FloorPos.Index
	f.mu.Unlock()
	f.walMu.RLock()
	defer f.walMu.RUnlock()
	if f.wal == nil || floor <= f.wal.FirstIndex() {
		return
	}
	began := time.Now()
	err := f.wal.Release(floor)
	took := time.Since(began)
	if us := took.Microseconds(); us > f.maxReclaimMicros.Load() {
		f.maxReclaimMicros.Store(us)
	}
	if err != nil {
		f.log.Warn("file channel: reclaim segments", "err", err, "below", floor)
		return
	}
	f.log.Debug("file channel: reclaimed", "below", floor, "firstIndex", f.wal.FirstIndex(), "took", took)
}

// writeBackup copies the durable ack state to the backup checkpoint, when it
// changed since the last copy.
func (f *File) writeBackup() error {
	f.mu.Lock()
	c := &checkpoint{ackState: f.synced.clone(), LogID: f.logID, WrittenMs: time.Now().UnixMilli()}
	gen := f.syncedGen
	same := gen == f.backedUp
	f.mu.Unlock()
	if same {
		return nil
	}
	if err := f.backup.write(c, true); err != nil {
		f.backupErrors.Add(1)
		return err
	}
	f.mu.Lock()
	f.backedUp = gen
	f.mu.Unlock()
	return nil
}

// MaxReclaimStall is the longest a reclaim has held the data log's lock, for
// benchmarks and monitoring.
func (f *File) MaxReclaimStall() time.Duration {
	return time.Duration(f.maxReclaimMicros.Load()) * time.Microsecond
}
