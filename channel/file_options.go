package channel

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/fsutil"
)

// Segment size bounds. The wal keeps the whole tail segment in memory (up to
// about twice its size as its buffer grows), and restart reads it, so the
// segment size bounds the channel's memory and restart time. Flume's
// maxFileSize default (1.5 GiB) is far past what that allows; a maxFileSize
// that is set is clamped to [minSegmentSize, maxSegmentSize]. The default
// (fileMaxFileSize's) measured best here: a small tail to load and
// regrow, few files (1,300 for 5 GiB of backlog).
const (
	minSegmentSize    = 1 << 20
	maxSegmentSize    = 16 << 20
	minimumSpaceFloor = 1 << 20
)

// The file channel's keys (FLUME.md §2.8). Their defaults are written here
// only: DefaultFileOptions, normalize and the README take them from these
// declarations. A leading "~/" in a default directory is the home directory,
// as in Flume's defaults (a "~" a user writes is taken literally, as Flume
// does).
var (
	fileCheckpointDir = config.String("checkpointDir", "~/.flume/file-channel/checkpoint",
		"the checkpoint slots (the ack state) and a lock")
	fileDataDirs = config.List("dataDirs", ",", "~/.flume/file-channel/data",
		"the data log's directory; flumed keeps its log in the first of several (with a warning) and reads the others only to import a Flume backlog")
	fileUseDualCheckpoints = config.Bool("useDualCheckpoints", false,
		"also write the ack state to backupCheckpointDir, used when the checkpoint is unreadable")
	fileBackupCheckpointDir = config.String("backupCheckpointDir", "",
		"the backup checkpoint's directory; required with useDualCheckpoints")
	fileCapacity = config.Int("capacity", 1_000_000,
		"the most events the channel holds (a soft limit: it may change between runs)")
	fileTxCapacity = config.Int("transactionCapacity", 10_000,
		"the most events one transaction puts or takes")
	fileCheckpointInterval = config.Millis("checkpointInterval", 30*time.Second,
		"how often the backup checkpoint is written (at least 1000); the checkpoint itself is written at every take commit")
	fileMaxFileSize = config.Bytes("maxFileSize", 4<<20,
		"the data log's segment size, clamped to 1-16 MiB to bound memory (Flume's default, 2146435071, does not apply)")
	fileMinimumRequiredSpace = config.Bytes("minimumRequiredSpace", 500<<20,
		"free space below which puts fail (takes keep working); at least 1 MiB")
	fileKeepAlive = config.Seconds("keep-alive", 3*time.Second,
		"how long a put waits for space")
	fileCheckpointOnClose = config.Bool("checkpointOnClose", true,
		"write the backup checkpoint at close as well")
	fileFsyncPerTransaction = config.Bool("fsyncPerTransaction", true,
		"make every commit durable before it returns (one fsync per group of concurrent commits)")
	fileFsyncInterval = config.Seconds("fsyncInterval", 5*time.Second,
		"without fsyncPerTransaction, how often the log and checkpoint are synced: the window a machine crash may lose")
	fileCompression = config.OneOf("compression", "s2", []string{"none", "s2"},
		"compress put records with S2 when it saves an eighth").Flumed()
	fileCompressionThreshold = config.Int("compressionThreshold", 4096,
		"the event bytes from which a put record is compressed").Flumed()
)

// fileType declares the file channel.
var fileType = &config.Spec{
	Type:    "file",
	Classes: []string{"org.apache.flume.channel.file.FileChannel"},
	Doc: "a checksummed write-ahead log in flumed's own format; a Flume file channel's backlog found in its directories " +
		"is imported on open; committed events survive SIGKILL and torn writes; restart reads a small checkpoint, not " +
		"the backlog; flumed's log is in the first of `dataDirs`; below `minimumRequiredSpace` puts fail but sinks keep " +
		"draining; optional `compression = s2`; optional encryption at rest (AES-GCM, `encryption.*`)",
	Keys: []config.Decl{fileCheckpointDir, fileDataDirs, fileUseDualCheckpoints, fileBackupCheckpointDir,
		fileCapacity, fileTxCapacity, fileCheckpointInterval, fileMaxFileSize, fileMinimumRequiredSpace,
		fileKeepAlive, fileCheckpointOnClose, fileFsyncPerTransaction, fileFsyncInterval,
		fileCompression, fileCompressionThreshold,
		config.Ignore("use-log-replay-v1", ""), config.Ignore("use-fast-replay", ""),
		config.Ignore("compressBackupCheckpoint", ""), fileEncryption},
}

