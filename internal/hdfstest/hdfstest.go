// Package hdfstest runs the real HDFS of ../shared/hdfs (Apache Hadoop 3.3.0:
// one NameNode, one DataNode on 127.0.0.1) for the tests of the HDFS sink,
// and checks what they wrote with Hadoop's own client (FsShell: -ls, -cat,
// -text), never only with the Go client the sink itself uses.
//
// One instance serves a whole test binary: the first test that asks for it
// (Get) installs the Debian packages it needs (bin/hdfs-deps, a no-op once
// done), starts it in a temporary directory (bin/hdfs-up) and the test
// binary's TestMain stops it (Main; bin/hdfs-down) and removes the
// directory. Tests share it by writing under directories of their own.
//
// It must never skip: when HDFS cannot be found, installed or started, the
// test asking for it fails and says why. Only tests import it.
package hdfstest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/colinmarc/hdfs/v2"

	"github.com/flumed/flumed/internal/await"
)

// EnvHome names a variable that overrides where the HDFS package is; by
// default it is ../shared/hdfs next to the repository (CI runs the
// repository at a path whose sibling is shared/, as /work/main and
// /work/shared).
const EnvHome = "FLUMED_HDFS_HOME"

// Instance is a running HDFS.
type Instance struct {
	Home string // the HDFS package: bin/hdfs-up, bin/hdfs ...
	Dir  string // hdfs-up's DIR: the instance's state, conf and logs
	Addr string // the NameNode's RPC address, 127.0.0.1:PORT
	URL  string // hdfs://127.0.0.1:PORT
	User string // the HDFS user both clients act as
}

var (
	once     sync.Once
	instance *Instance
	startErr error
)

// Get returns the test binary's HDFS, starting it on first use. It fails
// the test if HDFS cannot be started, with the reason.
func Get(t testing.TB) *Instance {
	t.Helper()
	once.Do(func() { instance, startErr = start() })
	if startErr != nil {
		t.Fatalf("hdfstest: the real HDFS is needed and could not be started: %v", startErr)
	}
	return instance
}

// Main runs the tests of m and then stops the HDFS the tests started, if
// any: wrap a TestMain's m with it (goleak.VerifyTestMain(hdfstest.Main(m))).
func Main(m interface{ Run() int }) interface{ Run() int } { return mainWrapper{m} }

type mainWrapper struct{ m interface{ Run() int } }

func (w mainWrapper) Run() int {
	code := w.m.Run()
	if err := Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "hdfstest:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Stop stops the HDFS started by Get, if any, and removes its directory.
func Stop() error {
	if instance == nil {
		return nil
	}
	in := instance
	instance = nil
	if err := in.down(); err != nil {
		return err
	}
	return os.RemoveAll(in.Dir)
}

// Home finds the HDFS package: $FLUMED_HDFS_HOME, else ../shared/hdfs beside
// the repository root (the directory holding go.mod, found from the current
// directory up).
func Home() (string, error) {
	if h := os.Getenv(EnvHome); h != "" {
		return h, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the current directory: cannot find ../shared/hdfs")
		}
		dir = parent
	}
	home := filepath.Join(filepath.Dir(dir), "shared", "hdfs")
	if _, err := os.Stat(filepath.Join(home, "bin", "hdfs-up")); err != nil {
		return "", fmt.Errorf("no HDFS package at %s (set %s to one): %w", home, EnvHome, err)
	}
	return home, nil
}

// New starts an HDFS of the test's own, stopped when the test ends: for a
// test that kills and restarts the NameNode or the DataNode, which must not
// take the binary's shared instance (Get) down under other tests.
func New(t testing.TB) *Instance {
	t.Helper()
	in, err := start()
	if err != nil {
		t.Fatalf("hdfstest: the real HDFS is needed and could not be started: %v", err)
	}
	t.Cleanup(func() {
		if err := in.down(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			// The NameNode's and DataNode's logs (DIR/logs) and their
			// data are the evidence of what went wrong: keep them.
			t.Logf("hdfstest: kept the failed test's HDFS directory %s (logs/nn.log, logs/dn.log)", in.Dir)
			return
		}
		_ = os.RemoveAll(in.Dir)
	})
	return in
}

func start() (*Instance, error) {
	home, err := Home()
	if err != nil {
		return nil, err
	}
	// hdfs-deps is idempotent and returns at once when everything is there;
	// make test runs it before the tests, a lone go test needs it here.
	if out, err := exec.Command(filepath.Join(home, "bin", "hdfs-deps")).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bin/hdfs-deps: %w: %s", err, lastLines(out, 10))
	}
	dir, err := os.MkdirTemp("", "flumed-hdfs-")
	if err != nil {
		return nil, err
	}
	// The NameNode's port must stay free while it is down (Restart starts
	// it again on the same one, so that clients reconnect). hdfs-up's own
	// choice is a port of the ephemeral range, which any outgoing
	// connection on the machine may take as its local port meanwhile: a
	// restart in the fault test failed so ("Address already in use").
	// Below that range only an explicit bind can take it; should another
	// test bind the same one first, another is tried.
	var out []byte
	for try := 1; ; try++ {
		port, perr := stablePort()
		if perr != nil {
			_ = os.RemoveAll(dir)
			return nil, perr
		}
		out, err = up(home, dir, "HDFS_PORT="+strconv.Itoa(port))
		if err == nil || try == 5 || !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	env, err := readEnv(filepath.Join(dir, "env"))
	if err != nil {
		return nil, err
	}
	in := &Instance{Home: home, Dir: dir, Addr: env["HDFS_NN"], URL: env["HDFS_URL"], User: env["HADOOP_USER_NAME"]}
	if in.Addr == "" || in.URL == "" {
		return nil, fmt.Errorf("hdfs-up printed %q but %s/env has no HDFS_NN or HDFS_URL", out, dir)
	}
	if in.User == "" {
		in.User = "root"
		if u := os.Getenv("USER"); u != "" {
			in.User = u
		}
	}
	return in, nil
}

