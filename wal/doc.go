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
// This comment is the on-disk format. FORMAT.md is the argument that the
// package keeps those promises: what is synced when, what a crash at each
// step leaves behind and how Open resolves it, what is not assumed, and what
// memory and restart cost.
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
// and, only after a crash, leftovers that Open resolves (FORMAT.md):
//
//	<segment> besides the tail    a roll whose move into sealed/ did not reach the disk
//	<segment>.tmp, manifest.tmp   temporaries of an atomic rewrite, not yet renamed
//
// A segment is named by the index of its first entry, 20 decimal digits; the
// k-th entry of segment S holds index S+k. tidwall sees only the log
// directory, which holds one segment: tidwall's Open lists it and loads that
// tail, and never cycles segments itself (its SegmentSize is out of reach).
// When the tail reaches SegmentSize, Append rolls: the tail is sealed (moved
// into sealed/ and listed in the manifest), a new, empty tail is created, and
// tidwall is reopened on it. So the log directory holds a handful of names
// whatever the size of the log, and the manifest says what sealed/ holds
// without listing it.
//
// Space is given back in whole sealed segments only. Release and
// TruncateFront record a new first index (the front) in the manifest and
// remove the sealed segments wholly before it; records before the front in
// the segment holding it stay on disk, unreadable, until that segment goes
// too. Nothing is copied, and no segment is cut at the front.
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
// front or the first live segment's first index, whichever is greater. A
// seal that ends at or before the front but after the greatest gone names a
// released segment whose file may still exist. The file grows by appended
// entries and is now and then rewritten whole with only what is still
// needed: the header, the front, the gone mark and the seals not yet gone
// (testdata/wal/manifest.hex is one).
//
// # Segment format
//
// A segment has no header. It is a sequence of tidwall binary frames,
//
//	uvarint(len(entry)) entry
//
// (the uvarint is encoding/binary's: 7 bits per byte, low first, high bit set
// on all but the last byte). tidwall stores no index and no checksum, so it
// cannot tell a torn frame from a short one, a run of zero bytes is to it a
// run of empty entries, and one flipped length bit re-frames everything after
// it. Hence every entry is a record of this package, little-endian:
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
// indexes it skips). Repair writes an empty entry as the placeholder of a
// record it could not save, so that later records keep their indexes.
//
// # Reading
//
// Readers open the segment files themselves, read-only, through a window
// buffer, never through tidwall (whose Read mutates a cache and loads whole
// segments), so they share no state with the appender. They work on a copy
// of the directory (OpenReader, Inspect, Verify, which list the log directory
// and sealed/) as well as on a live Log (NewReader, Read, which find a
// segment in the Log's list and open it wherever it is at that moment: a roll
// moves a file and publishes its new place as one step). A file Release
// removes stays readable to a reader that has it open. For each index a
// Reader returns one intact Record or one *CorruptionError, in order, then
// io.EOF.
package wal
