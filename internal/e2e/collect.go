package e2e

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"
)

// RollReader follows a file_roll sink's directory: every complete line of
// every file is one event body, recorded in a Ledger under Collector when it
// is first seen. A line without its newline yet is left for the next poll,
// so a write in progress is never read half.
type RollReader struct {
	Dir       string
	Collector string
	Ledger    *Ledger
	Parse     func(line string) (int, bool) // ParseEvent or ParseDecimal

	mu   sync.Mutex
	offs map[string]int64 // file → bytes consumed (whole lines only)
}

// Poll reads whatever was appended since the last Poll.
func (r *RollReader) Poll() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.offs == nil {
		r.offs = map[string]int64{}
	}
	ents, err := os.ReadDir(r.Dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	// file_roll names files <startMillis>-<n>: in name order is in write
	// order within one run, which keeps Arrival order meaningful.
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	now := time.Now()
	for _, name := range names {
		path := filepath.Join(r.Dir, name)
		if err := r.readFile(path, now); err != nil {
			return err
		}
	}
	return nil
}

func (r *RollReader) readFile(path string, now time.Time) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	off := r.offs[path]
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	end := bytes.LastIndexByte(b, '\n')
	if end < 0 {
		return nil
	}
	for _, line := range bytes.Split(b[:end], []byte{'\n'}) {
		if seq, ok := r.Parse(string(line)); ok {
			r.Ledger.Record(r.Collector, seq, now)
		} else {
			r.Ledger.Garbage(r.Collector, string(line))
		}
	}
	r.offs[path] = off + int64(end) + 1
	return nil
}

// Run polls every interval until ctx ends. Errors are retried at the next
// poll (a file may vanish between listing and opening); the last one is
// returned when ctx ends.
func (r *RollReader) Run(ctx context.Context, interval time.Duration) error {
	var last error
	for {
		if err := r.Poll(); err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(interval):
		}
	}
}

// loggerEvent finds the ASCII column of a logger sink line: Flume's dump puts
// it after the hex bytes, right before " }". Numbered bodies are shorter than
// 16 bytes, so the column holds the whole body.
var loggerEvent = regexp.MustCompile(`Event: \{ headers:\{.*\} body: (?:[0-9A-F]{2} )+\s*(\S+) \}`)

// LoggerLine returns the body in a logger sink's "Event: { … }" line, for a
// body of printable characters without spaces of at most 16 bytes.
func LoggerLine(line string) (string, bool) {
	m := loggerEvent.FindStringSubmatch(line)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// LoggerHook returns a ProcOptions.OnLine hook recording the logger sink's
// events of a collector in l. Stdout lines that are not events are ignored
// (the log goes to stderr).
func LoggerHook(l *Ledger, collector string, parse func(string) (int, bool)) func(stream, line string) {
	return func(stream, line string) {
		if stream != "stdout" {
			return
		}
		body, ok := LoggerLine(line)
		if !ok {
			return
		}
		if seq, ok := parse(body); ok {
			l.Record(collector, seq, time.Now())
		} else {
			l.Garbage(collector, line)
		}
	}
}
