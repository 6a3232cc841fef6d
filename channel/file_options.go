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
// that is set is clamped to [minSegmentSize, maxSegmentSize]. The default,
// 4 MiB, measured best here: a small tail to load and regrow, few files
// (1,300 for 5 GiB of backlog).
const (
	minSegmentSize     = 1 << 20
	maxSegmentSize     = 16 << 20
	defaultSegmentSize = 4 << 20

	defaultMinimumSpace  = 500 << 20
	minimumSpaceFloor    = 1 << 20
	defaultCompressAbove = 4096
)

// FileOptions configure a file channel. Start from DefaultFileOptions: the zero
// value of a boolean is false, not Flume's default.
type FileOptions struct {
	// CheckpointDir holds the checkpoint slots (the ack state) and a lock.
	CheckpointDir string
	// DataDir holds the data log segments, the log identity file and a lock.
	// It may equal CheckpointDir.
	DataDir string
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
	// clamped to [1 MiB, 16 MiB]. Zero means 4 MiB.
	SegmentSize int64
	// MinimumRequiredSpace is the free space below which puts fail with
	// ErrFull; takes and acks keep working. Zero means Flume's 500 MiB;
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

	// FS is the file-system seam (fault injection in tests). Nil means the OS.
	FS fsutil.FS
	// ReclaimInterval is how often the background reclaimer looks for
	// segments wholly below the floor. Zero means one second.
	ReclaimInterval time.Duration
}

// DefaultFileOptions returns Flume's defaults, with the directories under
// ~/.flume/file-channel as in Flume.
func DefaultFileOptions() FileOptions {
	home, err := os.UserHomeDir()
	if err != nil {
		home = "."
	}
	base := filepath.Join(home, ".flume", "file-channel")
	return FileOptions{
		CheckpointDir:        filepath.Join(base, "checkpoint"),
		DataDir:              filepath.Join(base, "data"),
		Capacity:             1_000_000,
		TransactionCapacity:  10_000,
		KeepAlive:            3 * time.Second,
		CheckpointInterval:   30 * time.Second,
		CheckpointOnClose:    true,
		SegmentSize:          defaultSegmentSize,
		MinimumRequiredSpace: defaultMinimumSpace,
		FsyncPerTransaction:  true,
		FsyncInterval:        5 * time.Second,
		Compress:             true,
		CompressAbove:        defaultCompressAbove,
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
		o.SegmentSize = defaultSegmentSize
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

// fileFactory reads Flume's file channel keys (FLUME.md §2.8). Where Flume
// silently replaces a bad number with its default, flumed records a problem.
func fileFactory(_ string, c *config.Context) (Spec, error) {
	o := DefaultFileOptions()
	o.CheckpointDir = c.String("checkpointDir", o.CheckpointDir)
	if dirs := c.String("dataDirs", ""); dirs != "" {
		var list []string
		for _, d := range strings.Split(dirs, ",") {
			if d = strings.TrimSpace(d); d != "" {
				list = append(list, d)
			}
		}
		if len(list) == 0 {
			c.Errorf("dataDirs", "lists no directory")
		} else {
			o.DataDir = list[0]
			if len(list) > 1 {
				// One log with group commit already batches every transaction
				// into one fsync; striping would need a cross-log order.
				c.Warnf("dataDirs", "flumed uses only the first data directory (%s); the other %d are ignored",
					list[0], len(list)-1)
			}
		}
	}
	if c.Bool("useDualCheckpoints", false) {
		o.BackupCheckpointDir = c.String("backupCheckpointDir", "")
		switch {
		case o.BackupCheckpointDir == "":
			c.Errorf("backupCheckpointDir", "required when useDualCheckpoints is true")
		case sameDir(o.BackupCheckpointDir, o.CheckpointDir):
			c.Errorf("backupCheckpointDir", "must differ from checkpointDir %s", o.CheckpointDir)
			o.BackupCheckpointDir = ""
		}
	} else if c.Has("backupCheckpointDir") {
		c.Warnf("backupCheckpointDir", "ignored: useDualCheckpoints is not true")
	}
	o.Capacity, o.TransactionCapacity = readCapacities(c, o.Capacity, o.TransactionCapacity)
	if v := c.Duration("checkpointInterval", o.CheckpointInterval, time.Millisecond); v > 0 {
		o.CheckpointInterval = max(v, time.Second) // Flume's Log clamps it to at least 1000 ms
	} else {
		c.Errorf("checkpointInterval", "must be a positive number of milliseconds, not %d", v/time.Millisecond)
	}
	// Unset, maxFileSize is Flume's 1.5 GiB, a size flumed cannot keep in
	// memory: the segment size is then flumed's default; set, it is clamped.
	if v := c.Int64("maxFileSize", 0); v > 0 {
		o.SegmentSize = min(max(v, minSegmentSize), maxSegmentSize)
		if v != o.SegmentSize {
			c.Warnf("maxFileSize", "flumed's segments are %d bytes (the bounds are %d and %d, to keep memory bounded)",
				o.SegmentSize, minSegmentSize, maxSegmentSize)
		}
	} else if c.Has("maxFileSize") {
		c.Errorf("maxFileSize", "must be a positive number of bytes, not %d", v)
	}
	if v := c.Int64("minimumRequiredSpace", o.MinimumRequiredSpace); v > 0 {
		o.MinimumRequiredSpace = max(v, minimumSpaceFloor) // Flume's floor is 1 MiB
	} else {
		c.Errorf("minimumRequiredSpace", "must be a positive number of bytes, not %d", v)
	}
	if v := c.Duration("keep-alive", o.KeepAlive, time.Second); v >= 0 {
		o.KeepAlive = v
	} else {
		c.Errorf("keep-alive", "must be zero or more seconds, not %d", v/time.Second)
	}
	o.CheckpointOnClose = c.Bool("checkpointOnClose", o.CheckpointOnClose)
	o.FsyncPerTransaction = c.Bool("fsyncPerTransaction", o.FsyncPerTransaction)
	if v := c.Duration("fsyncInterval", o.FsyncInterval, time.Second); v > 0 {
		o.FsyncInterval = v
	} else {
		c.Errorf("fsyncInterval", "must be a positive number of seconds, not %d", v/time.Second)
	}
	o.Compress = c.OneOf("compression", "s2", "none", "s2") == "s2"
	if v := c.Int("compressionThreshold", o.CompressAbove); v >= 0 {
		o.CompressAbove = v
	} else {
		c.Errorf("compressionThreshold", "must be zero or more bytes, not %d", v)
	}
	c.Ignore("use-log-replay-v1", "use-fast-replay", "compressBackupCheckpoint")
	if len(c.Keys("encryption.")) > 0 {
		// flumed does not encrypt its log: Flume's encryption keys are
		// accepted with a warning; anything else under encryption. is unknown.
		sub := c.Sub("encryption.")
		sub.Ignore("activeKey", "cipherProvider", "keyProvider", "keyProvider.keyStoreFile",
			"keyProvider.keyStorePasswordFile", "keyProvider.keys")
		for _, k := range sub.Keys("keyProvider.keys.") {
			sub.Ignore("keyProvider.keys." + k + ".passwordFile")
		}
		sub.Finish()
	}
	return fileSpec{opts: o}, nil
}
