package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/wal"
)

// verifyJSON is "flumed wal verify --json". Stable field names, as inspect's.
type verifyJSON struct {
	DataDir          string       `json:"data_dir"`
	CheckpointDir    string       `json:"checkpoint_dir"` // "" when none was found
	OK               bool         `json:"ok"`
	Records          uint64       `json:"records"` // intact records
	Events           uint64       `json:"events"`
	Bytes            int64        `json:"bytes"`
	Segments         int          `json:"segments"`
	SyncedRecords    uint64       `json:"synced_records"`
	IntervalRecords  uint64       `json:"interval_records"`
	DamagedCount     uint64       `json:"damaged_count"`
	Damaged          []damageJSON `json:"damaged"` // the first 1000
	CheckpointDamage []string     `json:"checkpoint_damage"`
}

func newWalVerifyCmd() *cobra.Command {
	var (
		df     dirFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "verify DIR | -c FILE [-n AGENT] [--channel NAME]",
		Short: "Read every record and check its CRC; exit 1 if any is damaged",
		Long: `Read every record of the data log, check its CRC32C and decode its events,
and check the checkpoint slots and the log id. Exit 0 when everything is
intact, 1 when anything is damaged (each damaged record is named by index,
segment and offset). A progress bar is drawn on stderr when it is a terminal.

` + dirsHelp + `

verify needs no checkpoint directory: without one it checks the log only.

--json prints one object: data_dir, checkpoint_dir, ok, records (intact),
events, bytes, segments, synced_records, interval_records (by durability
mode), damaged_count, damaged [{segment, offset, index, error}] (the first
1000; segment is "" for a record whose CRC holds but whose events do not
decode), checkpoint_damage [text].`,
		Args: anyArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dirs, err := df.resolve(args, false)
			if err != nil {
				return err
			}
			if err := dirs.notFlume("wal verify"); err != nil {
				return err
			}
			return runVerify(cmd.OutOrStdout(), cmd.ErrOrStderr(), dirs, asJSON)
		},
	}
	df.register(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object (fields listed above)")
	return cmd
}

func runVerify(out, errw io.Writer, dirs channelDirs, asJSON bool) error {
	noteLock(errw, dirs)
	bar := newProgress(errw, "verifying")
	v, err := channel.VerifyFile(dirs.Data, bar.update)
	bar.finish()
	if err != nil {
		return fmt.Errorf("verify %s: %w", dirs.Data, err)
	}
	res := verifyJSON{
		DataDir: dirs.Data, CheckpointDir: dirs.Checkpoint, Records: v.Records, Events: v.Events, Bytes: v.Bytes,
		SyncedRecords: v.SyncedRecords, IntervalRecords: v.IntervalRecords, DamagedCount: v.DamagedCount,
		Damaged: []damageJSON{}, CheckpointDamage: []string{},
	}
	for _, e := range v.Damaged {
		res.Damaged = append(res.Damaged, damageOfErr(e))
	}
	// Segments and the checkpoint come from the cheap read-only inspection.
	if dirs.Checkpoint != "" {
		rep, err := channel.InspectFileDirs(dirs.file())
		if err != nil {
			return fmt.Errorf("inspect %s: %w", dirs.Data, err)
		}
		res.Segments = len(rep.Log.Segments)
		for _, s := range rep.Slots {
			if s.Err != "" {
				res.CheckpointDamage = append(res.CheckpointDamage, fmt.Sprintf("%s: %s", s.Path, s.Err))
			}
		}
		if rep.LogID == "" && records(rep.Log) > 0 {
			res.CheckpointDamage = append(res.CheckpointDamage, "the data log's log-id is missing or unreadable: no checkpoint can be matched to it")
		}
	} else if info, err := wal.Inspect(dirs.Data); err == nil {
		res.Segments = len(info.Segments)
	}
	res.OK = v.OK() && len(res.CheckpointDamage) == 0
	if asJSON {
		if err := writeJSON(out, res); err != nil {
			return err
		}
	} else {
		writeVerify(out, res)
	}
	if !res.OK {
		n := res.DamagedCount + uint64(len(res.CheckpointDamage))
		return &exitError{exitDamage, fmt.Errorf("%s: %s found", dirs.Data, plural(n, "damaged item"))}
	}
	return nil
}

// damageOfErr places a damaged record when the error says where.
func damageOfErr(err error) damageJSON {
	var ce *wal.CorruptionError
	if errors.As(err, &ce) {
		return *damageOf(ce)
	}
	return damageJSON{Error: err.Error()}
}

func writeVerify(w io.Writer, r verifyJSON) {
	k := kv{w}
	k.line("Data dir", "%s", r.DataDir)
	k.line("Checkpoint dir", "%s", orText(r.CheckpointDir, "none found (the log only is checked)"))
	k.line("Scanned", "%s, %s, %s in %s", plural(r.Records, "intact record"), plural(r.Events, "event"),
		humanBytes(r.Bytes), plural(uint64(r.Segments), "segment"))
	k.line("Durability", "%d records written with fsyncPerTransaction, %d with fsyncInterval", r.SyncedRecords, r.IntervalRecords)
	var damage []string
	for _, d := range r.Damaged {
		if d.Segment != "" {
			damage = append(damage, fmt.Sprintf("record %d in segment %s at offset %d: %s", d.Index, d.Segment, d.Offset, d.Error))
		} else {
			damage = append(damage, d.Error)
		}
	}
	if more := r.DamagedCount - uint64(len(r.Damaged)); more > 0 {
		damage = append(damage, fmt.Sprintf("... and %d more", more))
	}
	lines(k, "Damaged records", damage, "none")
	lines(k, "Checkpoint", r.CheckpointDamage, "intact")
	if r.OK {
		k.line("Result", "OK")
	} else {
		k.line("Result", "DAMAGED")
	}
}
