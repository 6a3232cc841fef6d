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

// New builds a taildir source (type "taildir") from the keys of FLUME.md
// §2.3 plus flumed's own:
// maxLineLength (bytes, default 1 MiB), lineOverflow (split|truncate),
// positionSync (batch|interval) and rescanInterval (ms).
func New(name string, c *config.Context, log *slog.Logger) (sourceapi.Source, error) {
	cfg := taildirConfig{
		byteOffsetHeader:     c.Bool("byteOffsetHeader", false),
		skipToEnd:            c.Bool("skipToEnd", false),
		idleTimeout:          c.Duration("idleTimeout", 120*time.Second, time.Millisecond),
		writePosInterval:     c.Duration("writePosInterval", 3*time.Second, time.Millisecond),
		batchSize:            c.Int("batchSize", 100),
		maxBatchCount:        c.Int64("maxBatchCount", math.MaxInt64),
		backoffInc:           c.Duration("backoffSleepIncrement", time.Second, time.Millisecond),
		backoffMax:           c.Duration("maxBackoffSleep", 5*time.Second, time.Millisecond),
		cachePatternMatching: c.Bool("cachePatternMatching", true),
		fileHeader:           c.Bool("fileHeader", false),
		fileHeaderKey:        c.String("fileHeaderKey", "file"),
		maxLineLength:        c.Int("maxLineLength", 1<<20),
		truncate:             c.OneOf("lineOverflow", "split", "split", "truncate") == "truncate",
		positionSync:         c.OneOf("positionSync", "batch", "batch", "interval") == "batch",
		rescanInterval:       c.Duration("rescanInterval", 5*time.Second, time.Millisecond),
	}
	bad := len(c.Problems().Errors())
	cfg.positionFile = c.String("positionFile", "")
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
	names := c.List("filegroups")
	if len(names) == 0 {
		c.Required("filegroups")
	}
	var groups []*taildirGroup
	listed := make(map[string]bool)
	for _, g := range names {
		listed[g] = true
		path := c.Required("filegroups." + g)
		if path == "" {
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
	for _, g := range c.Keys("headers.") {
		keys := subKeys(c, "headers."+g+".")
		var grp *taildirGroup
		for _, x := range groups {
			if x.name == g {
				grp = x
			}
		}
		for _, k := range keys {
			v := c.String("headers."+g+"."+k, "")
			if grp == nil {
				if !listed[g] {
					c.Warnf("headers."+g+"."+k, "group %q is not in filegroups; header ignored", g)
				}
				continue
			}
			grp.headers[k] = v
		}
	}
	return groups
}

// subKeys lists every key under prefix, dots and all ("a.b" for
// prefix.a.b), since a header name may contain dots.
func subKeys(c *config.Context, prefix string) []string {
	var out []string
	for _, seg := range c.Keys(prefix) {
		if c.Has(prefix + seg) {
			out = append(out, seg)
		}
		for _, rest := range subKeys(c, prefix+seg+".") {
			out = append(out, seg+"."+rest)
		}
	}
	return out
}

// groupsLabel names the groups for log lines.
func groupsLabel(gs []*taildirGroup) string {
	names := make([]string, len(gs))
	for i, g := range gs {
		names[i] = g.name
	}
	return strings.Join(names, ",")
}
