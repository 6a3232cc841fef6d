package source

// The syslog sources against real senders we did not write: util-linux
// logger (TCP and UDP, RFC 3164 and RFC 5424, newline and octet-counted
// framing) and rsyslog forwarding with omfwd. Each message arrives as one
// event with Flume's headers; a refused batch is retried, not lost; a
// message cut by the end of a connection is never put; bad input is
// delivered with flume.syslog.status and counted. The Debian packages that
// hold the senders are installed when missing (the tests run as root in CI),
// never skipped.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/syslog"
	"github.com/flumed/flumed/source/internal/sourcetest"
)

var installMu sync.Mutex

// needTool finds a program, installing its Debian package when it is missing.
func needTool(t *testing.T, prog, pkg string) string {
	t.Helper()
	installMu.Lock()
	defer installMu.Unlock()
	if p, err := exec.LookPath(prog); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/" + prog, "/sbin/" + prog} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	out, err := exec.Command("apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends", pkg).CombinedOutput()
	if err != nil {
		if out2, err2 := exec.Command("sh", "-c", "apt-get -o DPkg::Lock::Timeout=600 update && apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "+pkg).CombinedOutput(); err2 != nil {
			t.Fatalf("%s is missing and installing %s failed: %v\n%s\n%s", prog, pkg, err2, out, out2)
		}
	}
	for _, p := range []string{prog, "/usr/sbin/" + prog} {
		if q, err := exec.LookPath(p); err == nil {
			return q
		}
	}
	t.Fatalf("%s still missing after installing %s", prog, pkg)
	return ""
}

