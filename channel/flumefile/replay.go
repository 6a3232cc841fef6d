package flumefile

import (
	"errors"
	"fmt"
	"os"
)

// Replay: what Flume's Log.replay and ReplayHandler.replayLog (the "v2"
// replay, Flume's default) compute when Flume restarts: the queue at the
// checkpoint, then every record written after it, read from all data files
// merged in write order, then the takes open at the checkpoint put back at
// the head.

// Options are the Flume channel's settings that replay depends on.
type Options struct {
	CheckpointDir string
	// BackupCheckpointDir is useDualCheckpoints' backup directory; "" when
	// dual checkpoints are off (a bad checkpoint then means a full replay).
	BackupCheckpointDir string
	// DataDirs are all of dataDirs: Flume spreads its data files over them.
	DataDirs []string
	// Capacity is the queue capacity of a channel that has no checkpoint
	// (an existing checkpoint's capacity is read from its size); 0 means
	// Flume's default.
	Capacity int
	// FsyncPerTransaction is Flume's key of that name. When false, Flume
	// steps over corrupt records (the rest of that data file during replay,
	// the one event at a take); when true (its default) it fails on them,
	// and so does the import.
	FsyncPerTransaction bool
}

// Report says what replay found, in Flume's terms.
type Report struct {
	Logs []string // data files, in file id order
	// Checkpoint is where the queue came from: "checkpoint", "backup"
	// (Flume restores backupCheckpointDir) or "none" (a full replay of every
	// data file); BadCheckpoint says why the checkpoint was not used.
	Checkpoint, BadCheckpoint string
	CheckpointWriteOrder      int64 // records after this one are replayed
	Capacity                  int
	AtCheckpoint              int // events queued at the checkpoint
	InflightPuts              int // events of put transactions open at the checkpoint
	InflightTakes             int // events of take transactions open at the checkpoint
	// Replay counts, as Flume logs them.
	Read, Puts, Takes, Rollbacks, Commits, Skipped int
	// PendingTakes are committed takes whose put was never committed: Flume
	// logs them and goes on.
	PendingTakes int
	// Queued is the number of events replay leaves queued.
	Queued int
	// OverCapacity counts open takes Flume would have dropped putting them
	// back into a full queue (a Flume bug); flumed keeps them.
	OverCapacity int
	// OrderMayDiffer is set when the order of events of open transactions
	// depends on Java hash-table trees this reader does not reproduce.
	OrderMayDiffer bool
}

// replay computes the queue Flume would restart with.
func replay(o Options, logs []logFile, rep *Report) (*eventQueue, error) {
	primary, err := primaryFiles(o.CheckpointDir)
	if err != nil {
		return nil, err
	}
	dual := o.BackupCheckpointDir != ""
	q, err := replayFrom(o, primary, logs, rep)
	if err == nil || !errors.Is(err, errBadCheckpoint) {
		return q, err
	}
	// Flume's answer to a bad checkpoint: the backup, else everything.
	rep.BadCheckpoint = err.Error()
	fallback := ckptFiles{source: "none", dir: o.CheckpointDir, files: map[string]string{}}
	if dual && backupExists(o.BackupCheckpointDir) {
		if fallback, err = backupFiles(o.BackupCheckpointDir); err != nil {
			return nil, err
		}
	}
	*rep = Report{Logs: rep.Logs, BadCheckpoint: rep.BadCheckpoint}
	q, err = replayFrom(o, fallback, logs, rep)
	if err != nil && errors.Is(err, errBadCheckpoint) {
		return nil, fmt.Errorf("after restoring the %s: %w", fallback.source, err)
	}
	return q, err
}

