// Package spooldir is Flume's spooling directory source: it reads each
// complete file dropped into a directory once, line by line, then renames,
// tracks or deletes it, resuming after a crash at the last committed line.
//
// It must never mark a file done before every line of it was accepted by the
// channel processor, never continue a saved position in a different file,
// and never stop the other files because one is bad (Flume stops the
// source). It must never import package source (whose registry imports it).
package spooldir

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/counter"
	"github.com/flumed/flumed/internal/fsutil"
	"github.com/flumed/flumed/source/sourceapi"
)

// Source is Flume's spooling directory source (FLUME.md §2.4): it reads
// every complete file dropped into spoolDir, line by line, and then renames
// it with fileSuffix, records it in trackerDir, or deletes it.
//
// Where Flume stops the whole source when a file changed after it was picked
// up, or cannot be decoded, flumed reports that file, leaves it where it is,
// remembers to skip it, and goes on with the others. The position in the
// current file is written atomically (temp file, fsync, rename, fsync the
// directory) after every committed batch, so a crash resumes at the last
// committed line; the file's identity (device, inode, size, mtime) is kept
// with it, so a resume never continues in a different file.
type Source struct {
	name string
	cfg  spoolConfig
	log  *slog.Logger
	fs   fsutil.FS // state, markers, renames and removals; tests inject faults here

	counters counter.Source

	mu      sync.Mutex
	running bool
	proc    sourceapi.BatchPutter
	lock    *fsutil.DirLock
	state   spoolState
	cur     *spoolCurrent // the file being read, nil between files
	queue   []spoolCandidate
	retry   time.Duration // the backoff after a refused batch (250 ms doubling to maxBackoff)
	stop    chan struct{}
}

var (
	_ sourceapi.Pollable   = (*Source)(nil)
	_ sourceapi.BatchSizer = (*Source)(nil)
	_ counter.Monitored    = (*Source)(nil)
)

type spoolConfig struct {
	spoolDir          string
	fileSuffix        string
	deleteImmediate   bool
	fileHeader        bool
	fileHeaderKey     string
	basenameHeader    bool
	basenameHeaderKey string
	include, ignore   *regexp.Regexp
	trackerDir        string
	trackerPolicy     bool // trackingPolicy=tracker_dir
	consumeOrder      string
	pollDelay         time.Duration
	recursive         bool
	maxBackoff        time.Duration
	batchSize         int
	charset           spoolCharset
	decodePolicy      int
	maxLineLength     int
}

var (
	spoolDir          = config.String("spoolDir", "", "the directory whose files are read").Required()
	fileSuffix        = config.String("fileSuffix", ".COMPLETED", "appended to a file's name once it is read")
	deletePolicy      = config.OneOf("deletePolicy", "never", []string{"never", "immediate"}, "immediate deletes a file once it is read")
	fileHeader        = config.Bool("fileHeader", false, "add the file's path as a header")
	fileHeaderKey     = config.String("fileHeaderKey", "file", "the header fileHeader sets")
	basenameHeader    = config.Bool("basenameHeader", false, "add the file's name as a header")
	basenameHeaderKey = config.String("basenameHeaderKey", "basename", "the header basenameHeader sets")
	includePattern    = config.String("includePattern", "^.*$", "only files whose name matches are read")
	ignorePattern     = config.String("ignorePattern", "^$", "files whose name matches are skipped")
	trackerDir        = config.String("trackerDir", ".flumespool", "where the reading state is kept, relative to spoolDir")
	trackingPolicy    = config.OneOf("trackingPolicy", "rename", []string{"rename", "tracker_dir"}, "mark a read file by renaming it, or in trackerDir")
	consumeOrder      = config.OneOf("consumeOrder", "oldest", []string{"oldest", "youngest", "random"}, "which file is read next")
	pollDelay         = config.Millis("pollDelay", 500*time.Millisecond, "how often the directory is listed")
	recursive         = config.Bool("recursiveDirectorySearch", false, "read the files of subdirectories too")
	maxBackoff        = config.Millis("maxBackoff", 4*time.Second, "the longest wait after the channel refused a batch")
	batchSize         = config.Int("batchSize", 100, "lines put in one transaction")
	inputCharset      = config.String("inputCharset", "UTF-8", "UTF-8, US-ASCII or ISO-8859-1")
	decodeErrorPolicy = config.OneOf("decodeErrorPolicy", "FAIL", []string{"FAIL", "REPLACE", "IGNORE"}, "what a byte the charset cannot decode does")
	deserializer      = config.String("deserializer", "LINE", "LINE only")
	maxLineLength     = config.Int("deserializer.maxLineLength", 2048, "a longer line is cut into events of this many characters")
	outputCharset     = config.String("deserializer.outputCharset", "UTF-8", "UTF-8 only")
)

