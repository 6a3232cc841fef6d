package channel

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/flumed/flumed/internal/fsutil"
	"github.com/flumed/flumed/wal"
)

// openDataLog opens (creating, locking and repairing) the data log in dir.
func openDataLog(fsys fsutil.FS, dir string, segmentSize int64, log *slog.Logger) (*wal.Log, error) {
	return wal.Open(dir, wal.Options{SegmentSize: segmentSize, FS: fsys, Logger: log})
}

// isDamaged reports whether err means a record cannot be delivered (and the
// cursor goes on past it): a wal.CorruptionError, or a record the codec
// refuses.
func isDamaged(err error) bool {
	var ce *wal.CorruptionError
	return errors.As(err, &ce) || errors.Is(err, errBadRecord)
}

// The log identity. The data directory holds a random 128-bit id, written once
// before the first record, and every checkpoint slot records the id of the log
// it describes. A checkpoint carrying another id belongs to another log (the
// data directory was wiped, or restored from elsewhere): it is ignored, and
// the channel redelivers every record present (duplicates, never loss).
const logIDFile = "log-id" // shorter than 20 bytes: tidwall never mistakes it for a segment

var logIDPrefix = []byte("flumed-file-channel-log ")

// readLogID reads dir's log id. ok is false when there is none (or it is
// damaged, which is reported in err).
func readLogID(dir string) (id [16]byte, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, logIDFile))
	if errors.Is(err, os.ErrNotExist) {
		return id, false, nil
	}
	if err != nil {
		return id, false, err
	}
	rest, found := bytes.CutPrefix(bytes.TrimSpace(b), logIDPrefix)
	if !found || len(rest) != 2*len(id) {
		return id, false, fmt.Errorf("%s: not a log id", logIDFile)
	}
	if _, err := hex.Decode(id[:], rest); err != nil {
		return id, false, fmt.Errorf("%s: %w", logIDFile, err)
	}
	return id, true, nil
}

// newLogID writes a fresh id into dir, atomically and durably, and returns it.
func newLogID(fsys fsutil.FS, dir string) ([16]byte, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return id, err
	}
	data := fmt.Appendf(append([]byte(nil), logIDPrefix...), "%x\n", id[:])
	// Atomic and synced: the id must be on disk before any checkpoint names it.
	if err := fsutil.WriteFileAtomic(fsys, filepath.Join(dir, logIDFile), data, 0o644); err != nil {
		return id, fmt.Errorf("write log id: %w", err)
	}
	return id, nil
}
