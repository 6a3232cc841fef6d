package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/fsutil"
)

// "flumed wal inspect|verify|dump|repair": an operator's look at a file
// channel's directories. Everything but repair is read-only: no byte, name or
// lock is changed, so the commands work on a stopped channel, on a copy, and
// beside a running agent (which they name). The work is in channel
// (InspectFile, VerifyFile, Events) and wal (Repair); this file parses flags
// and prints.

// Exit codes of the wal commands (main maps any other error to 1).
const (
	exitDamage = 1 // verify or dump found damaged records
	exitUsage  = 2 // bad flags or arguments; DIR missing or not a channel
)

func newWalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wal",
		Short: "Inspect, verify, dump or repair a file channel's write-ahead log",
		Long: `Look at a file channel's directories: what is queued, whether every record is
intact, which events a restart would deliver. inspect, verify and dump never
change a file and work while the agent is stopped or running (a running agent
is named by its pid, and its figures may move). repair needs the agent stopped.

Exit codes: 0 ok; 1 damage found (verify, dump) or the command failed;
2 usage error, or DIR does not exist or is not a file channel.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErr("unknown wal command %q (inspect, verify, dump or repair)", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	// Flag errors of every wal command are usage errors: exit 2.
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{exitUsage, err} })
	cmd.AddCommand(newWalInspectCmd(), newWalVerifyCmd(), newWalDumpCmd(), newWalRepairCmd())
	return cmd
}

// anyArgs leaves argument checks to dirFlags.resolve, which knows about -c.
func anyArgs(*cobra.Command, []string) error { return nil }

func newWalInspectCmd() *cobra.Command {
	var (
		df     dirFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "inspect DIR | -c FILE [-n AGENT] [--channel NAME]",
		Short: "Report what a file channel holds: queue, checkpoint, segments, times, durability, damage",
		Long: `Report what a file channel holds, as a restart would see it: events queued
and their sequence numbers, the bytes they occupy, the data log's segments
(sizes and record ranges), the checkpoint (floor, acknowledged ranges, both
slots), the commit times of the oldest and newest queued events, the
durability mode that wrote the log, and any damage found. It reads the last
segment and the checkpoint only, whatever the backlog.

` + dirsHelp + `

--json prints one object. Its field names are stable (fields may be added,
never renamed): data_dir, checkpoint_dir, locked, lock_pid (0 if unknown),
log_id, queued_events, queued_bytes, floor, next (sequence numbers: the queue
is [floor, next) minus acked_ranges), floor_index (log record of the floor),
acked_ranges [{start, end}] (end excluded), oldest_commit, newest_commit
(RFC 3339 UTC, null when nothing is queued), durability
("fsyncPerTransaction", "fsyncInterval" or "" for an empty log),
checkpoint {source, generation, written, floor, floor_index, floor_offset,
next, acked_ranges}, slots [{path, generation, written, error}],
log {first_index, last_index, records, bytes, segments [{name, first, last,
bytes, place}], released, temps, broken, unsealed, strays, manifest,
torn_tail {segment, offset, index, error} or null, torn_bytes},
damage [text], notes [text], flume (null, or the object below).

On directories holding an Apache Flume file channel's files, inspect reads
them as Flume's restart would (checkpoint, replay of the log after it) and
reports the events queued, the first in line, and how the file channel will
import them; it exits 1 when they cannot be imported. With --json it prints
one object: format ("flume"), checkpoint_dir, backup_checkpoint_dir,
data_dirs, files, locked, lock_pid, queued_events, checkpoint ("checkpoint",
"backup" or "none"), bad_checkpoint, write_order_id, capacity,
queued_at_checkpoint, replay {read, puts, takes, rollbacks, commits, skipped,
pending_takes}, oldest {file, offset, headers, body_b64} or null, importable,
error, import_under_way ("", "importing", "imported"), import (text).`,
		Args: anyArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dirs, err := df.resolve(args, true)
			if err != nil {
				return err
			}
			if dirs.Flume {
				return runFlumeInspect(cmd.OutOrStdout(), dirs, asJSON)
			}
			rep, err := channel.InspectFileDirs(dirs.file())
			if err != nil {
				return fmt.Errorf("inspect %s: %w", dirs.Data, err)
			}
			// Flume's files beside flumed's log: an import to come or under way.
			fr, err := inspectFlume(dirs)
			if err != nil {
				return fmt.Errorf("inspect %s: %w", dirs.Data, err)
			}
			if asJSON {
				j := toInspectJSON(rep)
				j.Flume = toFlumeJSON(fr)
				return writeJSON(cmd.OutOrStdout(), j)
			}
			writeInspect(cmd.OutOrStdout(), rep, dirs.How, time.Now())
			if fr != nil {
				fmt.Fprintln(cmd.OutOrStdout())
				writeFlume(cmd.OutOrStdout(), fr, "")
			}
			return nil
		},
	}
	df.register(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object (fields listed above)")
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// noteLock tells on stderr that a running agent holds the directories: what
// is read may be mid-write (a record being appended reads as a torn tail).
func noteLock(w io.Writer, dirs channelDirs) {
	for _, d := range []string{dirs.Data, dirs.Checkpoint} {
		if d == "" {
			continue
		}
		if locked, pid, err := fsutil.Probe(d); err == nil && locked {
			fmt.Fprintf(w, "note: %s is %s; reading anyway (records being written may show as a torn tail)\n", d, lockedBy(pid))
			return
		}
	}
}
