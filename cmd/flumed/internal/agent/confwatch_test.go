package agent

// WatchConfig calls Changed when the files' content differs from what was
// loaded (a change made before the watch began included), not when a file
// is rewritten with the same content, and logs an unreadable file as an
// error once, without calling Changed.

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
)

func TestWatchConfigSeesContentChangesOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.properties")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path+".tmp", []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	write("a1.channels = c1\n")
	loaded, err := ConfigDigest([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	write("a1.channels = c2\n") // before the watch begins
	var changes atomic.Int64
	logs := &logBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		WatchConfig(ctx, WatchOptions{Files: []string{path}, Interval: time.Hour, Loaded: loaded,
			Log: slog.New(slog.NewTextHandler(logs, nil)), Changed: func() { changes.Add(1) }})
	}()
	defer func() { cancel(); <-done }()
	await.True(t, "the change made before the watch", func() bool { return changes.Load() == 1 })

	write("a1.channels = c3\n")
	await.True(t, "a change seen through fsnotify", func() bool { return changes.Load() == 2 })

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	await.True(t, "the deletion logged", func() bool { return strings.Contains(logs.String(), "configuration file unreadable") })
	write("a1.channels = c3\n") // back, as it was: nothing to reload
	await.True(t, "the file readable again", func() bool { return strings.Contains(logs.String(), "readable again") })
	write("a1.channels = c4\n")
	await.True(t, "the next change", func() bool { return changes.Load() == 3 })
	if n := strings.Count(logs.String(), "configuration file unreadable"); n != 1 {
		t.Fatalf("the deletion was logged %d times", n)
	}
}
