package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/channel/flumefile"
	"github.com/flumed/flumed/internal/config"
)

// How the wal commands find a file channel's two directories. The argument
// is recognised by what it holds, never by its name alone, so a wrong path is
// an error naming it rather than an empty report:
//
//   - a data directory holds a log-id file or wal segments (20-digit names);
//   - a checkpoint directory holds checkpoint-0 or checkpoint-1;
//   - a channel directory holds checkpoint/ and data/ (Flume's layout under
//     ~/.flume/file-channel);
//   - the same three, holding Apache Flume's own files instead of flumed's
//     (wal_flume.go): only inspect reads those.

const (
	logIDName       = "log-id" // channel/file_log.go's identity file
	segmentNameLen  = 20       // wal segments are named by their first index in 20 digits
	checkpointSlot0 = "checkpoint-0"
	checkpointSlot1 = "checkpoint-1"
)

// channelDirs are a file channel's directories and how they were found.
type channelDirs struct {
	Checkpoint  string // "" when none was found (verify and repair need none)
	Backup      string // backupCheckpointDir, "" when none
	Data        string
	DataDirs    []string // every directory of dataDirs (-c), where Flume's data files may be
	SkipCorrupt bool     // fsyncPerTransaction = false (-c): how a Flume backlog's damage is read
	How         string   // for the report's first line
	// Flume is set when the directories hold an Apache Flume file channel's
	// files and no flumed log (wal_flume.go): only inspect reads them.
	Flume bool
}

// file is what the channel package's inspection takes.
func (d channelDirs) file() channel.FileDirs {
	return channel.FileDirs{Checkpoint: d.Checkpoint, BackupCheckpoint: d.Backup, Data: d.Data,
		DataDirs: d.DataDirs, SkipCorrupt: d.SkipCorrupt}
}

// notFlume refuses Flume's files to the commands that read flumed's log.
func (d channelDirs) notFlume(command string) error {
	if !d.Flume {
		return nil
	}
	return usageErr("%s holds an Apache Flume file channel, not flumed's log: %s does not read it; "+
		"'flumed wal inspect' reports its backlog, which the file channel imports when it opens on these directories",
		d.Data, command)
}

// dirFlags are the ways to name a channel, shared by the wal commands.
type dirFlags struct {
	checkpointDir string
	backupDir     string
	files         []string
	agent         string
	channel       string
}

func (d *dirFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&d.checkpointDir, "checkpoint-dir", "", "the checkpoint directory, when DIR is a data directory")
	fs.StringVar(&d.backupDir, "backup-checkpoint-dir", "", "the backup checkpoint directory (useDualCheckpoints), used as a restart would when the checkpoint is unusable")
	fs.VarP(fileList{files: &d.files}, "config", "c", "take the directories from this agent configuration (repeatable; later files override)")
	fs.StringVarP(&d.agent, "name", "n", "", "agent in the configuration (default: its only agent)")
	fs.StringVar(&d.channel, "channel", "", "file channel in the configuration (default: the agent's only file channel)")
	fs.Lookup("config").DefValue = "" // not "[]" in --help
}

// dirsHelp is the part of every wal command's help that says what DIR is.
const dirsHelp = `DIR is one of:
  - a channel directory holding checkpoint/ and data/ (Flume's layout, as
    under ~/.flume/file-channel);
  - a data directory (it holds log-id and the segments); its checkpoint
    directory is the one given with --checkpoint-dir, else the data
    directory itself if it holds checkpoint-0/1, else a sibling checkpoint/;
  - a checkpoint directory, when a sibling data/ holds the log.
Instead of DIR, -c agent.properties [-n AGENT] [--channel NAME] takes the
directories from the file channel's checkpointDir and dataDirs keys.`

// usageErr is an error in how the command was called: exit code 2.
func usageErr(format string, args ...any) error {
	return &exitError{2, fmt.Errorf(format, args...)}
}

