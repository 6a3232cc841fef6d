package flumefile

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/s2"
)

// Flume's checkpoint (EventQueueBackingStoreFactory, EventQueueBackingStoreFile,
// EventQueueBackingStoreFileV3, FlumeEventQueue.InflightEventWrapper):
//
//   - checkpoint: (capacity + 1029) big-endian longs. Long 0 is the version
//     (3), long 1 the write order id of the checkpoint, long 4 the marker (0
//     complete, 1 while a checkpoint is being written). From long 1029 on, a
//     circular queue of event pointers (file id << 32 | offset): the queued
//     event i is at long 1029 + (head + i) % capacity.
//   - checkpoint.meta: a delimited Checkpoint message (version, write order
//     id, which must equal long 1, queue size and head, reference counts of
//     the data files).
//   - inflightputs, inflighttakes: the transactions open at the checkpoint:
//     an MD5 of the rest, then per transaction its id, its pointer count and
//     its pointers, as longs.
//
// What Flume calls a bad checkpoint (BadCheckpointException) makes it restore
// the backup (useDualCheckpoints, when backupComplete is there) or else
// replay every data file from the start; anything else fails the channel.

const (
	checkpointName     = "checkpoint"
	checkpointMetaName = "checkpoint.meta"
	inflightPuts       = "inflightputs"
	inflightTakes      = "inflighttakes"
	backupComplete     = "backupComplete"
	lockName           = "in_use.lock"
	queueSetName       = "queueset"
	snappySuffix       = ".snappy"
	headerLongs        = 1029
	markerComplete     = 0
	defaultCapacity    = 1_000_000 // Flume's capacity default
)

// errBadCheckpoint is wrapped by the errors Flume answers with a restore or
// a full replay.
var errBadCheckpoint = errors.New("bad checkpoint")

func badCheckpoint(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadCheckpoint, fmt.Sprintf(format, args...))
}

// ckptFiles is a checkpoint directory as replay sees it: Flume's own, the
// backup Flume would copy into it, or none (full replay).
type ckptFiles struct {
	source string            // for the report: "checkpoint", "backup", "none"
	dir    string            // where the files are
	files  map[string]string // file name as in the checkpoint directory -> path
}

func (c ckptFiles) path(name string) string { return c.files[name] }

// primaryFiles lists Flume's checkpoint directory.
func primaryFiles(dir string) (ckptFiles, error) {
	c := ckptFiles{source: "checkpoint", dir: dir, files: map[string]string{}}
	for _, n := range []string{checkpointName, checkpointMetaName, inflightPuts, inflightTakes} {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p); err == nil {
			c.files[n] = p
		} else if !errors.Is(err, os.ErrNotExist) {
			return c, err
		}
	}
	return c, nil
}

// backupFiles lists what restoreBackup would copy from the backup directory
// (everything but backupComplete and the lock; a .snappy file stands for the
// file without the suffix).
func backupFiles(dir string) (ckptFiles, error) {
	c := ckptFiles{source: "backup", dir: dir, files: map[string]string{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return c, err
	}
	for _, e := range ents {
		n := e.Name()
		if n == backupComplete || n == lockName || e.IsDir() {
			continue
		}
		c.files[strings.TrimSuffix(n, snappySuffix)] = filepath.Join(dir, n)
	}
	return c, nil
}

func backupExists(dir string) bool {
	if dir == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(dir, backupComplete))
	return err == nil
}

// readCkptFile reads a checkpoint file, decompressing a backup Flume wrote
// with compressBackupCheckpoint (snappy-java's stream format).
func readCkptFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil || !strings.HasSuffix(path, snappySuffix) {
		return b, err
	}
	return unsnappyStream(b)
}

// snappyMagic starts a snappy-java SnappyOutputStream: the magic, then the
// format version and the oldest compatible version as big-endian ints;
// blocks follow, each a big-endian length and a raw snappy block.
var snappyMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

func unsnappyStream(b []byte) ([]byte, error) {
	if !bytes.HasPrefix(b, snappyMagic) || len(b) < 16 {
		return nil, fmt.Errorf("not a snappy-java stream")
	}
	var out []byte
	for b = b[16:]; len(b) > 0; {
		if len(b) < 4 {
			return nil, fmt.Errorf("snappy-java stream cut inside a block length")
		}
		n := int(binary.BigEndian.Uint32(b))
		if n < 0 || n > len(b)-4 {
			return nil, fmt.Errorf("snappy-java block of %d bytes, %d left", n, len(b)-4)
		}
		d, err := s2.Decode(nil, b[4:4+n])
		if err != nil {
			return nil, fmt.Errorf("snappy-java block: %w", err)
		}
		out = append(out, d...)
		b = b[4+n:]
	}
	return out, nil
}

// backingStore is the queue a checkpoint holds.
type backingStore struct {
	path       string // "" when there is no checkpoint
	capacity   int
	writeOrder int64 // replay applies the records written after it
	ptrs       []int64
	refs       map[int32]int32
}