// inHome turns a default's leading "~/" into the home directory.
func inHome(path string) string {
	rest, ok := strings.CutPrefix(path, "~/")
	if !ok {
		return path
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "."
	}
	return filepath.Join(home, rest)
}

// FileOptions configure a file channel. Start from DefaultFileOptions: the zero
// value of a boolean is false, not Flume's default.
type FileOptions struct {
	// CheckpointDir holds the checkpoint slots (the ack state) and a lock.
	CheckpointDir string
	// DataDir holds the data log segments, the log identity file and a lock.
	// It may equal CheckpointDir.
	DataDir string
	// DataDirs is every directory of dataDirs, DataDir first (empty means
	// DataDir alone). flumed's own log is in DataDir only; the others are
	// read when a Flume file channel's backlog is imported (file_import.go).
	DataDirs []string
	// BackupCheckpointDir, when set (useDualCheckpoints), receives a copy of
	// the ack state every CheckpointInterval and at Close; it is used when the
	// primary checkpoint is unreadable.
	BackupCheckpointDir string

	// Capacity is the most events the channel holds: committed and not yet
	// taken-and-committed, plus staged puts. A soft limit, not a layout: it
	// can change between runs freely.
	Capacity int
	// TransactionCapacity is the most events one transaction may hold.
	TransactionCapacity int
	// KeepAlive is how long a Put waits for capacity before ErrFull.
	KeepAlive time.Duration
	// CheckpointInterval is how often the backup checkpoint is written. (The
	// primary checkpoint is written at every take commit: it is the ack state.)
	CheckpointInterval time.Duration
	// CheckpointOnClose writes the backup checkpoint at Close as well.
	CheckpointOnClose bool
	// SegmentSize is the data log's segment size (Flume's maxFileSize),
	// clamped to [1 MiB, 16 MiB]. Zero means the maxFileSize key's default.
	SegmentSize int64
	// MinimumRequiredSpace is the free space below which puts fail with
	// ErrFull; takes and acks keep working. Zero means the key's default;
	// negative disables the check (tests, embedding).
	MinimumRequiredSpace int64
	// FsyncPerTransaction makes every commit durable before it returns (one
	// fsync per group of concurrent commits). When false, the log and the
	// checkpoint are synced every FsyncInterval: a crash of the machine (not
	// of the process) may lose up to that window of commits, and takes
	// committed in that window are delivered again.
	FsyncPerTransaction bool
	FsyncInterval       time.Duration
	// Compress compresses put records with S2 when their events take at least
	// CompressAbove bytes, a sample looks compressible and compression saves
	// an eighth. On by default: on log lines it raises throughput and cuts
	// disk writes and CPU (BenchmarkFileCompression); on incompressible
	// bodies the sample check makes it cost next to nothing.
	Compress      bool
	CompressAbove int
	// Keys, when set (encryption.*), seal every new put record with its
	// active key and open records sealed with any of its keys. Nil: records
	// are written in the clear, and a sealed record found in the log stops
	// the channel at open (ErrRecordKey) rather than be skipped.
	Keys *Keyring

	// FS is the file-system seam (fault injection in tests). Nil means the OS.
	FS fsutil.FS
	// ReclaimInterval is how often the background reclaimer looks for
	// segments wholly below the floor. Zero means one second.
	ReclaimInterval time.Duration

	// Dedup bounds the receiver's dedup table (dedup_origins.go): zero
	// fields take its defaults, and a nil Log the channel's logger.
	Dedup OriginsOptions

	importTest *importTesting // tests only: steps and sizes of a Flume import
}

// DefaultFileOptions returns the file channel keys' defaults, with the
// directories under ~/.flume/file-channel as in Flume.
func DefaultFileOptions() FileOptions {
	return FileOptions{
		CheckpointDir:        inHome(fileCheckpointDir.Default()),
		DataDir:              inHome(fileDataDirs.Default()[0]),
		Capacity:             fileCapacity.Default(),
		TransactionCapacity:  fileTxCapacity.Default(),
		KeepAlive:            fileKeepAlive.Default(),
		CheckpointInterval:   fileCheckpointInterval.Default(),
		CheckpointOnClose:    fileCheckpointOnClose.Default(),
		SegmentSize:          fileMaxFileSize.Default(),
		MinimumRequiredSpace: fileMinimumRequiredSpace.Default(),
		FsyncPerTransaction:  fileFsyncPerTransaction.Default(),
		FsyncInterval:        fileFsyncInterval.Default(),
		Compress:             fileCompression.Default() == "s2",
		CompressAbove:        fileCompressionThreshold.Default(),
	}
}