func processor(t *testing.T, ch *fakeChannel) BatchPutter {
	t.Helper()
	p, err := NewChannelProcessor(config.FromMap("a1.sources.r1.", nil), []channel.Channel{ch}, sourcetest.DiscardLog())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func startSyslogTCP(t *testing.T, o SyslogTCPOptions) (*SyslogTCP, *fakeChannel, string) {
	t.Helper()
	if o.Ports == nil {
		o.Ports = []SyslogPort{{Addr: "127.0.0.1:0", Parser: syslog.NewParser(syslog.Options{OctetCounting: true})}}
	}
	s := NewSyslogTCP("r1", o, sourcetest.DiscardLog())
	ch := newFakeChannel("c1")
	if err := s.Start(context.Background(), processor(t, ch)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s, ch, s.Addrs()[0].String()
}

func startSyslogUDP(t *testing.T, o SyslogUDPOptions) (*UDP, *fakeChannel, string) {
	t.Helper()
	o.Addr = "127.0.0.1:0"
	if o.Parser == nil {
		o.Parser = syslog.NewParser(syslog.Options{})
	}
	s := NewSyslogUDP("r1", o, sourcetest.DiscardLog())
	ch := newFakeChannel("c1")
	if err := s.Start(context.Background(), processor(t, ch)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s, ch, s.Addr().String()
}

func runLogger(t *testing.T, args ...string) {
	t.Helper()
	logger := needTool(t, "logger", "bsdutils")
	if out, err := exec.Command(logger, args...).CombinedOutput(); err != nil {
		t.Fatalf("logger %q: %v\n%s", args, err, out)
	}
}

func hostPort(t *testing.T, addr string) (string, string) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

func TestLoggerReachesTheSyslogSources(t *testing.T) {
	hostname, _ := os.Hostname()
	cases := []struct {
		name  string
		udp   bool
		flags []string
		body  string // what the body ends with
	}{
		{"TCP, RFC 3164", false, []string{"--tcp", "--rfc3164"}, "tag: hello 3164 tcp"},
		{"TCP, RFC 5424", false, []string{"--tcp", "--rfc5424"}, "hello 5424 tcp"},
		{"TCP, RFC 5424, octet-counted", false, []string{"--tcp", "--rfc5424", "--octet-count"}, "hello 5424 octets"},
		{"TCP, RFC 3164, octet-counted", false, []string{"--tcp", "--rfc3164", "--octet-count"}, "tag: hello 3164 octets"},
		{"UDP, RFC 3164", true, []string{"--udp", "--rfc3164"}, "tag: hello 3164 udp"},
		{"UDP, RFC 5424", true, []string{"--udp", "--rfc5424"}, "hello 5424 udp"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ch *fakeChannel
			var addr string
			if c.udp {
				_, ch, addr = startSyslogUDP(t, SyslogUDPOptions{ClientIPHeader: "ip"})
			} else {
				_, ch, addr = startSyslogTCP(t, SyslogTCPOptions{ClientIPHeader: "ip"})
			}
			h, p := hostPort(t, addr)
			msg := strings.TrimPrefix(c.body, "tag: ")
			runLogger(t, append(c.flags, "-n", h, "-P", p, "-t", "tag", "-p", "local3.warning", msg)...)
			await.True(t, "the message arrives", func() bool { return len(ch.events()) == 1 })
			e := ch.events()[0]
			// local3 = 19, warning = 4
			want := map[string]string{"Facility": "19", "Severity": "4", "host": hostname, "ip": "127.0.0.1"}
			for k, v := range want {
				if e.Headers[k] != v {
					t.Errorf("header %s = %q, want %q (headers %v)", k, e.Headers[k], v, e.Headers)
				}
			}
			if e.Headers["timestamp"] == "" || e.Headers[syslog.HeaderStatus] != "" {
				t.Errorf("headers %v: want a timestamp and no status", e.Headers)
			}
			if !strings.HasSuffix(string(e.Body), c.body) {
				t.Errorf("body %q, want it to end with %q", e.Body, c.body)
			}
		})
	}
}

func TestManyLoggerMessagesOnOneConnectionArriveInOrderInBatches(t *testing.T) {
	_, ch, addr := startSyslogTCP(t, SyslogTCPOptions{BatchSize: 7})
	h, p := hostPort(t, addr)
	f := filepath.Join(t.TempDir(), "lines")
	var lines []string
	for i := range 100 {
		lines = append(lines, fmt.Sprintf("line %03d", i))
	}
	if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// logger -f sends every line of the file on one connection.
	runLogger(t, "--tcp", "--rfc3164", "--octet-count", "-n", h, "-P", p, "-t", "t", "-f", f)
	await.True(t, "100 messages", func() bool { return len(ch.events()) == 100 })
	for i, b := range ch.bodies() {
		if want := "t: " + lines[i]; b != want {
			t.Fatalf("event %d: body %q, want %q", i, b, want)
		}
	}
}

func TestRsyslogForwardsToTheSyslogTCPSource(t *testing.T) {
	rsyslogd := needTool(t, "rsyslogd", "rsyslog")
	for _, framing := range []string{"traditional", "octet-counted"} {
		t.Run(framing, func(t *testing.T) {
			_, ch, addr := startSyslogTCP(t, SyslogTCPOptions{})
			_, fwdPort := hostPort(t, addr)
			// rsyslog listens on UDP and forwards over TCP to the source.
			in, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			_, inPort := hostPort(t, in.LocalAddr().String())
			in.Close()
			dir := t.TempDir()
			conf := filepath.Join(dir, "rsyslog.conf")
			if err := os.WriteFile(conf, []byte(fmt.Sprintf(`global(workDirectory=%q)
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="%s")
action(type="omfwd" target="127.0.0.1" port="%s" protocol="tcp" TCP_Framing=%q template="RSYSLOG_SyslogProtocol23Format")
`, dir, inPort, fwdPort, framing)), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cmd := exec.CommandContext(ctx, rsyslogd, "-n", "-f", conf, "-i", filepath.Join(dir, "pid"))
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cancel(); _ = cmd.Wait() })
			// imudp is up once rsyslog has bound the port: send until the
			// first message comes through, then two more.
			h, _ := hostPort(t, addr)
			await.True(t, "rsyslog forwards a first message", func() bool {
				runLogger(t, "--udp", "--rfc3164", "-n", h, "-P", inPort, "-t", "app", "-p", "user.err", "first")
				return len(ch.events()) > 0
			})
			runLogger(t, "--udp", "--rfc3164", "-n", h, "-P", inPort, "-t", "app", "-p", "user.err", "second")
			await.True(t, "the second message", func() bool {
				for _, b := range ch.bodies() {
					if strings.HasSuffix(b, "second") {
						return true
					}
				}
				return false
			})
			for _, e := range ch.events() {
				if e.Headers["Facility"] != "1" || e.Headers["Severity"] != "3" || e.Headers["version"] != "1" ||
					e.Headers["timestamp"] == "" || e.Headers["host"] == "" || e.Headers[syslog.HeaderStatus] != "" {
					t.Errorf("headers %v body %q: want facility 1, severity 3, RFC 5424 version 1, a timestamp and a host", e.Headers, e.Body)
				}
			}
			if t.Failed() {
				t.Logf("rsyslogd said:\n%s", out.String())
			}
		})
	}
}

func TestMultiportListensOnEveryPortWithItsOwnRules(t *testing.T) {
	mp := &syslog.MultiportLines{}
	parser := syslog.NewParser(syslog.Options{})
	s, ch, _ := startSyslogTCP(t, SyslogTCPOptions{PortHeader: "port", Ports: []SyslogPort{
		{Addr: "127.0.0.1:0", Parser: parser, Multiport: mp},
		{Addr: "127.0.0.1:0", Parser: parser, Multiport: mp},
	}})
	for i, a := range s.Addrs() {
		h, p := hostPort(t, a.String())
		runLogger(t, "--tcp", "--rfc5424", "-n", h, "-P", p, "-t", "app", "-p", "user.info", fmt.Sprint("to port ", i))
	}
	await.True(t, "a message on each port", func() bool { return len(ch.events()) == 2 })
	ports := map[string]bool{}
	for _, e := range ch.events() {
		ports[e.Headers["port"]] = true
		if e.Headers["Priority"] != "14" || e.Headers["Version"] != "1" || e.Headers[syslog.HeaderStatus] != "" {
			t.Errorf("headers %v: want SyslogParser's Priority 14 and Version 1", e.Headers)
		}
	}
	if len(ports) != 2 {
		t.Errorf("port headers %v, want both ports", ports)
	}
}

func TestARefusedSyslogBatchIsRetriedNotLost(t *testing.T) {
	_, ch, addr := startSyslogTCP(t, SyslogTCPOptions{})
	ch.setRefuse(2)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("<13>a\n<13>b\n")); err != nil {
		t.Fatal(err)
	}
	await.True(t, "both messages, after two refusals", func() bool { return len(ch.bodies()) == 2 })
	if got := ch.bodies(); got[0] != "<13>a" || got[1] != "<13>b" {
		t.Fatalf("bodies %q", got)
	}
}

