package main

// flumed top against a real agent: on a terminal (a pty the test opens) it
// switches to the alternate screen, redraws the table with rates in place
// and restores the screen on Ctrl-C; when stdout is a pipe it prints plain
// text without escape codes.

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/flumed/flumed/internal/await"
)

const topAgent = `a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
`

// metricsBase is the agent's monitoring server, host:port.
func (p *agentProcess) metricsBase() string { return strings.TrimSuffix(p.metrics, "/metrics") }

func TestTopPrintsPlainTextWhenStdoutIsNotATerminal(t *testing.T) {
	p := startAgent(t, topAgent)
	out, err := exec.Command(flumed, "top", "--once", "--interval", "100ms", "--url", p.metricsBase()).Output()
	if err != nil {
		t.Fatalf("top: %v\n%s", err, out)
	}
	s := string(out)
	if strings.Contains(s, "\x1b") {
		t.Fatalf("escape codes in plain output:\n%q", s)
	}
	for _, re := range []string{`(?m)^CHANNELS$`, `(?m)^\s+c1\s+\d+\s+10000\s+[\d.]+%\s+[\d.hms]+\s+\d+\s+\d+$`, `(?m)^\s+r1\s+\d+\s+\d+\s+0\s+0$`} {
		if !regexp.MustCompile(re).MatchString(s) {
			t.Errorf("no line matching %s in\n%s", re, s)
		}
	}
}

func TestTopRedrawsInPlaceOnATerminalAndRestoresItOnCtrlC(t *testing.T) {
	p := startAgent(t, topAgent)
	master, slave := openPTY(t) // wal_progress_linux_test.go
	defer master.Close()
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(flumed, "top", "--interval", "100ms", "--url", p.metricsBase())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()

	var mu sync.Mutex
	var screen bytes.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	read := func() string { mu.Lock(); defer mu.Unlock(); return screen.String() }
	// Rates appear from the second read on; each redraw clears the screen.
	rated := regexp.MustCompile(`c1\s+\d+\s+10000\s+[\d.]+%\s+[\d.hms]+\s+\d+\s+\d+`)
	await.True(t, "a redraw with rates", func() bool {
		s := read()
		return strings.HasPrefix(s, "\x1b[?1049h") && strings.Count(s, "\x1b[H\x1b[2J") >= 3 && rated.MatchString(s)
	})
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := await.Recv(t, "the exit on Ctrl-C", exited); err != nil {
		t.Fatalf("exit: %v", err)
	}
	await.True(t, "the screen restored", func() bool { return strings.HasSuffix(read(), "\x1b[?25h\x1b[?1049l") })
}