// normalize fills zero values and clamps what is clamped.
func (o FileOptions) normalize() FileOptions {
	d := DefaultFileOptions()
	if o.Capacity == 0 {
		o.Capacity = d.Capacity
	}
	if o.TransactionCapacity == 0 {
		o.TransactionCapacity = min(d.TransactionCapacity, o.Capacity)
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = d.CheckpointInterval
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = d.SegmentSize
	}
	o.SegmentSize = min(max(o.SegmentSize, minSegmentSize), maxSegmentSize)
	if o.MinimumRequiredSpace == 0 {
		o.MinimumRequiredSpace = d.MinimumRequiredSpace
	}
	if o.FsyncInterval == 0 {
		o.FsyncInterval = d.FsyncInterval
	}
	if o.CompressAbove == 0 {
		o.CompressAbove = d.CompressAbove
	}
	if o.ReclaimInterval == 0 {
		o.ReclaimInterval = time.Second
	}
	if o.FS == nil {
		o.FS = fsutil.OS{}
	}
	return o
}

// Validate reports the first invalid option, zero values taken as documented.
func (o FileOptions) Validate() error {
	o = o.normalize()
	switch {
	case o.CheckpointDir == "":
		return fmt.Errorf("checkpointDir is empty")
	case o.DataDir == "":
		return fmt.Errorf("dataDirs is empty")
	case o.Capacity < 0:
		return fmt.Errorf("capacity %d is not positive", o.Capacity)
	case o.TransactionCapacity < 0:
		return fmt.Errorf("transactionCapacity %d is not positive", o.TransactionCapacity)
	case o.TransactionCapacity > o.Capacity:
		return fmt.Errorf("transactionCapacity %d is more than capacity %d", o.TransactionCapacity, o.Capacity)
	case o.KeepAlive < 0:
		return fmt.Errorf("keep-alive %s is negative", o.KeepAlive)
	case o.CheckpointInterval < 0:
		return fmt.Errorf("checkpointInterval %s is negative", o.CheckpointInterval)
	case o.FsyncInterval < 0:
		return fmt.Errorf("fsyncInterval %s is negative", o.FsyncInterval)
	case o.CompressAbove < 0:
		return fmt.Errorf("compressAbove %d is negative", o.CompressAbove)
	case o.BackupCheckpointDir != "" && sameDir(o.BackupCheckpointDir, o.CheckpointDir):
		return fmt.Errorf("backupCheckpointDir %s is the checkpointDir", o.BackupCheckpointDir)
	}
	return nil
}

