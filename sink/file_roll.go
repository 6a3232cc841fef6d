package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/counter"
	"github.com/flumed/flumed/internal/fsutil"
)

// FileRollOptions configure a file_roll sink (FLUME.md §2.11).
type FileRollOptions struct {
	Directory    string            // sink.directory, created at Start
	RollInterval time.Duration     // sink.rollInterval (seconds in the file); 0 = never roll
	BatchSize    int               // sink.batchSize
	Serializer   SerializerOptions // sink.serializer and its sink.serializer.* keys
	PathManager  string            // sink.pathManager: "default" or "rolltime"
	Prefix       string            // sink.pathManager.prefix
	Extension    string            // sink.pathManager.extension, without the dot
}

// FileRoll is Flume's file_roll sink: each batch, serialized (TEXT,
// HEADER_AND_TEXT or AVRO_EVENT, see Serializer), is appended to the current
// file of Directory, and a new file is started every RollInterval.
//
// Unlike Flume, each batch is written with one write and fsynced before the
// take commits, so a committed take is never lost in a crash; files are created
// exclusively (never truncating an existing one) and only when there is
// something to write (Flume leaves an empty file behind every interval).
// A file is rolled when it is older than RollInterval, checked at every
// Process, so an idle file is closed within RollInterval plus one runner
// backoff.
//
// File names: DEFAULT is <prefix><startMillis>-<n>[.<ext>], with startMillis
// the sink's start time and n counting files from 1; ROLLTIME is
// <prefix><yyyyMMddHHmmss>-<n>[.<ext>] in local time, n restarting at 1 when
// the timestamp changes.
type FileRoll struct {
	name    string
	opts    FileRollOptions
	log     *slog.Logger
	counter counter.Sink
	eng     *Engine // nil until Start

	// Seams for tests: the clock and the file system (fault injection).
	now  func() time.Time
	fsys fsutil.FS

	// State owned by the runner goroutine.
	f        fsutil.File
	ser      Serializer // f's: a new one per file (Avro's header and sync marker)
	path     string
	opened   time.Time
	size     int64  // bytes of committed-to-be batches in f: all written and synced
	series   int64  // DEFAULT: start time in ms
	index    int    // number in the last file name
	lastRoll string // ROLLTIME: timestamp of the last file name
	buf      []byte
}

var (
	_ Sink              = (*FileRoll)(nil)
	_ BatchSizer        = (*FileRoll)(nil)
	_ BatchSizeKeyer    = (*FileRoll)(nil)
	_ counter.Monitored = (*FileRoll)(nil)
)

// The file_roll sink's keys (FLUME.md §2.11).
var (
	fileRollDirectory  = config.String("sink.directory", "", "the directory the files are written to (created at start)").Required()
	fileRollInterval   = config.Seconds("sink.rollInterval", 30*time.Second, "start a new file after this long; 0 never rolls")
	fileRollBatchSize  = config.Int("sink.batchSize", 100, "the most events taken, written and synced in one transaction")
	fileRollSerializer = config.String("sink.serializer", "text",
		"how events are written: text, header_and_text or avro_event (or Flume's builder class names)")
	fileRollSerializerKeys = config.Nested("sink.serializer.*",
		"the serializer's keys: appendNewline (text, header_and_text); syncIntervalBytes, compressionCodec (avro_event)")
	fileRollPathManager = config.OneOf("sink.pathManager", "default", []string{"default", "rolltime"},
		"file names: `<prefix><start ms>-<n>`, or with rolltime `<prefix><yyyyMMddHHmmss>-<n>`")
	fileRollPrefix    = config.String("sink.pathManager.prefix", "", "the start of every file name")
	fileRollExtension = config.String("sink.pathManager.extension", "", "the file names' extension, without the dot")
)