// loadStore reads the checkpoint in c as EventQueueBackingStoreFactory.get
// would. capacity is what a new, empty checkpoint gets (the configured one);
// an existing checkpoint's capacity is read from its size.
func loadStore(c ckptFiles, dual bool, backupDir string, capacity int) (*backingStore, error) {
	ckpt, meta := c.path(checkpointName), c.path(checkpointMetaName)
	var data []byte
	if ckpt != "" {
		var err error
		if data, err = readCkptFile(ckpt); err != nil {
			return nil, err
		}
	}
	if meta != "" && (ckpt == "" || len(data) == 0) {
		return nil, badCheckpoint("%s exists but the checkpoint does not", meta)
	}
	if ckpt == "" {
		// A new checkpoint: Flume creates it, unless a backup should be
		// restored instead.
		if dual && backupExists(backupDir) {
			return nil, badCheckpoint("no checkpoint in %s but a backup in %s", c.dir, backupDir)
		}
		if capacity <= 0 {
			capacity = defaultCapacity
		}
		return &backingStore{capacity: capacity, refs: map[int32]int32{}}, nil
	}
	if meta == "" {
		if len(data) < 8 {
			return nil, fmt.Errorf("%s: empty checkpoint without metadata, which Flume cannot start with", ckpt)
		}
		if v := int32(binary.BigEndian.Uint64(data)); v == 2 {
			return nil, fmt.Errorf("%s: a version 2 checkpoint (Flume 1.2 and older), which flumed does not import", ckpt)
		}
		return nil, badCheckpoint("%s has no %s", ckpt, checkpointMetaName)
	}
	return parseStore(ckpt, data, meta)
}

func parseStore(ckpt string, data []byte, metaPath string) (*backingStore, error) {
	longs := len(data) / 8
	if len(data)%8 != 0 || longs <= headerLongs {
		return nil, badCheckpoint("%s: %d bytes is not the size of a checkpoint", ckpt, len(data))
	}
	long := func(i int) int64 { return int64(binary.BigEndian.Uint64(data[8*i:])) }
	st := &backingStore{path: ckpt, capacity: longs - headerLongs, refs: map[int32]int32{}}
	if v := long(0); v != 3 {
		return nil, badCheckpoint("%s: version %d, expected 3", ckpt, v)
	}
	if m := long(4); m != markerComplete {
		return nil, badCheckpoint("%s: marked incomplete: the agent stopped while the channel was checkpointing", ckpt)
	}
	mb, err := readCkptFile(metaPath)
	if err != nil {
		return nil, err
	}
	pos := 0
	msg, ok, err := delimited(mb, &pos)
	switch {
	case err != nil:
		return nil, badCheckpoint("%s: %v", metaPath, err)
	case !ok:
		return nil, badCheckpoint("%s is empty", metaPath)
	}
	m, err := parseCheckpointMeta(msg)
	switch {
	case err != nil:
		return nil, badCheckpoint("%s: %v", metaPath, err)
	case m.Version != 3:
		return nil, badCheckpoint("%s: version %d, expected 3", metaPath, m.Version)
	case m.WriteOrder != long(1):
		return nil, badCheckpoint("%s: write order id %d, the checkpoint's is %d", metaPath, m.WriteOrder, long(1))
	case m.QueueSize > int32(st.capacity):
		return nil, fmt.Errorf("%s: queue size %d is more than the checkpoint's capacity %d", metaPath, m.QueueSize, st.capacity)
	}
	st.writeOrder = m.WriteOrder
	for _, a := range m.ActiveLogs {
		st.refs[a.FileID] = a.Count
	}
	// The queued pointers, as FlumeEventQueue's constructor reads them (Java
	// int arithmetic: a negative head fails, a size past the capacity wraps).
	capacity := int32(st.capacity)
	st.ptrs = make([]int64, 0, max(0, min(int(m.QueueSize), st.capacity)))
	for i := int32(0); i < m.QueueSize; i++ {
		phys := headerLongs + int((m.QueueHead+i)%capacity)
		if phys < headerLongs {
			return nil, fmt.Errorf("%s: queue head %d out of range, which Flume cannot start with", metaPath, m.QueueHead)
		}
		st.ptrs = append(st.ptrs, long(phys))
	}
	return st, nil
}

// readInflights reads inflightputs or inflighttakes (missing: none). A
// checksum mismatch is a bad checkpoint.
func readInflights(c ckptFiles, name string) (*javaMultimap, error) {
	m := newJavaMultimap()
	path := c.path(name)
	if path == "" {
		return m, nil
	}
	b, err := readCkptFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return m, nil
	}
	var want [md5.Size]byte
	copy(want[:], b)
	rest := b[min(len(b), md5.Size):]
	if md5.Sum(rest) != want {
		return nil, badCheckpoint("%s: checksum differs from the one expected", path)
	}
	r := bytes.NewReader(rest[:len(rest)/8*8])
	long := func() (int64, bool) {
		var v int64
		err := binary.Read(r, binary.BigEndian, &v)
		return v, err == nil
	}
	for {
		txn, ok := long()
		if !ok {
			return m, nil
		}
		n, ok := long()
		if !ok {
			return m, nil
		}
		for i := int32(0); i < int32(n); i++ {
			v, ok := long()
			if !ok {
				return m, nil
			}
			m.put(txn, v)
		}
	}
}