// stablePort returns a free TCP port on 127.0.0.1 below the kernel's
// ephemeral range (net.ipv4.ip_local_port_range), which no outgoing
// connection is given.
func stablePort() (int, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				low = n
			}
		}
	}
	for range 100 {
		port := 10000 + rand.IntN(low-10000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		_ = l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port found from 10000 to %d", low)
}

// up runs bin/hdfs-up dir (with env added) and returns its stdout.
func up(home, dir string, env ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(home, "bin", "hdfs-up"), dir)
	// Both cores may be busy with other tests: give the JVMs time, and less
	// heap than the default (all of the package's checks pass at 64m).
	cmd.Env = append(append(os.Environ(), "HDFS_TIMEOUT=240", "HDFS_HEAP=128m"), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("bin/hdfs-up after %v: %w: %s", time.Since(t0).Round(time.Millisecond), err, lastLines(stderr.Bytes(), 20))
	}
	return out, nil
}

func (in *Instance) down() error {
	out, err := exec.Command(filepath.Join(in.Home, "bin", "hdfs-down"), in.Dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("hdfs-down %s: %w: %s", in.Dir, err, out)
	}
	return nil
}

// KillNameNode SIGKILLs the NameNode's JVM (by the pid hdfs-up recorded) and
// waits until it is gone.
func (in *Instance) KillNameNode(t testing.TB) { t.Helper(); in.kill(t, "nn.pid") }

// KillDataNode SIGKILLs the DataNode's JVM and waits until it is gone.
func (in *Instance) KillDataNode(t testing.TB) { t.Helper(); in.kill(t, "dn.pid") }

func (in *Instance) kill(t testing.TB, pidFile string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(in.Dir, pidFile))
	if err != nil {
		t.Fatalf("hdfstest: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("hdfstest: %s: %v", pidFile, err)
	}
	// Only a JVM of this instance: its command line names the instance's conf.
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(filepath.Join(in.Dir, "conf")+":")) {
		t.Fatalf("hdfstest: pid %d of %s is not this instance's JVM (%v)", pid, pidFile, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("hdfstest: kill %d: %v", pid, err)
	}
	// hdfs-up started it with setsid: it is not our child, so poll /proc
	// until the kernel has reaped it (its parent, init, does).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return
		}
		if stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); bytes.Contains(stat, []byte(") Z ")) {
			return // dead, awaiting its reaper
		}
		if time.Now().After(deadline) {
			t.Fatalf("hdfstest: pid %d still alive 30s after SIGKILL", pid)
		}
	}
}

// Restart stops what is left of the instance (hdfs-down) and starts it again
// on the same DIR (hdfs-up: same data, same NameNode port, so clients of
// Addr reconnect). hdfs-up refuses a DIR with either daemon still running,
// so restarting one killed daemon restarts the other too.
func (in *Instance) Restart(t testing.TB) {
	t.Helper()
	if err := in.down(); err != nil {
		t.Fatalf("hdfstest: %v", err)
	}
	if _, err := up(in.Home, in.Dir); err != nil {
		t.Fatalf("hdfstest: restart: %v", err)
	}
}

// Tool runs one of Hadoop's tools against the instance, `hdfs tool args...`
// (dfsadmin -setSpaceQuota, fsck PATH -openforwrite ...), and returns its
// stdout; a failure fails the test with its stderr.
func (in *Instance) Tool(t testing.TB, tool string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(filepath.Join(in.Home, "bin", "hdfs"), append([]string{in.Dir, tool}, args...)...)
	cmd.Env = append(os.Environ(), "HADOOP_USER_NAME="+in.User, "HDFS_CLIENT_HEAP=128m")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hdfs %s %s: %v: %s", tool, strings.Join(args, " "), err, lastLines(stderr.Bytes(), 10))
	}
	return out
}