// fileRollType declares the file_roll sink.
var fileRollType = &config.Spec{
	Type:    "file_roll",
	Classes: []string{"org.apache.flume.sink.RollingFileSink"},
	Doc: "each batch is written at once and fsynced before the take commits; files are created exclusively (an " +
		"existing file is never truncated) and only when there is something to write",
	Keys: []config.Decl{fileRollDirectory, fileRollInterval, fileRollBatchSize, fileRollSerializer,
		fileRollSerializerKeys, fileRollPathManager, fileRollPrefix, fileRollExtension},
}

// NewFileRoll builds a file_roll sink. Zero BatchSize and an empty
// PathManager become their keys' defaults; a zero Serializer is TEXT without
// newlines.
func NewFileRoll(name string, opts FileRollOptions, log *slog.Logger) *FileRoll {
	if opts.BatchSize < 1 {
		opts.BatchSize = fileRollBatchSize.Default()
	}
	opts.PathManager = strings.ToLower(opts.PathManager)
	if opts.PathManager == "" {
		opts.PathManager = fileRollPathManager.Default()
	}
	return &FileRoll{
		name: name,
		opts: opts,
		log:  orDiscard(log),
		now:  time.Now,
		fsys: fsutil.OS{},
	}
}

func newFileRollFactory(name string, c *config.Context, log *slog.Logger) (Sink, error) {
	o := FileRollOptions{
		Directory:    fileRollDirectory.Get(c),
		RollInterval: fileRollInterval.Get(c),
		BatchSize:    fileRollBatchSize.Get(c),
		PathManager:  fileRollPathManager.Get(c),
		Serializer:   readSerializer(c, fileRollSerializer),
		Prefix:       fileRollPrefix.Get(c),
		Extension:    fileRollExtension.Get(c),
	}
	if o.RollInterval < 0 {
		c.Errorf(fileRollInterval.Name(), "must be 0 (never roll) or a number of seconds, not %d", o.RollInterval/time.Second)
	}
	if o.BatchSize < 1 {
		c.Errorf(fileRollBatchSize.Name(), "must be at least 1, not %d", o.BatchSize)
	}
	return NewFileRoll(name, o, log), nil
}

// Name implements Sink.
func (s *FileRoll) Name() string { return s.name }

// BatchSize implements BatchSizer.
func (s *FileRoll) BatchSize() int { return s.opts.BatchSize }

// BatchSizeKey implements BatchSizeKeyer: file_roll's key is sink.batchSize.
func (s *FileRoll) BatchSizeKey() string { return "sink.batchSize" }

// FlumeMetrics implements counter.Monitored.
func (s *FileRoll) FlumeMetrics() map[string]string { return s.counter.FlumeMetrics() }

// Start creates the directory and binds the sink to its channel. The first file
// is created when the first batch arrives.
func (s *FileRoll) Start(_ context.Context, ch channel.Channel) error {
	if err := os.MkdirAll(s.opts.Directory, 0o755); err != nil {
		return fmt.Errorf("create sink directory: %w", err)
	}
	s.series = s.now().UnixMilli()
	s.eng = NewEngine(EngineOptions{
		Sink: s.name, Channel: ch, BatchSize: s.opts.BatchSize, Depth: DefaultPipelineDepth,
		Counter: &s.counter, Log: s.log,
	}, DeliverFunc(s.write))
	s.counter.Started()
	return nil
}

// Process rolls the file when it is due, then writes one batch.
func (s *FileRoll) Process(ctx context.Context) (Status, error) {
	if s.eng == nil {
		return Backoff, errors.New("file_roll sink not started")
	}
	if s.f != nil && s.opts.RollInterval > 0 && s.now().Sub(s.opened) >= s.opts.RollInterval {
		s.closeFile()
	}
	return s.eng.Process(ctx)
}

