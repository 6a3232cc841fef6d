package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/flumed/flumed/channel"
)

// dumpJSON is one line of "flumed wal dump --json". Stable field names.
type dumpJSON struct {
	Seq       uint64            `json:"seq"`       // the event's sequence number
	Index     uint64            `json:"index"`     // the log record holding it
	Committed *string           `json:"committed"` // its put's commit time, RFC 3339 UTC
	Synced    bool              `json:"synced"`    // written in fsyncPerTransaction mode
	Headers   map[string]string `json:"headers"`
	Body      []byte            `json:"body"` // base64 (standard, padded)
}

type dumpFlags struct {
	limit    int
	asJSON   bool
	body     bool
	maxBytes int
}

func newWalDumpCmd() *cobra.Command {
	var (
		df dirFlags
		f  dumpFlags
	)
	cmd := &cobra.Command{
		Use:   "dump DIR | -c FILE [-n AGENT] [--channel NAME]",
		Short: "Print the queued events in delivery order, as the logger sink does or as JSON lines",
		Long: `Print the events a restart would deliver, in delivery order, one per line:
by default as Flume's logger sink prints them,

  Event: { headers:{host=web-1} body: 68 65 6C 6C 6F [...] hello }

(a hex dump of the first --max-bytes body bytes, padded to 16 columns); with --body the raw bodies,
each followed by a newline; with --json one JSON object per event: seq
(sequence number), index (log record), committed (commit time, RFC 3339
UTC), synced (written in fsyncPerTransaction mode), headers, body (base64).

Damaged records are skipped and named on stderr, and the exit code is then 1.

` + dirsHelp,
		Args: anyArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case f.limit < 0:
				return usageErr("--limit %d: must be 0 (all) or more", f.limit)
			case f.maxBytes < 1:
				return usageErr("--max-bytes %d: must be at least 1", f.maxBytes)
			case f.asJSON && f.body:
				return usageErr("--json and --body exclude each other")
			}
			dirs, err := df.resolve(args, true)
			if err != nil {
				return err
			}
			if err := dirs.notFlume("wal dump"); err != nil {
				return err
			}
			return runDump(cmd.OutOrStdout(), cmd.ErrOrStderr(), dirs, f)
		},
	}
	df.register(cmd.Flags())
	fs := cmd.Flags()
	fs.IntVar(&f.limit, "limit", 0, "print at most this many events (0: all)")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON lines (fields listed above)")
	fs.BoolVar(&f.body, "body", false, "print the raw bodies, one per line")
	fs.IntVar(&f.maxBytes, "max-bytes", 16, "body bytes in the logger format's hex dump (the logger sink's maxBytesToLog)")
	return cmd
}

func runDump(out, errw io.Writer, dirs channelDirs, f dumpFlags) error {
	noteLock(errw, dirs)
	rep, err := channel.InspectFileDirs(dirs.file())
	if err != nil {
		return fmt.Errorf("inspect %s: %w", dirs.Data, err)
	}
	bw := bufio.NewWriter(out)
	enc := json.NewEncoder(bw)
	printed, damaged := 0, 0
	for q, err := range rep.Events() {
		if err != nil {
			damaged++
			fmt.Fprintf(errw, "skipped: %v\n", err)
			continue
		}
		printed++
		switch {
		case f.asJSON:
			err = enc.Encode(dumpJSON{Seq: q.Seq, Index: q.Index, Committed: jsonTime(q.Committed), Synced: q.Synced,
				Headers: nonNilMap(q.Headers), Body: nonNilBytes(q.Body)})
		case f.body:
			_, err = fmt.Fprintf(bw, "%s\n", q.Body)
		default:
			_, err = fmt.Fprintf(bw, "Event: %s\n", channel.DumpEvent(q.Event, f.maxBytes))
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if printed == f.limit {
			break
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if damaged > 0 {
		return &exitError{exitDamage, fmt.Errorf("%s: %s skipped", dirs.Data, plural(uint64(damaged), "damaged record"))}
	}
	return nil
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