func TestAMessageCutByTheEndOfTheConnectionIsNotPut(t *testing.T) {
	s, ch, addr := startSyslogTCP(t, SyslogTCPOptions{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("<13>whole\n<13>cut")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	await.True(t, "the truncation is counted", func() bool { return s.FlumeMetrics()["SyslogTruncatedCount"] == "1" })
	if got := ch.bodies(); len(got) != 1 || got[0] != "<13>whole" {
		t.Fatalf("bodies %q, want only the whole message", got)
	}
}

func TestBadSyslogInputIsDeliveredMarkedAndCounted(t *testing.T) {
	s, ch, addr := startSyslogTCP(t, SyslogTCPOptions{Ports: []SyslogPort{{Addr: "127.0.0.1:0", Parser: syslog.NewParser(syslog.Options{EventSize: 40})}}})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("no pri at all\n<13>Foo 13 11:11:11 h bad date\n<13>" + strings.Repeat("x", 50) + "\n")); err != nil {
		t.Fatal(err)
	}
	await.True(t, "four events", func() bool { return len(ch.events()) == 4 })
	ev := ch.events()
	if ev[0].Headers[syslog.HeaderStatus] != syslog.StatusInvalid || string(ev[0].Body) != "no pri at all" {
		t.Errorf("no PRI: %v %q", ev[0].Headers, ev[0].Body)
	}
	// A bad date is no status in Flume either: the event has no timestamp.
	if ev[1].Headers[syslog.HeaderStatus] != "" || ev[1].Headers["timestamp"] != "" || string(ev[1].Body) != "bad date" {
		t.Errorf("bad date: %v %q", ev[1].Headers, ev[1].Body)
	}
	if ev[2].Headers[syslog.HeaderStatus] != syslog.StatusIncomplete || len(ev[2].Body) != 40 {
		t.Errorf("oversized: %v %q", ev[2].Headers, ev[2].Body)
	}
	if ev[3].Headers[syslog.HeaderStatus] != syslog.StatusInvalid || string(ev[3].Body) != strings.Repeat("x", 14) {
		t.Errorf("the rest of the oversized line: %v %q", ev[3].Headers, ev[3].Body)
	}
	m := s.FlumeMetrics()
	if m["SyslogInvalidCount"] != "2" || m["SyslogIncompleteCount"] != "1" || m["SyslogBadTimestampCount"] != "1" {
		t.Errorf("metrics %v: want 2 invalid, 1 incomplete, 1 bad timestamp", m)
	}
}

func TestAUDPFloodIsDroppedCountedAndBounded(t *testing.T) {
	s, ch, addr := startSyslogUDP(t, SyslogUDPOptions{BatchSize: 10, QueueEvents: 20, ReceiveBuffer: 1 << 20})
	ch.setRefuse(-1) // the channel takes nothing: the queue fills
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	await.True(t, "datagrams dropped once the queue is full", func() bool {
		for range 100 {
			_, _ = c.Write([]byte("<13>flood"))
		}
		return s.FlumeMetrics()["SyslogDroppedCount"] != "0"
	})
	if s.ReceiveBuffer() < 1<<20 {
		t.Errorf("SO_RCVBUF %d, want at least the 1 MiB asked for", s.ReceiveBuffer())
	}
	ch.setRefuse(0)
	await.True(t, "the queued events are put once the channel takes them", func() bool { return len(ch.events()) >= 20 })
}

func TestNetcatUDPTakesTheFirstLineOfEachDatagram(t *testing.T) {
	s := NewNetcatUDP("r1", "127.0.0.1:0", "remote", sourcetest.DiscardLog())
	ch := newFakeChannel("c1")
	if err := s.Start(context.Background(), processor(t, ch)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	c, err := net.Dial("udp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, d := range []string{"one\ndropped", "two", ""} {
		if _, err := c.Write([]byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	await.True(t, "three events", func() bool { return len(ch.events()) == 3 })
	if got := ch.bodies(); got[0] != "one" || got[1] != "two" || got[2] != "" {
		t.Fatalf("bodies %q", got)
	}
	if r := ch.events()[0].Headers["remote"]; r != "/"+c.LocalAddr().String() {
		t.Fatalf("remote header %q, want /%s", r, c.LocalAddr())
	}
}
