// Package logthrottle logs a repeated message at most once per interval,
// with a count of what it held back: a full channel makes every put fail,
// possibly thousands of times a second, and the log must say so without
// flooding. It is shared by package source and its subpackages; it must
// never drop the first occurrence of a message.
package logthrottle

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultEvery is how often one repeated failure is logged at most. A full
// channel makes every put fail, possibly thousands of times a second; one line
// every ten seconds with a count says the same without flooding the log.
const DefaultEvery = 10 * time.Second

// Log logs a repeated message at most once per interval per key,
// adding how many occurrences were suppressed since the last line. It is safe
// for concurrent use.
type Log struct {
	log   *slog.Logger
	every time.Duration

	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

// New returns a Log that writes to log at most once per every per key.
func New(log *slog.Logger, every time.Duration) *Log {
	return &Log{
		log:        log,
		every:      every,
		last:       make(map[string]time.Time),
		suppressed: make(map[string]int),
	}
}

// Log writes msg at level unless the same key was logged less than the
// interval ago, in which case it only counts it.
func (t *Log) Log(level slog.Level, key, msg string, args ...any) {
	t.mu.Lock()
	now := time.Now()
	if last, ok := t.last[key]; ok && now.Sub(last) < t.every {
		t.suppressed[key]++
		t.mu.Unlock()
		return
	}
	n := t.suppressed[key]
	t.last[key] = now
	delete(t.suppressed, key)
	t.mu.Unlock()
	if n > 0 {
		args = append(args, slog.Int("suppressed", n))
	}
	t.log.Log(context.Background(), level, msg, args...)
}

// Warn is Log at warning level.
func (t *Log) Warn(key, msg string, args ...any) {
	t.Log(slog.LevelWarn, key, msg, args...)
}

// Error is Log at error level.
func (t *Log) Error(key, msg string, args ...any) {
	t.Log(slog.LevelError, key, msg, args...)
}