func replayFrom(o Options, c ckptFiles, logs []logFile, rep *Report) (*eventQueue, error) {
	st, err := loadStore(c, o.BackupCheckpointDir != "", o.BackupCheckpointDir, o.Capacity)
	if err != nil {
		return nil, err
	}
	puts, err := readInflights(c, inflightPuts)
	if err != nil {
		return nil, err
	}
	takes, err := readInflights(c, inflightTakes)
	if err != nil {
		return nil, err
	}
	rep.Checkpoint = c.source
	if st.path == "" && c.source == "checkpoint" {
		rep.Checkpoint = "none"
	}
	rep.CheckpointWriteOrder, rep.Capacity, rep.AtCheckpoint = st.writeOrder, st.capacity, len(st.ptrs)
	rep.InflightPuts, rep.InflightTakes = puts.size(), takes.size()
	rep.OrderMayDiffer = puts.treed() || takes.treed()

	q := newEventQueue(st.capacity, st.ptrs, st.refs)
	h := replayHandler{q: q, last: st.writeOrder, takes: takes, rep: rep,
		txns: make(map[int64][]int64), pending: make(map[int64]int)}
	// Transactions open at the checkpoint: their puts wait for a commit.
	puts.each(func(k int64, vs []int64) { h.txns[k] = append(h.txns[k], vs...) })
	if err := h.run(logs, o.FsyncPerTransaction); err != nil {
		return nil, err
	}
	q.replayComplete()
	// Takes open at the checkpoint and not committed since return to the head.
	var addErr error
	takes.each(func(_ int64, vs []int64) {
		for _, v := range vs {
			if addErr != nil {
				return
			}
			full, err := q.addHead(v)
			if full {
				rep.OverCapacity++
			}
			addErr = err
		}
	})
	if addErr != nil {
		return nil, fmt.Errorf("returning open takes to the queue: %w", addErr)
	}
	for _, n := range h.pending {
		rep.PendingTakes += n
	}
	rep.Queued = q.size
	return q, nil
}

type replayHandler struct {
	q       *eventQueue
	last    int64             // the checkpoint's write order id
	txns    map[int64][]int64 // open transactions' pointers (commons MultiValueMap)
	takes   *javaMultimap     // takes open at the checkpoint
	pending map[int64]int     // committed takes of puts not (yet) committed
	rep     *Report
}

// run merges the records of every data file in write order (a Java
// PriorityQueue of one record per file) and applies those after the
// checkpoint.
func (h *replayHandler) run(logs []logFile, strict bool) error {
	readers := make(map[int32]*seqReader)
	defer func() {
		for _, r := range readers {
			r.w.close()
		}
	}()
	var pq recordHeap
	for _, lf := range logs {
		r, err := openSeqReader(lf, strict)
		if err != nil {
			return err
		}
		if r == nil {
			continue // an empty file Flume ignores
		}
		r.skipTo(h.last)
		if _, dup := readers[r.meta.LogFileID]; dup {
			r.w.close()
			return fmt.Errorf("%s: another data file already has log file id %d", lf.path, r.meta.LogFileID)
		}
		readers[r.meta.LogFileID] = r
		rec := new(record)
		ok, err := r.next(rec)
		if err != nil {
			return err
		}
		if !ok {
			r.w.close()
			delete(readers, r.meta.LogFileID)
			continue
		}
		pq.offer(rec)
	}
	for {
		rec := pq.poll()
		if rec == nil {
			return nil
		}
		if r := readers[rec.fileID]; r != nil {
			nxt := new(record)
			ok, err := r.next(nxt)
			if err != nil {
				return err
			}
			if ok {
				pq.offer(nxt)
			}
		}
		if err := h.apply(rec); err != nil {
			return fmt.Errorf("replaying log-%d offset %d: %w", rec.fileID, rec.offset, err)
		}
	}
}

// openSeqReader opens lf for replay; nil when Flume skips it (an empty file
// without usable metadata).
func openSeqReader(lf logFile, strict bool) (*seqReader, error) {
	mp := lf.path + metaSuffix
	if lf.size > 0 {
		// Flume opens a random reader on every data file first, which needs
		// the .meta (a .meta.tmp is only renamed later).
		if _, err := os.Stat(mp); err != nil {
			return nil, fmt.Errorf("%s: no %s, which Flume cannot start with: %w", lf.path, metaSuffix, err)
		}
	} else if mp = metaPath(lf.path); mp == "" {
		return nil, nil
	}
	st, err := os.Stat(mp)
	if err != nil {
		return nil, err
	}
	if st.Size() == 0 {
		if lf.size != 0 {
			return nil, fmt.Errorf("%s is empty but %s has %d bytes", mp, lf.path, lf.size)
		}
		return nil, nil
	}
	m, err := readLogMeta(lf.path, mp)
	if err != nil {
		return nil, err
	}
	w, err := openWindow(lf.path)
	if err != nil {
		return nil, err
	}
	return &seqReader{file: lf, meta: m, w: w, strict: strict}, nil
}

