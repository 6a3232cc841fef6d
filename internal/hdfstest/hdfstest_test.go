package hdfstest

// The helper's contract: without the HDFS package it says where it looked.
// Starting the real HDFS, its shell and its client are exercised by the
// hdfs sink's tests (sink/hdfs_test.go), which this package exists for: a
// start here too would add a JVM pair and ~5-40 s to make test.

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m).Run()) }

func TestAMissingPackageIsAnErrorThatSaysWhere(t *testing.T) {
	t.Setenv(EnvHome, "")
	t.Chdir(t.TempDir()) // no go.mod above a temp dir
	if _, err := Home(); err == nil {
		t.Error("Home found a package from a directory with no go.mod above it")
	}
}
