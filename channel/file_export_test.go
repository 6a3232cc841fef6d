package channel

import "github.com/flumed/flumed/internal/clock"

// Crash abandons the channel the way SIGKILL would (see crash): tests restart
// from exactly what is on disk.
func (f *File) Crash() { f.crash() }

// SlotGeneration reads the generation of a checkpoint slot file.
func SlotGeneration(path string) (uint64, error) {
	b, err := readAtMost(path, checkpointHeader+maxCheckpointSize)
	if err != nil {
		return 0, err
	}
	c, err := decodeCheckpoint(b)
	if err != nil {
		return 0, err
	}
	return c.Generation, nil
}

// SetClock makes the keep-alive wait for capacity use c, a fake in tests,
// so that a test knows when a put waits and decides when keep-alive passes.
// Call it before the channel is used.
func (f *File) SetClock(c clock.Clock) { f.clock = c }

// ReclaimRounds counts the reclaimer's passes so far, so that a test can
// wait for more of them instead of sleeping.
func (f *File) ReclaimRounds() int64 { return f.reclaimRounds.Load() }

// WithImportSteps makes a Flume import call step at each of its steps
// ("read", "marked", "appended", "synced", "checkpointed", "imported",
// "noted", "moved", "aside", "done"), with records of about recordBytes and
// appends of about appendBytes (0: the defaults).
func WithImportSteps(o FileOptions, step func(string), recordBytes, appendBytes int) FileOptions {
	o.importTest = &importTesting{step: step, recordBytes: recordBytes, appendBytes: appendBytes}
	return o
}

// SlotOrigin reads the origin a checkpoint slot file carries.
func SlotOrigin(path string) (OriginID, bool, error) {
	b, err := readAtMost(path, checkpointHeader+maxCheckpointSize)
	if err != nil {
		return OriginID{}, false, err
	}
	c, err := decodeCheckpoint(b)
	if err != nil {
		return OriginID{}, false, err
	}
	return c.Origin, c.OriginDurable, nil
}

// SlotDedup reads the dedup table a checkpoint slot file carries: the
// origins it lists and the last log index whose records it includes.
func SlotDedup(path string) (int, uint64, error) {
	b, err := readAtMost(path, checkpointHeader+maxCheckpointSize)
	if err != nil {
		return 0, 0, err
	}
	c, err := decodeCheckpoint(b)
	if err != nil {
		return 0, 0, err
	}
	o, _, err := DecodeOrigins(c.Dedup, OriginsOptions{})
	if err != nil {
		return 0, 0, err
	}
	return o.Len(), c.DedupThrough, nil
}

// DedupReplayBound is dedupReplayBound, for the test that restart's replay
// stays bounded.
const DedupReplayBound = dedupReplayBound
