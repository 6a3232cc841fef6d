package hdfstest

// The helper's contract: one real HDFS per test binary, reachable by the Go
// client, and Hadoop's own shell sees what the Go client wrote.

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m).Run()) }

func TestTheShellReadsWhatTheGoClientWrote(t *testing.T) {
	in := Get(t)
	c := in.Client(t)
	if err := c.MkdirAll("/hdfstest", 0o755); err != nil {
		t.Fatal(err)
	}
	in.WriteFile(t, c, "/hdfstest/a.txt", []byte("hello hdfs\n"))
	if got := string(in.Cat(t, "/hdfstest/a.txt")); got != "hello hdfs\n" {
		t.Errorf("-cat = %q, want %q", got, "hello hdfs\n")
	}
	if got := in.Ls(t, "/hdfstest"); len(got) != 1 || got[0] != "/hdfstest/a.txt" {
		t.Errorf("-ls = %q, want [/hdfstest/a.txt]", got)
	}
}

func TestASecondCallGetsTheSameInstance(t *testing.T) {
	if a, b := Get(t), Get(t); a != b {
		t.Errorf("two instances: %s and %s", a.Dir, b.Dir)
	}
}

func TestAMissingPackageIsAnErrorThatSaysWhere(t *testing.T) {
	t.Setenv(EnvHome, "")
	t.Chdir(t.TempDir()) // no go.mod above a temp dir
	if _, err := Home(); err == nil {
		t.Error("Home found a package from a directory with no go.mod above it")
	}
}
