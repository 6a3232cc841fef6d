package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier tells systemd about the agent's state over the sd_notify
// protocol: datagrams of "KEY=value" lines to the unix socket named by
// NOTIFY_SOCKET (a leading "@" is an abstract socket). A nil Notifier,
// which NewNotifier returns when not run by systemd, does nothing, so the
// agent calls it unconditionally. It never fails the agent: a message that
// cannot be sent is logged once at debug level and dropped, as systemd's
// own sd_notify does.
type Notifier struct {
	addr *net.UnixAddr
	log  *slog.Logger
}

// NewNotifier returns the notifier of the environment's NOTIFY_SOCKET, or nil.
func NewNotifier(log *slog.Logger) *Notifier {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	if strings.HasPrefix(name, "@") {
		name = "\x00" + name[1:]
	}
	return &Notifier{addr: &net.UnixAddr{Name: name, Net: "unixgram"}, log: log}
}

// Notify sends one state message ("READY=1", "STOPPING=1", ...).
func (n *Notifier) Notify(state string) {
	if n == nil {
		return
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		n.log.Debug("sd_notify", "state", state, "err", err)
		return
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		n.log.Debug("sd_notify", "state", state, "err", err)
	}
}

// Ready says the agent has started (and, after a reload, that it is done).
func (n *Notifier) Ready() { n.Notify("READY=1") }

// Reloading says a reload began. MONOTONIC_USEC, the time on
// CLOCK_MONOTONIC, is what Type=notify-reload units (systemd 253) need to
// match the reload with the request.
func (n *Notifier) Reloading() {
	if n == nil {
		return
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		n.Notify("RELOADING=1")
		return
	}
	n.Notify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000))
}

// Stopping says the agent is stopping (draining).
func (n *Notifier) Stopping() { n.Notify("STOPPING=1") }

// Watchdog pings systemd's watchdog at half the WATCHDOG_USEC interval,
// until ctx ends, when the unit has WatchdogSec set (and WATCHDOG_PID, if
// set, is this process). The pings come from a goroutine of their own:
// they say the process is scheduled and its runtime alive, not that every
// component is healthy (that is /readyz's job).
func (n *Notifier) Watchdog(ctx context.Context) {
	if n == nil {
		return
	}
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return
	}
	tick := time.NewTicker(time.Duration(usec) * time.Microsecond / 2)
	defer tick.Stop()
	for {
		n.Notify("WATCHDOG=1")
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
