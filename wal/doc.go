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
//	00000000000000004242          the tail segment: records from index 4242 on
//	sealed/00000000000000000001   sealed segments: every segment before the tail
//	sealed/00000000000000000019
//	manifest                      the list of sealed segments (below)
//	in_use.lock                   fsutil.LockDir: one open Log per directory
//	00000000000000004242.broken   evidence kept by a repair (".broken.1", ... after that)
//
// and, only after a crash, leftovers that Open resolves:
//
//	<segment> besides the tail    a roll a crash interrupted
//	<segment>.tmp, manifest.tmp   temporaries before renaming a rewritten file
//
// A segment is named by the index of its first entry, 20 decimal digits.
// tidwall sees only the log directory, which holds one segment: tidwall's
// Open lists it and loads that tail, and never cycles segments itself (its
// SegmentSize is out of reach). When the tail reaches SegmentSize, Append
// rolls: the tail is sealed into sealed/ and a new, empty tail is created,
// then tidwall is reopened on it. So opening a log costs the same whatever
// the number of segments: the log directory holds a handful of names, and
// the manifest says what sealed/ holds without listing it.
//
// # Manifest format
//
// The manifest is a sequence of 32-byte entries, little-endian:
//
//	off  len  field
//	0    1    kind: 1 header, 2 seal, 3 front, 4 gone
//	1    3    zero
//	4    8    a
//	12   8    b
//	20   8    c
//	28   4    CRC32C (Castagnoli) of bytes 0..27
//
//	header  a = 0x316e616d6c617766 ("fwalman1"), b = 1 (version); first entry only
//	seal    the segment holding indexes [a, b) is sealed/<a>, c bytes long
//	front   a is the first index: every record before it was released
//	gone    every sealed segment ending at or before a has been removed
//
// Seals follow each other (each starts where the last ends); a seal at or
// before an earlier one replaces it and those after it. The live sealed
// segments are the seals ending after the greatest front; FirstIndex is that
// front or the first live segment's first index, whichever is greater.
// Entries are appended with one write(2) each, so a crash tears at most the
// last one. Release compacts the file (rewritten whole: temp, sync, rename,
// directory sync) once it holds 64 entries more than twice what is needed, so
// its size follows the number of live segments, not the log's history; a
// clean Close rewrites it whole if it was appended to, so that the next Open
// reads it with one request rather than one per block its appends scattered.
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
// to the tail segment, nothing synced. A batch that fills the tail is split
// there (tidwall's own rule: a segment ends with the entry that reaches
// SegmentSize) and the log rolls between the parts:
//
//  1. the tail's data is fdatasynced, so a sealed segment is whole;
//  2. the first time, sealed/ and the manifest are created and the log
//     directory synced, before anything is moved there;
//  3. the new tail file <next> is created;
//  4. the seal is appended to the manifest;
//  5. the old tail is renamed to sealed/<name>, and readers see it there;
//  6. tidwall is closed and reopened on the log directory, which now holds
//     only the new, empty tail.
//
// None of that but step 1 (and step 2, once) syncs anything. Sync then syncs
// sealed/ (if a segment was sealed since the last Sync) before the log
// directory (if a file was created or renamed), so that a segment's new name
// is durable before the removal of its old one; then the manifest, then the
// tail segment's data (fdatasync, through the fsutil.FS seam, on a handle of
// its own: fsync flushes the file, whichever descriptor wrote it). Only then
// does Sync return nil: everything appended before it is durable. The channel
// batches many transactions into one Append and one Sync (group commit).
//
// Release (and TruncateFront, which is Release with an exact front) appends
// the new front to the manifest and syncs it, takes the released segments
// out of readers' view, removes their files from sealed/, syncs sealed/, and
// appends a gone entry (unsynced: if it is lost, Open removes them again).
// It never holds the lock Append and Sync take, and copies nothing. When
// everything is consumed it rolls first, under that lock, so that the tail
// goes too. Repair syncs the .broken copy before it cuts, the cut segment
// before it returns, and the directories after every create, rename and
// remove.
//
// # What a crash leaves behind
//
//   - During Append: a tail that ends in part of a frame, or in zeros where
//     the file was extended but the data never written, or in a frame whose
//     payload is partly stale. Repair cuts it (it was never acknowledged).
//   - During a roll, after a process crash: a prefix of steps 1-6. The old
//     tail is whole (step 1) and still in the log directory, or already in
//     sealed/ (a rename is atomic); a new tail may exist, empty; the manifest
//     may or may not have the seal. After a power loss, any subset of steps
//     3-5 may have reached the disk, in any order: the old tail in the log
//     directory, in sealed/, or, on a file system that splits a rename, under
//     both names; the new tail there or not; the seal there, or torn, or not.
//     The records of the new tail were never acknowledged (Sync syncs the log
//     directory first).
//   - During Release: the front recorded and some released files not yet
//     removed (the manifest lists them as released, not gone: Open removes
//     them); or, after a power loss that undid a roll, a released tail back
//     in the log directory (it opens empty, below the front, and is sealed
//     again by the next roll).
//   - During compaction: a manifest.tmp (removed), the manifest old or new.
//   - During repair: a .broken copy with the segment not yet cut, or a .tmp
//     not yet renamed; the next repair starts over and keeps another copy.
//
// Open trusts the manifest only when it agrees with the log directory: the
// directory holds exactly one segment (the tail), the manifest's header and
// every entry but a torn last one check, and its last live seal ends where
// the tail begins. Otherwise (a segment besides the tail, no tail, a seal
// missing, a manifest missing or damaged) it lists sealed/ once and rebuilds
// the list from the names there, each segment ending where the next begins,
// the last where the tail begins: the files are the truth, the manifest an
// index of them. In that rebuild a segment under two names (one file) keeps
// the sealed/ one; two different files under one name keep the log
// directory's and set the other aside as .broken; a segment in the log
// directory besides the tail is moved into sealed/; with no tail left, the
// last sealed segment moves back to be the tail; sealed segments wholly
// before the manifest's front are removed; a sealed file at or past the tail
// is set aside. So no record is lost (every acknowledged record is in a
// segment file, and every segment file is found) and none is delivered twice
// (each index is in one segment of the list). If the manifest was lost with
// its front, released segments still on disk come back as records: the
// channel's checkpoint lies above them, so they are not delivered again.
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
// Before tidwall opens the directory: leftover .tmp files are removed; the
// layout is resolved as described
// above (on a clean directory: nothing to do, nothing listed in sealed/);
// the directories are synced after any change. Then the tail is scanned with
// this package's parser. Everything after its last intact record
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
// Sealed segments are not read at open (restart cost does not grow with the
// backlog), and tidwall never reads them at all. A record damaged there, by a
// bad CRC or by a flipped length prefix, surfaces when it is read: the
// Reader returns a *CorruptionError for that index, finds the next intact
// record by its index and CRC, and goes on. A sealed segment file that is
// missing although the manifest lists it reads as ErrMissing records up to
// the next segment.
//
// # Reading
//
// Readers open the segment files themselves, read-only, through a window
// buffer, so they share no state with the appender, never load a whole
// segment, and work on a copy of the directory (OpenReader, Inspect, Verify,
// which list the log directory and sealed/) as well as on a live Log
// (NewReader, Read, which find a segment in the Log's list and open it
// wherever it is at that moment: a roll moves a file and publishes its new
// place as one step). A file Release removes stays readable to a reader that
// has it open. For each index a Reader returns one intact Record or one
// *CorruptionError, in order, then io.EOF.
//
// # Memory and costs
//
// tidwall keeps the whole tail segment in memory, its buffer growing by
// append: up to about 2×SegmentSize (default 16 MiB) counting the garbage its
// growth leaves, plus the batch being appended, plus 256 KiB per open Reader.
// It forgets the tail at every roll. The list of sealed segments costs about
// 50 bytes per segment in memory and 32 in the manifest.
//
// Open reads the log directory's few names, the manifest and the tail segment
// (the repair scan, then tidwall's own load), and nothing in sealed/: its
// cost does not grow with the number of segments. A reader's first Next
// opens the one segment holding its index. Segments, Stats, FirstIndex and
// LastIndex touch no file.
//
// A roll costs one fdatasync of the tail (as tidwall's own cycling did), a
// file creation, a rename and tidwall's reopen of a directory holding one
// empty segment, under the lock Append and Sync take; the Sync after it syncs
// sealed/, the log directory and the manifest besides the tail. Release costs
// a manifest sync, one unlink per segment and a sync of sealed/, none of it
// under that lock; it copies nothing, and neither does TruncateFront.
package wal
