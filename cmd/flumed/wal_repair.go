package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flumed/flumed/internal/fsutil"
	"github.com/flumed/flumed/wal"
)

func newWalRepairCmd() *cobra.Command {
	var (
		df     dirFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "repair DIR | -c FILE [-n AGENT] [--channel NAME]",
		Short: "Repair the data log as the channel's next open would (agent stopped)",
		Long: `Repair the data log as the file channel's next open would, and report what
changed: cut a torn tail (keeping a <segment>.broken copy), finish a segment
roll a crash interrupted, remove released segments and temporary leftovers.
Damage in the middle of the log is reported, never cut: the channel skips
those records. Opening the channel does the same repair; this command does
it on demand and says what it cut.

It refuses while an agent has the channel open (the directories are locked).

` + dirsHelp + `

--json prints one object: data_dir, changed, segment, offset (the cut
point), records and bytes (cut from the tail), damaged [index], rewritten,
broken (the evidence copy), removed [file].`,
		Args: anyArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dirs, err := df.resolve(args, false)
			if err != nil {
				return err
			}
			if err := dirs.notFlume("wal repair"); err != nil {
				return err
			}
			return runRepair(cmd.OutOrStdout(), dirs, asJSON)
		},
	}
	df.register(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object (fields listed above)")
	return cmd
}

// errRepairLocked is returned when the channel is in use.
var errRepairLocked = errors.New("stop the agent first")

// repairJSON is "flumed wal repair --json".
type repairJSON struct {
	DataDir   string   `json:"data_dir"`
	Changed   bool     `json:"changed"`
	Segment   string   `json:"segment"`
	Offset    int64    `json:"offset"`
	Records   int      `json:"records"`
	Bytes     int64    `json:"bytes"`
	Damaged   []uint64 `json:"damaged"`
	Rewritten bool     `json:"rewritten"`
	Broken    string   `json:"broken"`
	Removed   []string `json:"removed"`
}

func runRepair(out io.Writer, dirs channelDirs, asJSON bool) error {
	// wal.Repair locks the data directory itself; the checkpoint directory
	// is probed so that an agent holding only it is not overlooked.
	if dirs.Checkpoint != "" {
		if locked, pid, err := fsutil.Probe(dirs.Checkpoint); err == nil && locked {
			return fmt.Errorf("refusing to repair: %s is %s: %w", dirs.Checkpoint, lockedBy(pid), errRepairLocked)
		}
	}
	rec, err := wal.Repair(dirs.Data, wal.Options{})
	var le *fsutil.LockedError
	if errors.As(err, &le) {
		return fmt.Errorf("refusing to repair: %s is %s: %w", dirs.Data, lockedBy(le.PID), errRepairLocked)
	}
	if err != nil {
		return fmt.Errorf("repair %s: %w", dirs.Data, err)
	}
	res := repairJSON{DataDir: dirs.Data, Changed: rec.Changed(), Segment: rec.Segment, Offset: rec.Offset,
		Records: rec.Records, Bytes: rec.Bytes, Damaged: rec.Damaged, Rewritten: rec.Rewritten, Broken: rec.Broken,
		Removed: nonNil(rec.Removed)}
	if res.Damaged == nil {
		res.Damaged = []uint64{}
	}
	if asJSON {
		return writeJSON(out, res)
	}
	k := kv{out}
	k.line("Data dir", "%s", res.DataDir)
	if !res.Changed && len(res.Damaged) == 0 {
		k.line("Result", "nothing to repair (the tail is intact and there are no leftovers)")
		return nil
	}
	if res.Bytes > 0 {
		k.line("Cut", "%s, %s from segment %s at offset %d", plural(uint64(res.Records), "record"), humanBytes(res.Bytes), res.Segment, res.Offset)
	}
	if len(res.Damaged) > 0 {
		idx := make([]string, len(res.Damaged))
		for i, d := range res.Damaged {
			idx[i] = fmt.Sprint(d)
		}
		what := "kept; the channel skips them"
		if res.Rewritten {
			what = "the segment was rewritten with empty placeholders for them"
		}
		k.line("Damaged", "records %s of segment %s (%s)", strings.Join(idx, ", "), res.Segment, what)
	}
	if res.Broken != "" {
		k.line("Evidence", "%s (the segment as it was)", res.Broken)
	}
	if len(res.Removed) > 0 {
		k.line("Removed", "%s", strings.Join(res.Removed, ", "))
	}
	k.line("Result", "repaired")
	return nil
}