// Spec declares the spooling directory source's keys (FLUME.md §2.4).
var Spec = &config.Spec{Type: "spooldir", Classes: []string{"org.apache.flume.source.SpoolDirectorySource"},
	Doc: "the LINE deserializer only, reading UTF-8, US-ASCII or ISO-8859-1; a batch the channel refuses is retried with backoff up to `maxBackoff`",
	Keys: []config.Decl{spoolDir, fileSuffix, deletePolicy, fileHeader, fileHeaderKey, basenameHeader, basenameHeaderKey,
		includePattern, ignorePattern, trackerDir, trackingPolicy, consumeOrder, pollDelay, recursive, maxBackoff, batchSize,
		inputCharset, decodeErrorPolicy, deserializer, maxLineLength, outputCharset,
		config.Ignore("bufferMaxLines", ""), config.Ignore("bufferMaxLineLength", ""), // deprecated in Flume, no effect there either
		sourceapi.ProcessorKeys}}

// New builds a spooling directory source from its context, checked against
// Spec.
func New(name string, c *config.Context, log *slog.Logger) (sourceapi.Source, error) {
	bad := len(c.Problems().Errors())
	cfg := spoolConfig{
		spoolDir:          spoolDir.Get(c),
		fileSuffix:        fileSuffix.Get(c),
		deleteImmediate:   deletePolicy.Get(c) == "immediate",
		fileHeader:        fileHeader.Get(c),
		fileHeaderKey:     fileHeaderKey.Get(c),
		basenameHeader:    basenameHeader.Get(c),
		basenameHeaderKey: basenameHeaderKey.Get(c),
		trackerDir:        trackerDir.Get(c),
		trackerPolicy:     trackingPolicy.Get(c) == "tracker_dir",
		consumeOrder:      consumeOrder.Get(c),
		pollDelay:         pollDelay.Get(c),
		recursive:         recursive.Get(c),
		maxBackoff:        maxBackoff.Get(c),
		batchSize:         batchSize.Get(c),
		maxLineLength:     maxLineLength.Get(c),
	}
	for _, k := range []config.Key[string]{includePattern, ignorePattern} {
		re, err := regexp.Compile(k.Get(c))
		if err != nil {
			c.Errorf(k.Name(), "bad regular expression: %v", err)
			re = regexp.MustCompile(k.Default())
		}
		if k == includePattern {
			cfg.include = re
		} else {
			cfg.ignore = re
		}
	}
	if cs, ok := parseSpoolCharset(inputCharset.Get(c)); ok {
		cfg.charset = cs
	} else {
		c.Errorf(inputCharset.Name(), "flumed reads UTF-8, US-ASCII and ISO-8859-1 only")
	}
	if cs, ok := parseSpoolCharset(outputCharset.Get(c)); !ok || cs != charsetUTF8 {
		c.Errorf(outputCharset.Name(), "flumed writes UTF-8 only")
	}
	cfg.decodePolicy = map[string]int{"fail": decodeFail, "replace": decodeReplace, "ignore": decodeIgnore}[decodeErrorPolicy.Get(c)]
	if d := deserializer.Get(c); !map[string]bool{"LINE": true, "line": true,
		"org.apache.flume.serialization.LineDeserializer$Builder": true}[d] {
		c.Errorf(deserializer.Name(), "flumed supports the LINE deserializer only, not %q", d)
	}
	if cfg.spoolDir != "" {
		if abs, err := filepath.Abs(cfg.spoolDir); err == nil {
			cfg.spoolDir = abs
		}
	}
	if !filepath.IsAbs(cfg.trackerDir) {
		cfg.trackerDir = filepath.Join(cfg.spoolDir, cfg.trackerDir)
	}
	for key, v := range map[string]int{"batchSize": cfg.batchSize, "deserializer.maxLineLength": cfg.maxLineLength} {
		if v <= 0 {
			c.Errorf(key, "must be positive, not %d", v)
		}
	}
	for key, d := range map[string]time.Duration{"pollDelay": cfg.pollDelay, "maxBackoff": cfg.maxBackoff} {
		if d <= 0 {
			c.Errorf(key, "must be positive")
		}
	}
	if cfg.fileSuffix == "" && !cfg.deleteImmediate && !cfg.trackerPolicy {
		c.Errorf("fileSuffix", "must not be empty: completed files are renamed with it")
	}
	if len(c.Problems().Errors()) > bad {
		return nil, sourceapi.ErrConfig
	}
	return &Source{name: name, cfg: cfg, log: log.With(slog.String("source", name)), fs: fsutil.OS{}}, nil
}