// write appends the batch to the current file in one write and fsyncs it: the
// take commits only after the bytes are on disk.
func (s *FileRoll) write(_ context.Context, events []channel.Event) error {
	if s.f == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	buf, err := s.ser.Append(s.buf[:0], events)
	if err != nil {
		s.abandon()
		return fmt.Errorf("serialize for %s: %w", s.path, err)
	}
	s.buf = buf
	if _, err := s.f.Write(s.buf); err != nil {
		s.abandon()
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	// fsync before the commit: once the take commits, the channel forgets the
	// events, so they must already be durable here.
	if err := s.f.Sync(); err != nil {
		s.abandon()
		return fmt.Errorf("fsync %s: %w", s.path, err)
	}
	s.size += int64(len(s.buf))
	return nil
}

// open creates the next file, skipping names that already exist.
func (s *FileRoll) open() error {
	ser, err := NewSerializer(s.opts.Serializer)
	if err != nil {
		return err
	}
	for range 1000 {
		path := s.nextPath()
		// O_EXCL: never truncate a file left by an earlier run (Flume does).
		f, err := s.fsys.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			s.counter.ConnectionFailed.Add(1)
			return fmt.Errorf("create %s: %w", path, err)
		}
		// fsync the directory so the new file's name survives a crash along
		// with the data fsynced into it.
		if err := s.fsys.SyncDir(s.opts.Directory); err != nil {
			_ = f.Close()
			_ = s.fsys.Remove(path)
			s.counter.ConnectionFailed.Add(1)
			return fmt.Errorf("sync directory of %s: %w", path, err)
		}
		s.f, s.ser, s.path, s.opened, s.size = f, ser, path, s.now(), 0
		s.counter.ConnectionCreated.Add(1)
		s.log.Debug("opened file", "sink", s.name, "file", path)
		return nil
	}
	s.counter.ConnectionFailed.Add(1)
	return fmt.Errorf("create file in %s: every candidate name exists", s.opts.Directory)
}

func (s *FileRoll) nextPath() string {
	var stamp string
	if s.opts.PathManager == "rolltime" {
		stamp = s.now().Format("20060102150405")
		if stamp != s.lastRoll {
			s.index, s.lastRoll = 0, stamp
		}
	} else {
		stamp = strconv.FormatInt(s.series, 10)
	}
	s.index++
	name := s.opts.Prefix + stamp + "-" + strconv.Itoa(s.index)
	if s.opts.Extension != "" {
		name += "." + s.opts.Extension
	}
	return filepath.Join(s.opts.Directory, name)
}

// closeFile ends the current file. Its batches were fsynced when written, so a
// failing close loses nothing; it is counted and logged.
func (s *FileRoll) closeFile() {
	if s.f == nil {
		return
	}
	if err := s.f.Close(); err != nil {
		s.counter.ConnectionFailed.Add(1)
		s.log.Warn("close file", "sink", s.name, "file", s.path, "err", err)
	} else {
		s.counter.ConnectionClosed.Add(1)
		s.log.Debug("closed file", "sink", s.name, "file", s.path)
	}
	s.f = nil
}

// abandon drops a file after a failed write or fsync: its state on disk is
// unknown, so it is never written again (a retried fsync cannot be trusted)
// and the next batch goes to a new file. The failed batch is rolled back and
// written again there; cutting the file back to its last good size keeps the
// batch from also appearing half-written here. That cut is best effort: if it
// fails too, or a crash undoes it, the batch may appear twice (at-least-once).
// A file that never held a good batch is removed instead, so a failing disk
// does not leave a trail of empty files.
func (s *FileRoll) abandon() {
	if err := s.f.Truncate(s.size); err != nil {
		s.log.Warn("cut failed batch from abandoned file", "sink", s.name, "file", s.path, "err", err)
	}
	_ = s.f.Close()
	if s.size == 0 {
		_ = s.fsys.Remove(s.path)
	}
	s.counter.ConnectionClosed.Add(1)
	s.f = nil
}

// Stop closes the current file. Idempotent.
func (s *FileRoll) Stop() error {
	if s.eng == nil {
		return nil
	}
	_ = s.eng.Settle(context.Background()) // nothing is left unanswered: the commits under way
	s.closeFile()
	s.eng = nil
	s.counter.Stopped()
	return nil
}
