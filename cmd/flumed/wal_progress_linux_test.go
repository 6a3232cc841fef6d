package main

// On a terminal, verify draws its progress bar on stderr and erases it
// before the report (the counterpart of the piped case in wal_test.go). The
// terminal is a pseudo-terminal the test opens itself.

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/flumed/flumed/internal/await"
)

// openPTY returns the controlling and terminal sides of a new
// pseudo-terminal.
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal on this machine: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		ptm.Close()
		t.Skipf("unlock pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		ptm.Close()
		t.Skipf("pseudo-terminal number: %v", err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		ptm.Close()
		t.Skipf("open pseudo-terminal: %v", err)
	}
	return ptm, pts
}

func TestWalVerifyDrawsProgressOnATerminal(t *testing.T) {
	base := newWalChannel(t)
	ptm, pts := openPTY(t)
	defer ptm.Close()
	got := make(chan string, 1)
	go func() {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := ptm.Read(buf)
			b.Write(buf[:n])
			if err != nil || strings.Contains(b.String(), "\r\x1b[K") {
				break
			}
		}
		got <- b.String()
	}()
	var out strings.Builder
	code := runWalTo(t, &out, pts, "wal", "verify", base)
	pts.Close()
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	s := await.Recv(t, "the progress bar on the terminal", got)
	if !strings.Contains(s, "\rverifying [") || !strings.Contains(s, " 100% ") || !strings.HasSuffix(s, "\r\x1b[K") {
		t.Errorf("terminal got %q, want a full bar then its erasure", s)
	}
	if strings.ContainsAny(out.String(), "\r\x1b") {
		t.Errorf("the bar leaked into stdout: %q", out.String())
	}
}
