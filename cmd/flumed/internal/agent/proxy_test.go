package agent

// The proxy a source's channel processor holds keeps the powers of the
// channel behind it: a file channel that syncs every take commit still says
// so through the proxy, and CommitAll through the proxy is the channel's own
// group commit, not one Commit per transaction. Before the channel opens the
// proxy has no powers and every transaction fails.

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/flumed/flumed/channel"
)

// groupChannel is a memory channel with group commits, counting them.
type groupChannel struct {
	*channel.Memory
	groups [][]channel.Txn
}

func (g *groupChannel) SyncsTakeCommits() bool { return true }

func (g *groupChannel) CommitAll(txns []channel.Txn) []error {
	g.groups = append(g.groups, txns)
	return channel.CommitAll(g.Memory, txns)
}

func putTake(t *testing.T, ch channel.Channel, n int) []channel.Txn {
	t.Helper()
	put := ch.Begin()
	for range n {
		if err := put.Put(channel.Event{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := put.Commit(); err != nil {
		t.Fatal(err)
	}
	txns := make([]channel.Txn, n)
	for i := range txns {
		txns[i] = ch.Begin()
		if evs, err := txns[i].Take(1); err != nil || len(evs) != 1 {
			t.Fatalf("take %d: %d events, %v", i, len(evs), err)
		}
	}
	return txns
}

func TestTheProxyKeepsTheGroupCommitOfTheChannelBehindIt(t *testing.T) {
	t.Run("a channel with group commits: the proxy forwards both powers", func(t *testing.T) {
		mem := channel.NewMemory("c1", channel.MemoryOptions{Capacity: 10, TransactionCapacity: 10})
		defer mem.Close()
		g := &groupChannel{Memory: mem}
		p := newProxy("c1")
		p.set(g)
		if !channel.SyncsTakeCommits(p) {
			t.Fatal("SyncsTakeCommits through the proxy is false: the proxy hides it")
		}
		txns := putTake(t, p, 3)
		for i, err := range channel.CommitAll(p, txns) {
			if err != nil {
				t.Fatalf("transaction %d: %v", i, err)
			}
		}
		if len(g.groups) != 1 || len(g.groups[0]) != 3 {
			t.Fatalf("the channel saw %d group commits, want one of all 3 transactions: the proxy committed them one by one", len(g.groups))
		}
		if size := mem.Stats().Size; size != 0 {
			t.Fatalf("size %d after the group commit, want 0", size)
		}
	})

	t.Run("a file channel syncing every commit still says so through the proxy", func(t *testing.T) {
		for _, perTxn := range []bool{true, false} {
			dir := t.TempDir()
			o := channel.DefaultFileOptions()
			o.CheckpointDir, o.DataDir = filepath.Join(dir, "checkpoint"), filepath.Join(dir, "data")
			o.MinimumRequiredSpace = -1
			o.FsyncPerTransaction = perTxn
			f, err := channel.OpenFile("c1", o, nil)
			if err != nil {
				t.Fatal(err)
			}
			p := newProxy("c1")
			p.set(f)
			if got := channel.SyncsTakeCommits(p); got != perTxn {
				t.Errorf("fsyncPerTransaction %v: SyncsTakeCommits through the proxy = %v", perTxn, got)
			}
			for i, err := range channel.CommitAll(p, putTake(t, p, 3)) {
				if err != nil {
					t.Fatalf("transaction %d: %v", i, err)
				}
			}
			if size := f.Stats().Size; size != 0 {
				t.Errorf("size %d after CommitAll through the proxy, want 0", size)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("before the channel opens: no powers, and commits fail", func(t *testing.T) {
		p := newProxy("c1")
		if channel.SyncsTakeCommits(p) {
			t.Fatal("a proxy not yet open claims to sync take commits")
		}
		errs := channel.CommitAll(p, []channel.Txn{p.Begin()})
		if !errors.Is(errs[0], channel.ErrClosed) {
			t.Fatalf("CommitAll before open = %v, want ErrClosed", errs[0])
		}
	})
}
