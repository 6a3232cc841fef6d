package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set by the Makefile's build target with -ldflags -X (see there). Left
// empty, they come from the module's build information: a `go install`ed
// module has its version, a build in a git checkout its VCS stamp.
var (
	version   string
	commit    string
	buildTime string
)

// buildInfo is what `flumed version` prints.
type buildInfo struct {
	Version, Commit, BuildTime, GoVersion string
	Modified                              bool
}

// readBuildInfo merges the -ldflags values with debug.ReadBuildInfo.
func readBuildInfo() buildInfo {
	bi := buildInfo{Version: version, Commit: commit, BuildTime: buildTime, GoVersion: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		if bi.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			bi.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if bi.Commit == "" {
					bi.Commit = s.Value
				}
			case "vcs.time":
				if bi.BuildTime == "" {
					bi.BuildTime = s.Value // the commit's time: the best a plain go build knows
				}
			case "vcs.modified":
				bi.Modified = s.Value == "true"
			}
		}
	}
	if bi.Version == "" {
		bi.Version = "devel"
	}
	if bi.Commit == "" {
		bi.Commit = "unknown"
	} else if bi.Modified {
		bi.Commit += "-dirty"
	}
	if bi.BuildTime == "" {
		bi.BuildTime = "unknown"
	}
	return bi
}

func (b buildInfo) String() string {
	return fmt.Sprintf("flumed %s\ncommit:     %s\nbuilt:      %s\ngo version: %s\n", b.Version, b.Commit, b.BuildTime, b.GoVersion)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print flumed's version, commit, build time and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(cmd.OutOrStdout(), readBuildInfo())
			return nil
		},
	}
}