// Fsck runs `hdfs fsck path -openforwrite` and returns the paths of the
// files under path still open for write; it fails the test unless fsck
// finds path HEALTHY (no missing or corrupt block) within await.Limit.
// It asks again while fsck says otherwise: after a NameNode or DataNode
// restart the NameNode counts a block as missing until the DataNode's block
// report reaches it, and a block being recovered stays under construction
// for a while. A block really lost stays missing and fails the test.
func (in *Instance) Fsck(t testing.TB, path string) (open []string) {
	t.Helper()
	var out []byte
	await.NoError(t, "hdfs fsck "+path+" to find it HEALTHY", func() error {
		var err error
		out, err = in.fsck(path, "-openforwrite")
		if err == nil && bytes.Contains(out, []byte("is HEALTHY")) {
			return nil
		}
		return fmt.Errorf("not healthy (%v):\n%s", err, lastLines(out, 30))
	})
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "OPENFORWRITE") {
			open = append(open, strings.Fields(l)[0])
		}
	}
	return open
}

// FsckFiles runs `hdfs fsck path -files -blocks -openforwrite` until no
// block under path is missing (after a restart the NameNode counts a block
// missing until the DataNode's block report reaches it; a block really lost
// stays missing past await.Limit and fails the test), and returns the files
// still open for write and the files with a block fsck finds CORRUPT.
//
// Unlike Fsck it accepts CORRUPT: a block whose only replica the NameNode
// has marked corrupt although its bytes are whole (the HDFS sink's appends,
// see the README's "HDFS") stays so until the NameNode restarts. A test
// that takes it must check what it guarantees about those files itself,
// e.g. that Hadoop reads them whole.
func (in *Instance) FsckFiles(t testing.TB, path string) (open, corrupt []string) {
	t.Helper()
	var out []byte
	await.NoError(t, "hdfs fsck "+path+" to find no block missing", func() error {
		var err error
		out, err = in.fsck(path, "-files", "-blocks", "-openforwrite")
		if !bytes.Contains(out, []byte("Status: ")) {
			return fmt.Errorf("no report (%v):\n%s", err, lastLines(out, 30))
		}
		if bytes.Contains(out, []byte("MISSING")) {
			return fmt.Errorf("blocks missing:\n%s", lastLines(out, 60))
		}
		return nil
	})
	seen := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.Contains(l, "OPENFORWRITE"):
			open = append(open, strings.Fields(l)[0])
		case strings.Contains(l, ": CORRUPT blockpool "):
			if f, _, _ := strings.Cut(strings.TrimSpace(l), ": CORRUPT blockpool "); !seen[f] {
				seen[f] = true
				corrupt = append(corrupt, f)
			}
		}
	}
	return open, corrupt
}

// fsck runs `hdfs fsck path args...` against the NameNode's HTTP server,
// whose port hdfs-up picks at each start: its conf says 0, its env file
// says where it is now.
func (in *Instance) fsck(path string, args ...string) ([]byte, error) {
	env, err := readEnv(filepath.Join(in.Dir, "env"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(in.Home, "bin", "hdfs"), append([]string{in.Dir, "fsck",
		"-Ddfs.namenode.http-address=" + env["HDFS_HTTP"], path}, args...)...)
	cmd.Env = append(os.Environ(), "HADOOP_USER_NAME="+in.User, "HDFS_CLIENT_HEAP=128m")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%w: %s", err, lastLines(stderr.Bytes(), 5))
	}
	return out, nil
}

func readEnv(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read hdfs-up's env: %w", err)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = strings.Trim(v, `"'`)
		}
	}
	return env, nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Client returns a Go client of the instance, closed when the test ends.
func (in *Instance) Client(t testing.TB) *hdfs.Client {
	t.Helper()
	c, err := hdfs.NewClient(hdfs.ClientOptions{Addresses: []string{in.Addr}, User: in.User})
	if err != nil {
		t.Fatalf("hdfs client of %s: %v", in.Addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Dfs runs Hadoop's FsShell (`hdfs dfs args...`) against the instance and
// returns its stdout; a failure fails the test with its stderr.
func (in *Instance) Dfs(t testing.TB, args ...string) []byte {
	t.Helper()
	out, err := in.TryDfs(args...)
	if err != nil {
		t.Fatalf("hdfs dfs %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// TryDfs is Dfs returning the failure instead.
func (in *Instance) TryDfs(args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(in.Home, "bin", "hdfs"), append([]string{in.Dir, "dfs"}, args...)...)
	cmd.Env = append(os.Environ(), "HADOOP_USER_NAME="+in.User, "HDFS_CLIENT_HEAP=128m")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%w: %s", err, lastLines(stderr.Bytes(), 10))
	}
	return out, nil
}

// Text is `hdfs dfs -text path`: how Hadoop reads a file whatever its kind
// (SequenceFile, a compressed stream by its extension, plain bytes).
func (in *Instance) Text(t testing.TB, path string) []byte {
	t.Helper()
	return in.Dfs(t, "-text", path)
}

// Cat is `hdfs dfs -cat path`: the file's bytes.
func (in *Instance) Cat(t testing.TB, path string) []byte {
	t.Helper()
	return in.Dfs(t, "-cat", path)
}

// Ls is `hdfs dfs -ls -C dir`: the full paths in dir, sorted (the URL's
// scheme and authority included when dir has them).
func (in *Instance) Ls(t testing.TB, dir string) []string {
	t.Helper()
	var paths []string
	for _, l := range strings.Split(string(in.Dfs(t, "-ls", "-C", dir)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			paths = append(paths, l)
		}
	}
	return paths
}