func sameDir(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

// fileSpec is a configured file channel.
type fileSpec struct{ opts FileOptions }

func (s fileSpec) TransactionCapacity() int { return s.opts.TransactionCapacity }

func (s fileSpec) Open(name string, log *slog.Logger) (Channel, error) {
	return OpenFile(name, s.opts, log)
}

// fileFactory makes a file channel spec from c, checked against fileType.
// Where Flume silently replaces a bad number with its default, flumed
// records a problem.
func fileFactory(_ string, c *config.Context) (Spec, error) {
	o := DefaultFileOptions()
	if v, set := fileCheckpointDir.Lookup(c); set {
		o.CheckpointDir = v
	}
	readDataDirs(c, &o)
	readBackupCheckpointDir(c, &o)
	o.Capacity, o.TransactionCapacity = readCapacities(c, fileCapacity, fileTxCapacity)
	if v := fileCheckpointInterval.Get(c); v > 0 {
		o.CheckpointInterval = max(v, time.Second) // Flume's Log clamps it to at least 1000 ms
	} else {
		c.Errorf(fileCheckpointInterval.Name(), "must be a positive number of milliseconds, not %d", v/time.Millisecond)
	}
	// Unset, maxFileSize is Flume's 1.5 GiB, a size flumed cannot keep in
	// memory: the segment size is then flumed's default; set, it is clamped.
	if v, set := fileMaxFileSize.Lookup(c); set && v > 0 {
		o.SegmentSize = min(max(v, minSegmentSize), maxSegmentSize)
		if v != o.SegmentSize {
			c.Warnf(fileMaxFileSize.Name(), "flumed's segments are %d bytes (the bounds are %d and %d, to keep memory bounded)",
				o.SegmentSize, minSegmentSize, maxSegmentSize)
		}
	} else if set {
		c.Errorf(fileMaxFileSize.Name(), "must be a positive number of bytes, not %d", v)
	}
	if v := fileMinimumRequiredSpace.Get(c); v > 0 {
		o.MinimumRequiredSpace = max(v, minimumSpaceFloor) // Flume's floor is 1 MiB
	} else {
		c.Errorf(fileMinimumRequiredSpace.Name(), "must be a positive number of bytes, not %d", v)
	}
	if v := fileKeepAlive.Get(c); v >= 0 {
		o.KeepAlive = v
	} else {
		c.Errorf(fileKeepAlive.Name(), "must be zero or more seconds, not %d", v/time.Second)
	}
	o.CheckpointOnClose = fileCheckpointOnClose.Get(c)
	o.FsyncPerTransaction = fileFsyncPerTransaction.Get(c)
	if v := fileFsyncInterval.Get(c); v > 0 {
		o.FsyncInterval = v
	} else {
		c.Errorf(fileFsyncInterval.Name(), "must be a positive number of seconds, not %d", v/time.Second)
	}
	o.Keys = readEncryption(c)
	o.Compress = fileCompression.Get(c) == "s2"
	if v := fileCompressionThreshold.Get(c); v >= 0 {
		o.CompressAbove = v
	} else {
		c.Errorf(fileCompressionThreshold.Name(), "must be zero or more bytes, not %d", v)
	}
	return fileSpec{opts: o}, nil
}

// ConfiguredDirs are the directories a file channel's keys name (their
// defaults for keys left out; the backup only with useDualCheckpoints), for
// tools that find a channel's files from its configuration (flumed wal -c).
// c is checked against the file channel's spec first, into its problems.
func ConfiguredDirs(c *config.Context) FileDirs {
	c.Check(fileType)
	o := DefaultFileOptions()
	if v, set := fileCheckpointDir.Lookup(c); set {
		o.CheckpointDir = v
	}
	var all []string
	for _, d := range fileDataDirs.Get(c) {
		if d = strings.TrimSpace(d); d != "" {
			all = append(all, d)
		}
	}
	if len(all) > 0 {
		o.DataDir = all[0]
	}
	d := FileDirs{Checkpoint: o.CheckpointDir, Data: o.DataDir, DataDirs: all, SkipCorrupt: !fileFsyncPerTransaction.Get(c)}
	if fileUseDualCheckpoints.Get(c) {
		d.BackupCheckpoint = fileBackupCheckpointDir.Get(c)
	}
	return d
}

// readDataDirs takes the first of dataDirs. One log with group commit
// already batches every transaction into one fsync; striping would need a
// cross-log order.
func readDataDirs(c *config.Context, o *FileOptions) {
	dirs, set := fileDataDirs.Lookup(c)
	if !set {
		return
	}
	var list []string
	for _, d := range dirs {
		if d = strings.TrimSpace(d); d != "" {
			list = append(list, d)
		}
	}
	if len(list) == 0 {
		c.Errorf(fileDataDirs.Name(), "lists no directory")
		return
	}
	o.DataDir, o.DataDirs = list[0], list
	if len(list) > 1 {
		c.Warnf(fileDataDirs.Name(), "flumed keeps its log in the first data directory (%s); the other %d are only read to import a Flume backlog found there",
			list[0], len(list)-1)
	}
}

// readBackupCheckpointDir reads useDualCheckpoints and its directory.
func readBackupCheckpointDir(c *config.Context, o *FileOptions) {
	dir, set := fileBackupCheckpointDir.Lookup(c)
	switch {
	case !fileUseDualCheckpoints.Get(c):
		if set {
			c.Warnf(fileBackupCheckpointDir.Name(), "ignored: useDualCheckpoints is not true")
		}
	case dir == "":
		c.Errorf(fileBackupCheckpointDir.Name(), "required when useDualCheckpoints is true")
	case sameDir(dir, o.CheckpointDir):
		c.Errorf(fileBackupCheckpointDir.Name(), "must differ from checkpointDir %s", o.CheckpointDir)
	default:
		o.BackupCheckpointDir = dir
	}
}
