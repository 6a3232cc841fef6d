// Package flumefile reads the backlog of an Apache Flume file channel (Flume
// 1.11, data format version 3) exactly as Flume's own restart would: the
// checkpoint, the transactions open at it, and a replay of the data records
// written after it; the result is the list of events Flume would deliver, in
// the order it would deliver them. The file channel uses it to import a
// Flume channel's backlog into its own log (channel/file_import.go), and
// `flumed wal inspect` to report on a Flume directory.
//
// It is read-only on Flume's files: it never writes, renames, creates,
// deletes or locks anything in Flume's directories, even where Flume itself
// would (Flume renames a data file's leftover .meta.tmp into place, deletes a
// bad checkpoint, copies its backup over it, writes a new checkpoint after
// replay); it computes what Flume would see after those steps instead.
//
// # Files
//
// checkpointDir (checkpoint.go):
//
//	checkpoint        (capacity+1029) big-endian int64s: [0] version 3, [1] write
//	                  order id, [4] 0 when complete, 1 while being written; from
//	                  [1029], a circular queue of pointers fileID<<32 | offset
//	checkpoint.meta   delimited Checkpoint{version, writeOrderID, queueSize,
//	                  queueHead, activeLogs{logFileID, count}}
//	inflightputs      MD5 of the rest, then per open transaction: id, n, n pointers
//	inflighttakes     the same for take transactions
//
// backupCheckpointDir (useDualCheckpoints): a copy of those, valid when it
// holds backupComplete; checkpoint.snappy when compressBackupCheckpoint.
//
// dataDirs (logfile.go): log-<id>, ids global across the directories:
//
//	record   0x7F, big-endian int32 length n, n bytes of payload
//	payload  delimited TransactionEventHeader{type 1 put, 2 take, 3 rollback,
//	         4 commit; transactionID; writeOrderID}, delimited body (Put{event
//	         {headers{key, value}, body}, CRC32 of the body}, Take{fileID,
//	         offset}, Rollback{}, Commit{type}), delimited empty footer
//	0x80     OP_EOF: unused space (files grow by 1 MiB of 0x80)
//	0x00     OP_NOOP: a record blanked by Flume's integrity tool, skipped
//
// and log-<id>.meta, a delimited LogFileMetaData{version 3, logFileID,
// checkpointPosition and checkpointWriteOrderID (where replay may start),
// backupCheckpointPosition and its write order id, encryption}.
//
// # Replay (replay.go)
//
// The queue starts as the checkpoint's. The records of every data file,
// from each file's checkpoint position, are merged by write order id (then
// transaction id, then take, put, rollback, commit); those written after the
// checkpoint are applied: puts and takes join their transaction, a rollback
// drops it, a put commit adds its pointers at the tail (after the
// transaction's puts from inflightputs), a take commit removes them (a take
// of a put not yet committed waits for it: several data directories). Then
// the takes still open go back to the head. A bad checkpoint (incomplete,
// mismatched metadata, a wrong inflight checksum...) is answered as Flume
// answers it: the backup is restored, or every data file is replayed.
//
// # Damage
//
// Where Flume goes on, this package goes on, the same way: OP_EOF or an
// unknown op code ends a file, a blanked record is skipped, a file ending
// inside a record's length ends there; with fsyncPerTransaction=false a
// corrupt record (bad length, truncated, unparsable, checksum mismatch) ends
// its file during replay and is skipped at delivery. Where Flume fails (the
// same damage with fsyncPerTransaction=true, Flume's default; unknown record
// types; missing metadata; a queued event in no data file), Open or Events
// fails with a *CorruptError naming the file and offset, or an error naming
// the file. Encrypted data files fail with *EncryptedError: flumed cannot
// decrypt them.
//
// Two departures, both reported in Report: takes Flume would lose putting
// them back into a full queue are kept (OverCapacity), and the order of the
// events of an open transaction may differ from Flume's in the one case
// where Java would have turned a hash bucket into a tree (OrderMayDiffer).
package flumefile