func (h *replayHandler) apply(rec *record) error {
	h.rep.Read++
	if rec.hdr.WriteOrder <= h.last {
		h.rep.Skipped++
		return nil
	}
	txn := rec.hdr.TxnID
	switch rec.typ {
	case typePut:
		h.rep.Puts++
		h.txns[txn] = append(h.txns[txn], int64(rec.fileID)<<32|int64(uint32(rec.offset)))
	case typeTake:
		h.rep.Takes++
		if rec.take.Offset < 0 {
			return fmt.Errorf("take of log-%d at negative offset %d", rec.take.FileID, rec.take.Offset)
		}
		h.txns[txn] = append(h.txns[txn], int64(rec.take.FileID)<<32|int64(uint32(rec.take.Offset)))
	case typeRollback:
		h.rep.Rollbacks++
		delete(h.txns, txn)
	case typeCommit:
		h.rep.Commits++
		ptrs := h.txns[txn]
		delete(h.txns, txn)
		if rec.commit == typeTake && h.takes.has(txn) {
			ptrs = append(ptrs, h.takes.removeAll(txn)...)
		}
		if len(ptrs) > 0 {
			return h.commit(rec.commit, ptrs)
		}
	}
	return nil
}

func (h *replayHandler) commit(typ int16, ptrs []int64) error {
	switch typ {
	case typePut:
		for _, p := range ptrs {
			if err := h.q.addTail(p); err != nil {
				return err
			}
			if h.pending[p] > 0 {
				// Its take was committed first (another data directory).
				if h.pending[p]--; h.pending[p] == 0 {
					delete(h.pending, p)
				}
				ok, err := h.q.remove(p)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("pending take of %s could not be removed", pointerString(p))
				}
			}
		}
	case typeTake:
		for _, p := range ptrs {
			ok, err := h.q.remove(p)
			if err != nil {
				return err
			}
			if !ok {
				h.pending[p]++
			}
		}
	default:
		return fmt.Errorf("commit of unknown record type %#x", typ)
	}
	return nil
}

// recordHeap is java.util.PriorityQueue<LogRecord>: the same binary heap,
// so that records comparing equal come out in Flume's order too.
type recordHeap []*record

// replayOrder is LogRecord's order: write order id, then transaction id,
// then the index Arrays.binarySearch gives the type in {TAKE, PUT, ROLLBACK,
// COMMIT} (an unsorted array: TAKE finds -3, PUT 1, ROLLBACK 2, COMMIT 3).
func replayOrder(a, b *record) int {
	switch {
	case a.hdr.WriteOrder != b.hdr.WriteOrder:
		return cmpInt64(a.hdr.WriteOrder, b.hdr.WriteOrder)
	case a.hdr.TxnID != b.hdr.TxnID:
		return cmpInt64(a.hdr.TxnID, b.hdr.TxnID)
	}
	return cmpInt64(int64(typeRank(a.typ)), int64(typeRank(b.typ)))
}

func typeRank(t int16) int {
	switch t {
	case typeTake:
		return -3
	case typePut:
		return 1
	case typeRollback:
		return 2
	default:
		return 3
	}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (h *recordHeap) offer(r *record) {
	q := append(*h, r)
	k := len(q) - 1
	for k > 0 {
		parent := (k - 1) / 2
		if replayOrder(r, q[parent]) >= 0 {
			break
		}
		q[k] = q[parent]
		k = parent
	}
	q[k] = r
	*h = q
}

func (h *recordHeap) poll() *record {
	q := *h
	if len(q) == 0 {
		return nil
	}
	result := q[0]
	n := len(q) - 1
	x := q[n]
	q = q[:n]
	if n > 0 {
		k, half := 0, n/2
		for k < half {
			child := 2*k + 1
			c := q[child]
			if right := child + 1; right < n && replayOrder(c, q[right]) > 0 {
				child = right
				c = q[child]
			}
			if replayOrder(x, c) <= 0 {
				break
			}
			q[k] = c
			k = child
		}
		q[k] = x
	}
	*h = q
	return result
}
