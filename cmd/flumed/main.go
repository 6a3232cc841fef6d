// Command flumed runs Apache Flume agents and collectors from Flume's own
// configuration files, and inspects the file channel's write-ahead log.
//
// This package only parses flags and calls into the library packages; it holds
// no business logic.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/flumed/flumed/internal/gcpolicy"
	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra (78 = EX_CONFIG for
// configuration errors, 1 for damage found by wal verify, ...).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "flumed",
		Short:         "A Flume-compatible log agent with a crash-safe write-ahead-log channel",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// --version prints what `flumed version` prints.
	root.Version = readBuildInfo().String()
	root.SetVersionTemplate("{{.Version}}")
	root.AddCommand(newVersionCmd())
	root.AddCommand(newRunCmd())
	root.AddCommand(newConfigCmd())
	root.AddCommand(newWalCmd())
	root.AddCommand(newAvroClientCmd())
	root.AddCommand(newTopCmd())
	return root
}

func main() {
	gcpolicy.Start() // see the package: a small heap collected at Go's default spends its CPU faulting pages
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "flumed: %v\n", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}