// resolve finds the directories from the arguments and flags. needCheckpoint
// is false for commands that read the data log only.
func (d *dirFlags) resolve(args []string, needCheckpoint bool) (channelDirs, error) {
	switch {
	case len(d.files) > 0 && len(args) > 0:
		return channelDirs{}, usageErr("give either DIR or -c FILE, not both")
	case len(d.files) > 0:
		if d.checkpointDir != "" || d.backupDir != "" {
			return channelDirs{}, usageErr("--checkpoint-dir and --backup-checkpoint-dir go with DIR, not with -c (the configuration names them)")
		}
		return d.fromConfig()
	case len(args) == 0:
		return channelDirs{}, usageErr("no channel given: name its directory (DIR) or its configuration (-c FILE)")
	case len(args) > 1:
		return channelDirs{}, usageErr("one DIR only, got %d arguments", len(args))
	case d.agent != "" || d.channel != "":
		return channelDirs{}, usageErr("-n and --channel go with -c FILE")
	}
	dirs, err := detectDirs(args[0], d.checkpointDir)
	if err != nil {
		return dirs, err
	}
	if d.backupDir != "" {
		if !isDir(d.backupDir) {
			return dirs, usageErr("--backup-checkpoint-dir %s: no such directory", d.backupDir)
		}
		dirs.Backup = d.backupDir
	}
	if needCheckpoint && dirs.Checkpoint == "" {
		return dirs, usageErr("%s: no checkpoint directory found beside this data directory; give it with --checkpoint-dir", args[0])
	}
	return dirs, nil
}

// detectDirs recognises dir by its content (see the top of this file).
func detectDirs(dir, checkpointDir string) (channelDirs, error) {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return channelDirs{}, usageErr("%s: no such directory", dir)
	case err != nil:
		return channelDirs{}, usageErr("%s: %v", dir, err)
	case !st.IsDir():
		return channelDirs{}, usageErr("%s: not a directory", dir)
	}
	if checkpointDir != "" {
		if !isDataDir(dir) {
			if d, ok := flumeDirs(dir, checkpointDir); ok {
				return d, nil
			}
			return channelDirs{}, usageErr("%s: not a file channel data directory (no %s, no segment)", dir, logIDName)
		}
		if !isDir(checkpointDir) {
			return channelDirs{}, usageErr("--checkpoint-dir %s: no such directory", checkpointDir)
		}
		return channelDirs{Checkpoint: checkpointDir, Data: dir, How: "data directory, checkpoint directory from --checkpoint-dir"}, nil
	}
	ck, data := filepath.Join(dir, "checkpoint"), filepath.Join(dir, "data")
	if isDataDir(data) && isDir(ck) {
		return channelDirs{Checkpoint: ck, Data: data, How: "channel directory (checkpoint/ and data/)"}, nil
	}
	if isDataDir(dir) {
		switch sibling := filepath.Join(filepath.Dir(filepath.Clean(dir)), "checkpoint"); {
		case isCheckpointDir(dir):
			return channelDirs{Checkpoint: dir, Data: dir, How: "data directory holding its checkpoint"}, nil
		case isCheckpointDir(sibling):
			return channelDirs{Checkpoint: sibling, Data: dir, How: "data directory, its checkpoint directory beside it"}, nil
		}
		return channelDirs{Data: dir, How: "data directory (no checkpoint directory found)"}, nil
	}
	if isCheckpointDir(dir) {
		if sibling := filepath.Join(filepath.Dir(filepath.Clean(dir)), "data"); isDataDir(sibling) {
			return channelDirs{Checkpoint: dir, Data: sibling, How: "checkpoint directory, its data directory beside it"}, nil
		}
		return channelDirs{}, usageErr("%s is a checkpoint directory and no data/ is beside it: give the data directory and --checkpoint-dir %s", dir, dir)
	}
	if d, ok := flumeDirs(dir, ""); ok {
		return d, nil
	}
	if flumeDataOnly(dir) {
		return channelDirs{}, usageErr("%s holds Apache Flume data files but no Flume checkpoint directory is beside it: "+
			"give it with --checkpoint-dir, or use -c with the agent's configuration (its dataDirs names every data directory)", dir)
	}
	return channelDirs{}, usageErr("%s: not a file channel directory (no checkpoint/ and data/, no %s or segments, no checkpoint slots)", dir, logIDName)
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// isDataDir reports whether p holds a log id or a wal segment.
func isDataDir(p string) bool {
	ents, err := os.ReadDir(p)
	if err != nil {
		return false
	}
	for _, e := range ents {
		name := e.Name()
		if name == logIDName {
			return true
		}
		if len(name) >= segmentNameLen && strings.Trim(name[:segmentNameLen], "0123456789") == "" {
			return true
		}
	}
	return false
}

