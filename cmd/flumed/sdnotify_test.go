package main

// Under systemd (NOTIFY_SOCKET set), flumed sends READY=1 once started,
// RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a reload, STOPPING=1
// when a stop begins, and WATCHDOG=1 every half WATCHDOG_USEC meanwhile.
// The test plays systemd's side: a unixgram socket reading the datagrams of
// a real flumed process.

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/flumed/flumed/internal/await"
)

func TestSystemdHearsReadyReloadingStoppingAndWatchdogPings(t *testing.T) {
	// A short directory: a socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "sd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 1000)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()

	cfg := writeConfig(t, "a1.channels = c1\na1.sinks = k1\na1.channels.c1.type = memory\na1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n")
	cmd := exec.Command(flumed, "run", "-c", cfg, "--no-reload-conf")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=100000")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()

	var states []string
	pings := 0
	// next returns the next message that is not a watchdog ping.
	next := func(what string) string {
		for {
			m := await.Recv(t, what, msgs)
			if m == "WATCHDOG=1" {
				pings++
				continue
			}
			states = append(states, m)
			return m
		}
	}
	next("READY=1")
	for pings < 2 {
		if m := await.Recv(t, "watchdog pings", msgs); m == "WATCHDOG=1" {
			pings++
		} else {
			t.Fatalf("unexpected %q before the reload", m)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reloading := next("RELOADING=1")
	if !regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=\d+$`).MatchString(reloading) {
		t.Fatalf("reloading message %q", reloading)
	}
	next("READY=1 after the reload")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	next("STOPPING=1")
	if err := await.Recv(t, "the exit", exited); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr)
	}
	states[1] = strings.SplitN(states[1], "\n", 2)[0]
	if want := []string{"READY=1", "RELOADING=1", "READY=1", "STOPPING=1"}; !reflect.DeepEqual(states, want) {
		t.Fatalf("states %q, want %q", states, want)
	}
}

func TestTheUnitFileIsANotifyServiceThatReloadsAndOutlastsTheDrain(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "packaging", "flumed.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	for _, want := range []string{
		"Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "WatchdogSec=", "KillMode=mixed",
		"RestartPreventExitStatus=78", "--drain-timeout 30s", "TimeoutStopSec=60s",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=flumed",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit has no %q", want)
		}
	}
	// systemd's own check, on a copy pointing at the binary under test.
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Logf("no systemd-analyze here: the unit's syntax is not checked")
		return
	}
	copyPath := filepath.Join(t.TempDir(), "flumed.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(unit, "/usr/local/bin/flumed", flumed)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
