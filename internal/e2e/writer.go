package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Writer is the application of the exercise: it appends numbered lines
// (EventBody, from 1) to a log file, PerTick lines every Every, each tick in
// one write of whole lines, so a tailer never sees half a line. It remembers
// when each line was written.
type Writer struct {
	Path    string
	Every   time.Duration
	PerTick int

	mu     sync.Mutex
	f      *os.File
	times  []time.Time // times[seq-1]: when line seq was written
	paused bool
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Open creates or opens the log for appending.
func (w *Writer) Open() error {
	f, err := os.OpenFile(w.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("writer: %w", err)
	}
	w.f = f
	return nil
}

// Start appends in the background until Stop.
func (w *Writer) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go func() {
		defer close(w.done)
		t := time.NewTicker(w.Every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			w.mu.Lock()
			paused := w.paused
			w.mu.Unlock()
			if paused {
				continue
			}
			if err := w.Write(w.PerTick); err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
				return
			}
		}
	}()
}

// Write appends n lines now, in one write.
func (w *Writer) Write(n int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(EventBody(len(w.times) + i))
		b.WriteByte('\n')
	}
	if _, err := w.f.WriteString(b.String()); err != nil {
		return fmt.Errorf("writer: %w", err)
	}
	now := time.Now()
	for range n {
		w.times = append(w.times, now)
	}
	return nil
}

// Pause stops the background appends until Resume.
func (w *Writer) Pause() {
	w.mu.Lock()
	w.paused = true
	w.mu.Unlock()
}

// Resume restarts the background appends.
func (w *Writer) Resume() {
	w.mu.Lock()
	w.paused = false
	w.mu.Unlock()
}

// Stop ends the background appends and closes the file; it returns the first
// write error.
func (w *Writer) Stop() error {
	if w.cancel != nil {
		w.cancel()
		<-w.done
		w.cancel = nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		if err := w.f.Close(); err != nil && w.err == nil {
			w.err = err
		}
		w.f = nil
	}
	return w.err
}

// Written is the number of lines written so far (the last seq).
func (w *Writer) Written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.times)
}

// WrittenAt is when line seq was written (zero if not yet).
func (w *Writer) WrittenAt(seq int) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq < 1 || seq > len(w.times) {
		return time.Time{}
	}
	return w.times[seq-1]
}
