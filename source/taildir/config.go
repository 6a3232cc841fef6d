package taildir

import (
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/flumed/flumed/internal/clock"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/fsutil"
	"github.com/flumed/flumed/source/sourceapi"
)

// This file reads the taildir source's configuration.

// taildirGroup is one filegroups entry.
type taildirGroup struct {
	name    string
	dir     string
	re      *regexp.Regexp
	headers map[string]string
}

type taildirConfig struct {
	groups               []*taildirGroup
	positionFile         string
	byteOffsetHeader     bool
	skipToEnd            bool
	idleTimeout          time.Duration
	writePosInterval     time.Duration
	batchSize            int
	maxBatchCount        int64
	backoffInc           time.Duration
	backoffMax           time.Duration
	cachePatternMatching bool
	fileHeader           bool
	fileHeaderKey        string
	// flumed's own keys
	maxLineLength  int
	truncate       bool // lineOverflow=truncate
	positionSync   bool // positionSync=batch
	rescanInterval time.Duration
}

var (
	filegroups       = config.List("filegroups", " ", "", "the file groups, each with its `filegroups.<g>`").Required()
	filegroupPath    = config.String("filegroups.<g>", "", "a directory and a file name pattern (a regular expression)")
	groupHeader      = config.String("headers.<g>.*", "", "a header set on every event of the group")
	positionFile     = config.String("positionFile", "", "where the read positions are kept").DefaultText("`~/.flume/taildir_position.json`")
	byteOffsetHeader = config.Bool("byteOffsetHeader", false, "add a byteoffset header: the line's offset in its file")
	skipToEnd        = config.Bool("skipToEnd", false, "start a file without a position at its end")
	idleTimeout      = config.Millis("idleTimeout", 120*time.Second, "a file unchanged this long is closed")
	writePosInterval = config.Millis("writePosInterval", 3*time.Second, "how often the position file is written with positionSync = interval")
	batchSize        = config.Int("batchSize", 100, "lines put in one transaction")
	maxBatchCount    = config.Int64("maxBatchCount", math.MaxInt64, "batches read from one file before the next file's turn").DefaultText("unlimited")
	backoffInc       = config.Millis("backoffSleepIncrement", time.Second, "the runner's backoff step when nothing was read")
	backoffMax       = config.Millis("maxBackoffSleep", 5*time.Second, "the runner's longest backoff")
	cachePatterns    = config.Bool("cachePatternMatching", true, "match a directory's files again only when it changed")
	fileHeader       = config.Bool("fileHeader", false, "add the file's path as a header")
	fileHeaderKey    = config.String("fileHeaderKey", "file", "the header fileHeader sets")
	maxLineLength    = config.Int("maxLineLength", 1<<20, "the longest line in bytes; see lineOverflow").Flumed()
	lineOverflow     = config.OneOf("lineOverflow", "split", []string{"split", "truncate"}, "a longer line is split into events or truncated").Flumed()
	positionSync     = config.OneOf("positionSync", "batch", []string{"batch", "interval"}, "write positions after every batch, or every writePosInterval").Flumed()
	rescanInterval   = config.Millis("rescanInterval", 5*time.Second, "how often directories are listed again without a change event").Flumed()
)

// Spec declares the taildir source's keys (FLUME.md §2.3, and flumed's own).
var Spec = &config.Spec{Type: "taildir", Classes: []string{"org.apache.flume.source.taildir.TaildirSource"},
	Doc: "files are known by device, inode and a fingerprint of their first KiB (renames, rotation, copytruncate); positions are synced every batch by default, so a crash repeats at most one batch",
	Keys: []config.Decl{filegroups, filegroupPath, groupHeader, positionFile, byteOffsetHeader, skipToEnd, idleTimeout,
		writePosInterval, batchSize, maxBatchCount, backoffInc, backoffMax, cachePatterns, fileHeader, fileHeaderKey,
		maxLineLength, lineOverflow, positionSync, rescanInterval, sourceapi.ProcessorKeys}}