// Name returns the source's name.
func (s *Source) Name() string { return s.name }

// BatchSize is the most lines put in one transaction.
func (s *Source) BatchSize() int { return s.cfg.batchSize }

// Backoff makes the runner poll every pollDelay, as Flume's scheduled
// executor does; the longer backoff after a refused batch happens in Poll.
func (s *Source) Backoff() (increment, max time.Duration) { return s.cfg.pollDelay, s.cfg.pollDelay }

// FlumeMetrics returns Flume's source counters.
func (s *Source) FlumeMetrics() map[string]string { return s.counters.FlumeMetrics() }

// Start locks the tracker directory (two agents on one spool directory
// would read files twice) and loads the state.
func (s *Source) Start(_ context.Context, p sourceapi.BatchPutter) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return nil
	}
	if err := ensureDir(s.cfg.trackerDir); err != nil {
		return fmt.Errorf("spooldir %s: tracker directory: %w", s.name, err)
	}
	lock, err := fsutil.LockDir(s.cfg.trackerDir)
	if err != nil {
		return fmt.Errorf("spooldir %s: %w", s.name, err)
	}
	s.lock = lock
	if err := s.loadState(); err != nil {
		lock.Unlock()
		return fmt.Errorf("spooldir %s: %w", s.name, err)
	}
	s.proc, s.cur, s.queue, s.retry = p, nil, nil, 0
	s.stop = make(chan struct{})
	s.running = true
	s.counters.Started()
	s.log.Info("spooling directory source started", slog.String("spoolDir", s.cfg.spoolDir))
	return nil
}

// Stop closes the current file; its committed position is already on disk.
func (s *Source) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	s.running = false
	close(s.stop) // ends a backoff in Poll
	if s.cur != nil {
		s.cur.f.Close()
		s.cur = nil
	}
	s.counters.Stopped()
	if err := s.lock.Unlock(); err != nil {
		return fmt.Errorf("spooldir %s: %w", s.name, err)
	}
	return nil
}

// abandon closes everything without any further write: what a crash leaves.
func (s *Source) abandon() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return
	}
	s.running = false
	close(s.stop)
	if s.cur != nil {
		s.cur.f.Close()
		s.cur = nil
	}
	s.lock.Unlock()
}

// Poll delivers one batch of the current file, moving to the next file as
// needed. A refused batch is read again after a backoff of 250 ms doubling
// up to maxBackoff (Flume's), which ends early when the source stops.
func (s *Source) Poll(ctx context.Context) (sourceapi.Status, error) {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return sourceapi.Backoff, nil
	}
	st, wait := s.deliverNext()
	stop := s.stop
	s.mu.Unlock()
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		case <-stop:
		}
	}
	return st, nil
}

