// Package wal is flumed's durable record log: checksummed records on top of
// github.com/tidwall/wal, with torn-tail repair before every open, corruption
// reported per record, and read-only scanning for `flumed wal inspect`,
// `verify` and `dump`.
//
// It knows nothing about events or channels: a record is an opaque payload
// at a log index. It must never deliver a record whose checksum failed, never
// report as durable (Sync returning nil) what a crash could take back, and
// never refuse to open because of damaged data: a torn tail is cut, keeping a
// copy, and any other damage is reported record by record to whoever reads it.
//
// # Files
//
// A log is one directory:
//
//	00000000000000000001          segment: records from index 1 on
//	00000000000000004242          segment: records from index 4242 on (the tail)
//	in_use.lock                   fsutil.LockDir: one open Log per directory
//	00000000000000004242.broken   evidence kept by a repair (".broken.1", ... after that)
//
// and, only after a crash, leftovers that Open resolves:
//
//	<segment>.START               tidwall TruncateFront, written whole and synced, not yet renamed
//	<segment>.END                 tidwall TruncateBack (flumed never calls it)
//	<segment>.START.TEMP, .END.TEMP   tidwall's temporary before that rename
//	<segment>.tmp                 repair's temporary before renaming a rewritten segment
//
// A segment is named by the index of its first entry, 20 decimal digits. An
// empty segment file ahead of the first non-empty one (never the last file)
// is a segment emptied by Release; Open removes it.
//
// # Segment format
//
// A segment has no header. It is a sequence of tidwall binary frames,
//
//	uvarint(len(entry)) entry
//
// (the uvarint is encoding/binary's: 7 bits per byte, low first, high bit set
// on all but the last byte). The k-th frame of segment S holds index S+k:
// tidwall stores no index and no checksum, so it cannot tell a torn frame from
// a short one, a run of zero bytes is to it a run of empty entries, and one
// flipped length bit re-frames everything after it. Hence every entry is a
// record of this package, little-endian:
//
//	off  len  field
//	0    1    version, 0x01
//	1    8    index: the log index it was written at
//	9    4    payload length n; must equal len(entry) - 17
//	13   4    CRC32C (Castagnoli) of bytes 0..12 followed by the payload
//	17   n    payload
//
// The record of payload "hi" at index 1 is the 20-byte frame
//
//	13                         uvarint 19 (= 17 + 2)
//	01                         version
//	01 00 00 00 00 00 00 00    index 1
//	02 00 00 00                payload length 2
//	84 72 f7 bf                CRC32C, little-endian (testdata/wal has a whole log)
//	68 69                      "hi"
//
// A record is intact when its version is 1, its length fields agree, its CRC
// matches and its index is the one its position gives. Anything else is never
// delivered: an empty entry (ErrEmpty), all zeros (ErrZeroed), another
// version (ErrVersion), a length mismatch (ErrLength), a CRC mismatch
// (ErrChecksum), an intact record at the wrong place (ErrIndex). Because the
// index is inside the checksum, a record re-framed to another position is
// caught too, and a reader that meets broken framing can find the next intact
// record by scanning for one whose index and CRC fit (ErrMissing for the
// indexes it skips).
//
// # What is synced when
//
// Append hands the frames to tidwall's WriteBatch with NoSync: one write(2)
// to the tail segment, nothing synced. When the tail reaches SegmentSize,
// tidwall fsyncs it, closes it and creates the next segment file; Append
// notices (it replays tidwall's cycling rule on the byte counts) and marks the
// directory dirty. Sync then fsyncs the directory if it is dirty (so the new
// segment names survive) and fdatasyncs the tail segment through the
// fsutil.FS seam, on a handle of its own (fsync flushes the file, whichever
// descriptor wrote it). Only then does Sync return nil: everything appended
// before it is durable. The channel batches many transactions into one
// Append and one Sync (group commit).
//
// TruncateFront (through tidwall) writes the rest of the segment it lands in
// to <index>.START.TEMP, fsyncs it, renames it to .START, removes the older
// segment files, renames .START to <index> and reopens the tail; flumed then
// syncs the directory before returning. Release empties whole segment files
// instead (ftruncate to 0 and fdatasync, oldest first, each before the next,
// so that the emptied files are always a prefix of the log), copying nothing.
// Repair syncs the .broken copy before it cuts, the cut segment before it
// returns, and the directory after every create, rename and remove.
//
// # What a crash leaves behind
//
//   - During Append: a tail that ends in part of a frame, or in zeros where
//     the file was extended but the data never written, or in a frame whose
//     payload is partly stale. Repair cuts it (it was never acknowledged).
//   - During a segment cycle: an empty or partial new segment, or, if the
//     directory entry was lost, no new segment at all; the records in it were
//     never acknowledged (Sync syncs the directory first). An empty new tail
//     opens as is; a partial one is cut like any torn tail.
//   - During TruncateFront: a .TEMP (removed: nothing happened), or a .START
//     with some older segments still present (the older ones are removed and
//     the .START renamed, as tidwall itself would, then the directory synced).
//   - During Release: a prefix of emptied segments (removed by Open; they held
//     only consumed records, so it does not matter how many were emptied).
//   - During repair: a .broken copy with the segment not yet cut, or a .tmp
//     not yet renamed; the next repair starts over and keeps another copy.
//
// # What is not assumed
//
// Not that a sector or a page is written atomically: any prefix of an
// append, in any state, is expected at the tail. Not that a failed fsync can
// be retried: after one, the kernel may have dropped the dirty pages and
// marked them clean, so the handle is dead (every call returns the sticky
// ErrFailed wrapping the cause) and the owner must Close and Open, which
// repairs from what is really on disk. The same holds for a failed write:
// tidwall's memory then no longer matches the file. Not that the directory is
// synced by tidwall: it never is, so this package does it. Not that
// tidwall's Read is safe: it mutates a cache, loads whole segments and fails
// a whole segment on one bad frame, so reads never go through it.
//
// # Repair (every Open, and Repair for "flumed wal repair")
//
// Before tidwall opens the directory: leftover .TEMP and .tmp files are
// removed; a pending .START or .END is finished as tidwall would; emptied
// segments are removed; the directory is synced. Then the last segment is
// scanned with this package's parser. Everything after its last intact record
// is a torn tail: the segment is copied to <segment>.broken (synced), cut to
// the end of that record (synced), and the directory synced. Damage before the
// last intact record is not a torn write but rot: if tidwall can still frame
// the segment the records stay and readers report them; if it cannot (a
// flipped length prefix), the segment is rewritten with an empty entry in
// place of each lost index, so that tidwall opens it and every later record
// keeps its index. What repair did is returned by Recovered and logged once.
//
// What survives: every intact record before the damage, always; every intact
// record after damage in the last segment, unless the damage is in the last
// record itself, which is indistinguishable from a torn write and is cut. A
// bad CRC in the last record is therefore dropped, while a bad CRC anywhere
// else is reported and skipped.
//
// Older segments are not read at open (restart cost does not grow with the
// backlog). A record damaged there, by a bad CRC or by a flipped length
// prefix, surfaces when it is read: the Reader returns a *CorruptionError for
// that index, finds the next intact record by its index and CRC, and goes on.
// tidwall never notices, because it parses only the last segment at open, and
// because TruncateFront checks a closed segment's framing before letting
// tidwall truncate inside it (a damaged one is refused with a
// *CorruptionError and stays until Release drops it whole).
//
// # Reading
//
// Readers open the segment files themselves, read-only, through a window
// buffer, so they share no state with the appender, never load a whole
// segment, and work on a copy of the directory (OpenReader, Inspect, Verify)
// as well as on a live Log (NewReader, Read). For each index a Reader returns
// one intact Record or one *CorruptionError, in order, then io.EOF.
//
// # Memory and costs
//
// tidwall keeps the whole tail segment in memory, its buffer growing by
// append: up to about 2×SegmentSize (default 16 MiB) counting the garbage its
// growth leaves, plus the batch being appended, plus 256 KiB per open Reader.
// tidwall's segment cache (SegmentCacheSize) is fixed at 1 and cleared at
// every cycle, because reads never use it: it could only hold memory.
//
// Restart reads the last segment once (repair scan, then tidwall's own load)
// and lists the directory; it does not grow with the number of segments.
//
// Dropping consumed records, measured with 16 MiB segments of 512-byte
// records while a writer appends and syncs one record at a time (2-core VM,
// BenchmarkTruncateFront in bench/wal_test.go):
//
//	tidwall TruncateFront at a segment start   32-41 ms per call, writer waits 31-39 ms
//	Log.TruncateFront at a segment start       54-72 ms per call, writer waits 44-66 ms
//	Log.Release of one whole segment           7-10 ms per call,  writer waits 4-6 ms
//
// (ranges over four runs on a shared machine; the writer's own Append+Sync is
// one fsync, 0.5-1 ms).
//
// TruncateFront copies the rest of the segment it lands in and fsyncs it
// while holding the lock Append and Sync take (and this package adds a
// directory sync and, outside the lock, a framing check of that segment).
// Release empties whole segments outside that lock; the writer only competes
// with it for the disk. It truncates through tidwall only where that copies
// little: when everything is consumed (nothing to copy), when the index lies
// in a tail segment of at most 1 MiB, or once 1024 emptied files have piled up
// (at most one segment, rarely).
package wal
