package channel

import (
	"time"

	"github.com/flumed/flumed/internal/counter"
)

// FileCommitStats are the file channel's group-commit histograms, for
// monitoring (the agent exports them to Prometheus): how long its syncs
// take, and how many commits each one answers. They are observed by the
// commit loops and read by anyone.
type FileCommitStats struct {
	// LogSyncSeconds is each fsync of the data log: per put group with
	// fsyncPerTransaction, per fsyncInterval otherwise.
	LogSyncSeconds *counter.Histogram
	// CheckpointSyncSeconds is each synced write of the ack state: what a
	// take group waits for.
	CheckpointSyncSeconds *counter.Histogram
	// PutGroup and TakeGroup are the commits answered by one log append or
	// one checkpoint write.
	PutGroup, TakeGroup *counter.Histogram
}

// syncBounds span a page-cache sync (tens of µs) to a stalled disk (seconds).
var syncBounds = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// groupBounds are commits per group, up to the loops' queue of 256.
var groupBounds = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}

func newFileCommitStats() FileCommitStats {
	return FileCommitStats{
		LogSyncSeconds:        counter.NewHistogram(syncBounds...),
		CheckpointSyncSeconds: counter.NewHistogram(syncBounds...),
		PutGroup:              counter.NewHistogram(groupBounds...),
		TakeGroup:             counter.NewHistogram(groupBounds...),
	}
}

// CommitStats returns the channel's commit histograms.
func (f *File) CommitStats() FileCommitStats { return f.stats }

func secondsSince(t time.Time) float64 { return time.Since(t).Seconds() }
