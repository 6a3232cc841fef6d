package main

// `flumed version` and `flumed --version` print the same four lines: the
// version, the commit, the build time and the Go version. The Makefile sets
// the first three with -ldflags -X; a plain go build falls back on the
// module's build information (the VCS stamp), and on "devel" and "unknown".

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
)

func TestVersionPrintsWhatTheLinkerSet(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "flumed")
	build := exec.Command("go", "build", "-o", bin,
		"-ldflags", "-X main.version=v1.2.3 -X main.commit=abc123 -X main.buildTime=2026-01-02T03:04:05Z", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	want := "flumed v1.2.3\ncommit:     abc123\nbuilt:      2026-01-02T03:04:05Z\ngo version: " + runtime.Version() + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, err := exec.Command(bin, args...).Output()
		if err != nil || string(out) != want {
			t.Errorf("flumed %v: %v\n%s\nwant\n%s", args, err, out, want)
		}
	}
}

func TestVersionWithoutLinkerFlagsFallsBackOnTheBuildInfo(t *testing.T) {
	// TestMain's binary: a plain go build, stamped with the checkout's VCS
	// state when git is there ("unknown" otherwise).
	out, err := exec.Command(flumed, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^flumed \S+\ncommit:     ([0-9a-f]{40}(-dirty)?|unknown)\nbuilt:      \S+\ngo version: ` +
		regexp.QuoteMeta(runtime.Version()) + `\n$`)
	if !re.Match(out) {
		t.Fatalf("version output:\n%s", out)
	}
}
