package main

// The exact words of `flumed config check` for a catalogue of broken
// configurations. Every file in testdata/config/broken is one way a Flume
// configuration goes wrong (the seed's misspelt maxpenalty among them); its
// .golden file holds the command, the exit code, stdout and stderr of the
// real binary, run from the repository root so the messages carry the
// file's repository path. A broken configuration exits 78, prints nothing on
// stdout, and names every problem as file:line: full.key: what is wrong.
//
// Two comment directives at the top of a configuration steer its case:
//
//	# args: -n a2          extra arguments after "config check -c FILE"
//	# hidden: VALUE        a secret that must not appear in the output
//
// After an intended change of a message, rewrite the golden files with
//
//	go test ./cmd/flumed -run TestConfigCheckOutputForEveryBrokenConfig -update
//
// and review the diff.

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/config/broken")

// repoRoot is the repository root, relative to this package's directory.
const repoRoot = "../.."

// brokenCase is one broken configuration and its directives.
type brokenCase struct {
	config string   // path relative to the repository root
	args   []string // extra arguments
	hidden []string // values that must never be printed
}

func readBrokenCase(t *testing.T, path string) brokenCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	c := brokenCase{config: path}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "#") {
			break
		}
		if v, ok := strings.CutPrefix(line, "# args:"); ok {
			c.args = append(c.args, strings.Fields(v)...)
		}
		if v, ok := strings.CutPrefix(line, "# hidden:"); ok {
			c.hidden = append(c.hidden, strings.TrimSpace(v))
		}
	}
	return c
}

// check runs `flumed config check` from the repository root and returns the
// transcript the golden file holds.
func (c brokenCase) check(t *testing.T) (transcript string, code int, stdout, stderr string) {
	t.Helper()
	args := append([]string{"config", "check", "-c", c.config}, c.args...)
	cmd := exec.Command(flumed, args...)
	cmd.Dir = repoRoot
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("flumed %v: %v", args, err)
	}
	transcript = fmt.Sprintf("$ flumed %s\nexit %d\n-- stdout --\n%s-- stderr --\n%s",
		strings.Join(args, " "), code, out.String(), errOut.String())
	return transcript, code, out.String(), errOut.String()
}

// problemLine is how every line of a broken config's stderr reads: a
// problem placed at file:line (or a whole file), a warning, or the summary.
var problemLine = regexp.MustCompile(`^(warning: )?testdata/config/broken/[a-z-]+\.properties(:[0-9]+)?: .+$|^flumed: [0-9]+ configuration error\(s\); nothing started$`)

func TestConfigCheckOutputForEveryBrokenConfig(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(repoRoot, "testdata/config/broken/*.properties"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 10 {
		t.Fatalf("only %d broken configurations found", len(paths))
	}
	for _, p := range paths {
		rel, err := filepath.Rel(repoRoot, p)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(p), ".properties")
		t.Run(name, func(t *testing.T) {
			c := readBrokenCase(t, filepath.ToSlash(rel))
			got, code, stdout, stderr := c.check(t)

			// What holds for every broken configuration, golden or not.
			if code != 78 || stdout != "" {
				t.Errorf("exit %d with stdout %q, want 78 and nothing", code, stdout)
			}
			for _, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
				if !problemLine.MatchString(line) {
					t.Errorf("stderr line is not file:line: key: problem: %q", line)
				}
			}
			for _, h := range c.hidden {
				if strings.Contains(got, h) {
					t.Errorf("the secret %q is printed:\n%s", h, got)
				}
			}

			golden := strings.TrimSuffix(p, ".properties") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (run with -update and review the diff)\n--- got ---\n%s--- want ---\n%s", golden, got, want)
			}
		})
	}
}