// New builds a taildir source from its context, checked against Spec.
func New(name string, c *config.Context, log *slog.Logger) (sourceapi.Source, error) {
	cfg := taildirConfig{
		byteOffsetHeader:     byteOffsetHeader.Get(c),
		skipToEnd:            skipToEnd.Get(c),
		idleTimeout:          idleTimeout.Get(c),
		writePosInterval:     writePosInterval.Get(c),
		batchSize:            batchSize.Get(c),
		maxBatchCount:        maxBatchCount.Get(c),
		backoffInc:           backoffInc.Get(c),
		backoffMax:           backoffMax.Get(c),
		cachePatternMatching: cachePatterns.Get(c),
		fileHeader:           fileHeader.Get(c),
		fileHeaderKey:        fileHeaderKey.Get(c),
		maxLineLength:        maxLineLength.Get(c),
		truncate:             lineOverflow.Get(c) == "truncate",
		positionSync:         positionSync.Get(c) == "batch",
		rescanInterval:       rescanInterval.Get(c),
	}
	bad := len(c.Problems().Errors())
	cfg.positionFile = positionFile.Get(c)
	if cfg.positionFile == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			c.Errorf("positionFile", "not set and there is no home directory for the default: %v", err)
		}
		cfg.positionFile = filepath.Join(home, ".flume", "taildir_position.json")
	}
	if abs, err := filepath.Abs(cfg.positionFile); err == nil {
		cfg.positionFile = abs
	}
	cfg.groups = taildirGroups(c)
	for key, v := range map[string]int64{"batchSize": int64(cfg.batchSize), "maxLineLength": int64(cfg.maxLineLength)} {
		if v <= 0 {
			c.Errorf(key, "must be positive, not %d", v)
		}
	}
	for key, d := range map[string]time.Duration{"idleTimeout": cfg.idleTimeout, "writePosInterval": cfg.writePosInterval,
		"backoffSleepIncrement": cfg.backoffInc, "maxBackoffSleep": cfg.backoffMax, "rescanInterval": cfg.rescanInterval} {
		if d <= 0 {
			c.Errorf(key, "must be positive")
		}
	}
	if cfg.maxBatchCount <= 0 {
		c.Warnf("maxBatchCount", "must be positive; using the default (no limit), as Flume does")
		cfg.maxBatchCount = math.MaxInt64
	}
	if cfg.backoffMax < cfg.backoffInc {
		c.Errorf("maxBackoffSleep", "must be at least backoffSleepIncrement (%d ms)", cfg.backoffInc.Milliseconds())
	}
	if len(c.Problems().Errors()) > bad {
		return nil, sourceapi.ErrConfig
	}
	return &Source{name: name, cfg: cfg, log: log.With(slog.String("source", name)), fs: fsutil.OS{},
		fsys: osFS{}, clk: clock.Real{}, startWatch: newDirWatcher}, nil
}

// taildirGroups reads filegroups, filegroups.<g> and headers.<g>.<key>.
func taildirGroups(c *config.Context) []*taildirGroup {
	names := filegroups.Get(c)
	var groups []*taildirGroup
	listed := make(map[string]bool)
	for _, g := range names {
		listed[g] = true
		path, set := filegroupPath.At(c, g)
		if !set {
			c.Errorf("filegroups."+g, "required key is missing")
			continue
		}
		dir, pattern := filepath.Split(path)
		if dir == "" || pattern == "" {
			c.Errorf("filegroups."+g, "must be a directory and a file name pattern, like /var/log/app/.*\\.log")
			continue
		}
		re, err := regexp.Compile("^(?:" + pattern + ")$")
		if err != nil {
			c.Errorf("filegroups."+g, "file name pattern %q: %v", pattern, err)
			continue
		}
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
		groups = append(groups, &taildirGroup{name: g, dir: filepath.Clean(dir), re: re, headers: map[string]string{}})
	}
	byName := make(map[string]*taildirGroup, len(groups))
	for _, g := range groups {
		byName[g.name] = g
	}
	for _, h := range groupHeader.Instances(c) {
		g, k := h.Names[0], h.Names[1]
		if grp := byName[g]; grp != nil {
			grp.headers[k] = h.Value
		} else if !listed[g] {
			c.Warnf(h.Key, "group %q is not in filegroups; header ignored", g)
		}
	}
	// Flume ignores a group that is configured but not listed; that is
	// almost always a typo in the list, so it is an error.
	for _, g := range c.Keys("filegroups.") {
		if !listed[g] {
			c.Errorf("filegroups."+g, "group %s is configured but not listed in %s", g, c.FullKey("filegroups"))
		}
	}
	return groups
}

// groupsLabel names the groups for log lines.
func groupsLabel(gs []*taildirGroup) string {
	names := make([]string, len(gs))
	for i, g := range gs {
		names[i] = g.name
	}
	return strings.Join(names, ",")
}