func isCheckpointDir(p string) bool {
	for _, n := range []string{checkpointSlot0, checkpointSlot1} {
		if st, err := os.Stat(filepath.Join(p, n)); err == nil && st.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// fromConfig takes the directories from a file channel's keys, with Flume's
// defaults for keys left out.
func (d *dirFlags) fromConfig() (channelDirs, error) {
	f, err := config.Load(d.files...)
	if err != nil {
		return channelDirs{}, usageErr("%w", err)
	}
	a := f.Agent(d.agent)
	if len(a.Channels) == 0 {
		msg := "no channels"
		if errs := a.Problems.Errors(); len(errs) > 0 {
			msg = errs[0].String()
		}
		return channelDirs{}, usageErr("%s: %s", strings.Join(d.files, ", "), msg)
	}
	var files, all []string
	for _, c := range a.Channels {
		all = append(all, c.Name)
		if isFileType(c.Type) {
			files = append(files, c.Name)
		}
	}
	name := d.channel
	switch {
	case name == "" && len(files) == 1:
		name = files[0]
	case name == "" && len(files) == 0:
		return channelDirs{}, usageErr("agent %s has no file channel (its channels: %s)", a.Name, strings.Join(all, ", "))
	case name == "":
		return channelDirs{}, usageErr("agent %s has file channels %s: choose one with --channel", a.Name, strings.Join(files, ", "))
	}
	c := a.Channel(name)
	switch {
	case c == nil:
		return channelDirs{}, usageErr("agent %s has no channel %s (its channels: %s)", a.Name, name, strings.Join(all, ", "))
	case !isFileType(c.Type):
		return channelDirs{}, usageErr("channel %s of agent %s is of type %q, not a file channel", name, a.Name, c.Type)
	}
	// flumed uses the first of Flume's comma-separated data directories.
	fd := channel.ConfiguredDirs(c.Context)
	dirs := channelDirs{
		Checkpoint:  fd.Checkpoint,
		Data:        fd.Data,
		DataDirs:    fd.DataDirs,
		SkipCorrupt: fd.SkipCorrupt,
		How:         fmt.Sprintf("channel %s of agent %s in %s", name, a.Name, strings.Join(d.files, ", ")),
	}
	for _, p := range []struct{ key, dir string }{{"dataDirs", dirs.Data}, {"checkpointDir", dirs.Checkpoint}} {
		if !isDir(p.dir) {
			return channelDirs{}, usageErr("%s (%s of channel %s): no such directory", p.dir, p.key, name)
		}
	}
	// Missing until the first backup is written: then there is none to use.
	if b := fd.BackupCheckpoint; b != "" && isDir(b) {
		dirs.Backup = b
	}
	if !isDataDir(dirs.Data) {
		// No flumed log yet: a Flume channel's files, waiting for an import?
		l, err := flumefile.Detect(channel.FlumeOptions(dirs.file()))
		dirs.Flume = err == nil && l.HasData()
	}
	return dirs, nil
}

func isFileType(t string) bool {
	return strings.EqualFold(t, "file") || t == "org.apache.flume.channel.file.FileChannel"
}
