package taildir

import (
	"errors"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// dirWatcher turns fsnotify's directory events into "list this directory
// again" flags for the taildir source. It owns one goroutine, which only
// records flags; all file work stays on the source's goroutine. Writes are
// not reported: tracked files are read on every poll anyway, and a watch
// queue that overflows (or a file system that sends no events, such as NFS)
// only costs latency because the source also rescans periodically.
type dirWatcher struct {
	w    *fsnotify.Watcher
	log  *slog.Logger
	done chan struct{}

	mu      sync.Mutex
	dirty   map[string]bool
	all     bool            // the queue overflowed: list everything
	watched map[string]bool // directories with a watch
}

func newDirWatcher(log *slog.Logger) (*dirWatcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	dw := &dirWatcher{w: w, log: log, done: make(chan struct{}),
		dirty: make(map[string]bool), watched: make(map[string]bool)}
	go dw.run()
	return dw, nil
}

// watch adds a watch on dir unless it has one. It reports whether dir is
// watched; a directory that does not exist yet is retried by the caller.
func (dw *dirWatcher) watch(dir string) bool {
	dw.mu.Lock()
	ok := dw.watched[dir]
	dw.mu.Unlock()
	if ok {
		return true
	}
	if err := dw.w.Add(dir); err != nil {
		return false
	}
	dw.mu.Lock()
	dw.watched[dir] = true
	dw.mu.Unlock()
	return true
}

func (dw *dirWatcher) run() {
	defer close(dw.done)
	for {
		select {
		case ev, ok := <-dw.w.Events:
			if !ok {
				return
			}
			if !ev.Has(fsnotify.Create | fsnotify.Remove | fsnotify.Rename) {
				continue
			}
			dw.mu.Lock()
			if dw.watched[ev.Name] {
				// The watched directory itself went away: its watch is gone
				// too; list (and watch) everything again.
				delete(dw.watched, ev.Name)
				dw.all = true
			} else {
				dw.dirty[filepath.Dir(ev.Name)] = true
			}
			dw.mu.Unlock()
		case err, ok := <-dw.w.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				dw.log.Warn("file watch queue overflowed; rescanning every directory")
			} else {
				dw.log.Warn("file watch error; rescanning every directory", slog.Any("err", err))
			}
			dw.mu.Lock()
			dw.all = true
			dw.mu.Unlock()
		}
	}
}

// take returns and clears the directories to list again; all means every one.
func (dw *dirWatcher) take() (dirs map[string]bool, all bool) {
	dw.mu.Lock()
	defer dw.mu.Unlock()
	if len(dw.dirty) == 0 && !dw.all {
		return nil, false
	}
	dirs, all = dw.dirty, dw.all
	dw.dirty, dw.all = make(map[string]bool), false
	return dirs, all
}

// close stops the watch and waits for the goroutine.
func (dw *dirWatcher) close() {
	dw.w.Close()
	<-dw.done
}
