package channel_test

// The file channel's commit histograms count what the commit loops did:
// with fsyncPerTransaction every put group is one data log sync and every
// take group one checkpoint write, and the group sizes add up to the
// commits.

import (
	"testing"

	"github.com/flumed/flumed/channel"
)

func TestFileCommitStatsCountSyncsAndGroups(t *testing.T) {
	f := openFile(t, fileOptions(t.TempDir()))
	defer f.Close()
	for range 5 {
		tx := f.Begin()
		if err := tx.Put(channel.Event{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		tx := f.Begin()
		if got, err := tx.Take(1); err != nil || len(got) != 1 {
			t.Fatalf("take: %d, %v", len(got), err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	st := f.CommitStats()
	_, _, syncs, _ := st.LogSyncSeconds.Snapshot()
	_, _, ckpts, _ := st.CheckpointSyncSeconds.Snapshot()
	_, _, putGroups, puts := st.PutGroup.Snapshot()
	_, _, takeGroups, takes := st.TakeGroup.Snapshot()
	// One goroutine committing: no grouping, one sync per commit.
	if syncs != 5 || putGroups != 5 || puts != 5 || ckpts != 5 || takeGroups != 5 || takes != 5 {
		t.Fatalf("log syncs %d, put groups %d (%v commits), checkpoint writes %d, take groups %d (%v commits)",
			syncs, putGroups, puts, ckpts, takeGroups, takes)
	}
}
