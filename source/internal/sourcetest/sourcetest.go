// Package sourcetest is what the tests of package source and its
// subpackages share: a recording BatchPutter that can refuse like a full
// channel, a poll loop standing in for the runner, a captured log,
// configuration snippets, and the checks that numbered lines arrived
// exactly once and in order.
//
// It is imported by tests only and must never be imported by production
// code; it must never import package source (whose own tests use it).
package sourcetest

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/flumed/flumed/internal/config"
)

// Log captures log output for assertions. It is safe for concurrent use.
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Log) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Logger returns a text logger at debug level writing into l.
func (l *Log) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// ShowOnFailure logs what l captured if t fails.
func (l *Log) ShowOnFailure(t testing.TB) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("source log:\n%s", l)
		}
	})
}

// DiscardLog is a logger that writes nowhere.
func DiscardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Props turns "key = value" lines into a map for config.FromMap, so tests
// read like the .properties files they stand for.
func Props(t testing.TB, text string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("bad property line %q", line)
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return m
}

// Problems returns c's errors as strings.
func Problems(c *config.Context) []string {
	var out []string
	for _, p := range c.Problems().Errors() {
		out = append(out, p.String())
	}
	return out
}
