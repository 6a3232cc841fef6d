package source

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// defaultLogEvery is how often one repeated failure is logged at most. A full
// channel makes every put fail, possibly thousands of times a second; one line
// every ten seconds with a count says the same without flooding the log.
const defaultLogEvery = 10 * time.Second

// throttledLog logs a repeated message at most once per interval per key,
// adding how many occurrences were suppressed since the last line. It is safe
// for concurrent use.
type throttledLog struct {
	log   *slog.Logger
	every time.Duration

	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

func newThrottledLog(log *slog.Logger, every time.Duration) *throttledLog {
	return &throttledLog{
		log:        log,
		every:      every,
		last:       make(map[string]time.Time),
		suppressed: make(map[string]int),
	}
}

// Log writes msg at level unless the same key was logged less than the
// interval ago, in which case it only counts it.
func (t *throttledLog) Log(level slog.Level, key, msg string, args ...any) {
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
func (t *throttledLog) Warn(key, msg string, args ...any) {
	t.Log(slog.LevelWarn, key, msg, args...)
}

// Error is Log at error level.
func (t *throttledLog) Error(key, msg string, args ...any) {
	t.Log(slog.LevelError, key, msg, args...)
}