// deliverNext puts the next batch of the current file, moving to the next
// file as needed; it returns how long to wait after a refused batch.
func (s *Source) deliverNext() (sourceapi.Status, time.Duration) {
	for range 64 { // files that turn out empty, changed or done are passed quickly
		if s.cur == nil && !s.next() {
			return sourceapi.Backoff, 0
		}
		events, end, err := s.read()
		if err != nil {
			s.skip(s.cur, err.Error())
			continue
		}
		if len(events) == 0 {
			s.finish()
			continue
		}
		s.counters.EventReceived.Add(int64(len(events)))
		s.counters.AppendBatchReceived.Add(1)
		if err := s.proc.PutBatch(events); err != nil {
			s.counters.ChannelWriteFail.Add(1)
			s.retry = min(max(2*s.retry, 250*time.Millisecond), s.cfg.maxBackoff)
			s.log.Warn("channel refused a batch; reading the same lines again after a backoff",
				slog.String("file", s.cur.path), slog.Duration("backoff", s.retry), slog.Any("err", err))
			s.cur.rewind()
			return sourceapi.Backoff, s.retry
		}
		s.retry = 0
		s.counters.EventAccepted.Add(int64(len(events)))
		s.counters.AppendBatchAccepted.Add(1)
		s.cur.offset = end
		s.state.Current.Offset = end
		if err := s.saveState(); err != nil {
			// The lines are committed; only the resume point may lag.
			s.counters.GenericProcessingFail.Add(1)
			s.log.Error("cannot save the position; a crash would repeat lines", slog.Any("err", err))
		}
		return sourceapi.Ready, 0
	}
	return sourceapi.Ready, 0
}

// read reads the next batch of the current file.
func (s *Source) read() ([]channel.Event, int64, error) {
	c := s.cur
	if c.failed != nil {
		return nil, 0, c.failed
	}
	if err := c.verify(); err != nil {
		return nil, 0, err
	}
	var events []channel.Event
	end := c.offset
	var arena []byte
	reserved, used := 0, 0
	for len(events) < s.cfg.batchSize {
		if cap(arena)-len(arena) < s.cfg.maxLineLength*4 {
			arena = make([]byte, 0, max(32<<10, s.cfg.maxLineLength*4))
			reserved += cap(arena)
		}
		n := len(arena)
		line, e, ok, err := c.rd.next(arena)
		if err != nil {
			// Deliver the lines before the bad one first; skip the file after.
			s.counters.EventReadFail.Add(1)
			c.failed = fmt.Errorf("cannot decode as %s: %w", charsetName(s.cfg.charset), err)
			if len(events) == 0 {
				return nil, 0, c.failed
			}
			break
		}
		if !ok {
			break
		}
		arena = line
		h := make(map[string]string, 2)
		if s.cfg.fileHeader {
			h[s.cfg.fileHeaderKey] = c.path
		}
		if s.cfg.basenameHeader {
			h[s.cfg.basenameHeaderKey] = filepath.Base(c.path)
		}
		events = append(events, channel.Event{Headers: h, Body: arena[n:len(arena):len(arena)]})
		used += len(arena) - n
		end = e
	}
	if reserved > 2*used+4096 {
		// A few short lines: give them one exact allocation, so the events a
		// channel keeps do not each pin a 32 KiB chunk.
		buf := make([]byte, 0, used)
		for i := range events {
			n := len(buf)
			buf = append(buf, events[i].Body...)
			events[i].Body = buf[n:len(buf):len(buf)]
		}
	}
	return events, end, nil
}

func charsetName(cs spoolCharset) string {
	return map[spoolCharset]string{charsetUTF8: "UTF-8", charsetASCII: "US-ASCII", charsetLatin1: "ISO-8859-1"}[cs]
}
