package agent

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultReloadInterval is how often the configuration files are polled
// for changes: Flume's PollingPropertiesFileConfigurationProvider's 30 s.
const DefaultReloadInterval = 30 * time.Second

// settle is how long the watcher waits after the last file system event
// before reading the files: an editor's save is several events (truncate,
// write, rename), and a half-written file would be read as broken.
const settle = 200 * time.Millisecond

// WatchOptions tune WatchConfig.
type WatchOptions struct {
	Files    []string      // the configuration files, in load order
	Interval time.Duration // the poll interval (default DefaultReloadInterval)
	Log      *slog.Logger
	// Loaded is ConfigDigest of the files taken before the running
	// configuration was read from them: a change made since, even before
	// the watcher starts, is seen. Empty: the files as WatchConfig first
	// reads them.
	Loaded string
	// Changed is called, from the watcher's goroutine, when the files'
	// contents differ from what they were when last read.
	Changed func()
}

// ConfigDigest is a digest of the files' contents, in order.
func ConfigDigest(files []string) (string, error) {
	return (&confWatch{o: WatchOptions{Files: files}}).digest()
}

// WatchConfig calls o.Changed when the configuration files change, until
// ctx ends. It watches the files' directories with fsnotify (so an editor
// replacing a file by rename is seen) and, as a fallback for file systems
// that send no events (NFS, some container mounts), reads them every
// Interval. Only a change of content counts: a touch, or a save of the same
// text, reloads nothing. A file that cannot be read (deleted while the agent
// runs) is logged as an error once, and the running configuration stays;
// when it is back, its content is compared as usual. It returns when ctx
// ends.
func WatchConfig(ctx context.Context, o WatchOptions) {
	if o.Interval <= 0 {
		o.Interval = DefaultReloadInterval
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	w := &confWatch{o: o, last: o.Loaded}
	if w.last == "" {
		w.last, _ = w.digest()
	}

	var events <-chan fsnotify.Event
	var errs <-chan error
	if fw, err := w.watchDirs(); err != nil {
		o.Log.Warn("config watch: no file system events; polling only", "err", err, "interval", o.Interval)
	} else {
		defer fw.Close()
		events, errs = fw.Events, fw.Errors
	}
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	w.check() // what changed before the watch began
	var settled <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			if w.concerns(ev.Name) {
				settled = time.After(settle)
			}
		case err := <-errs:
			o.Log.Warn("config watch", "err", err)
		case <-settled:
			settled = nil
			w.check()
		case <-tick.C:
			w.check()
		}
	}
}

// confWatch is the watcher's state, owned by WatchConfig's goroutine.
type confWatch struct {
	o       WatchOptions
	last    string // digest of the files when last read
	missing bool   // the last read failed (logged once)
}

func (w *confWatch) watchDirs() (*fsnotify.Watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, f := range w.o.Files {
		dir := filepath.Dir(f)
		if seen[dir] {
			continue
		}
		seen[dir] = true
		if err := fw.Add(dir); err != nil {
			fw.Close()
			return nil, fmt.Errorf("watch %s: %w", dir, err)
		}
	}
	return fw, nil
}

func (w *confWatch) concerns(name string) bool {
	for _, f := range w.o.Files {
		if filepath.Clean(name) == filepath.Clean(f) {
			return true
		}
	}
	return false
}

// digest hashes every file's content, in order.
func (w *confWatch) digest() (string, error) {
	h := sha256.New()
	for _, f := range w.o.Files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	return string(h.Sum(nil)), nil
}

func (w *confWatch) check() {
	d, err := w.digest()
	if err != nil {
		if !w.missing {
			w.missing = true
			w.o.Log.Error("configuration file unreadable; the running configuration stays", "err", err)
		}
		return
	}
	if w.missing {
		w.missing = false
		w.o.Log.Info("configuration file readable again")
	}
	if d == w.last {
		return
	}
	w.last = d
	w.o.Changed()
}
