package source

// The network sources start from Flume config snippets through their specs:
// Flume's keys are read, flumed's bounds have defaults, and a misspelt key
// is refused with a suggestion.

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/source/internal/sourcetest"
)

func fromSnippet(t *testing.T, spec *config.Spec, f func(string, *config.Context, *slog.Logger) (Source, error), snippet string) (Source, []string) {
	t.Helper()
	c := config.FromMap("a1.sources.r1.", sourcetest.Props(t, snippet))
	c.Check(spec)
	src, err := f("r1", c, sourcetest.DiscardLog())
	ps := sourcetest.Problems(c)
	if err != nil && len(ps) == 0 {
		t.Fatalf("factory failed without a problem: %v", err)
	}
	return src, ps
}

func TestNetworkSourcesStartFromFlumeSnippets(t *testing.T) {
	cases := []struct {
		name    string
		spec    *config.Spec
		f       func(string, *config.Context, *slog.Logger) (Source, error)
		snippet string
		send    func(t *testing.T, addr net.Addr)
	}{
		{"syslogtcp", syslogTCPType, newSyslogTCPSource, "host = 127.0.0.1\nport = 0\neventSize = 100\nkeepFields = hostname\nclientIPHeader = ip\n",
			func(t *testing.T, a net.Addr) { sendTo(t, "tcp", a, "<13>Apr 13 11:11:11 web1 msg\n") }},
		{"multiport_syslogtcp", multiportSyslogTCPType, newMultiportSyslogTCPSource, "host = 127.0.0.1\nports = 0\nkeepFields = hostname\nportHeader = port\ncharset.default = ISO-8859-1\nbatchSize = 5\nreadBufferBytes = 2048\n",
			func(t *testing.T, a net.Addr) { sendTo(t, "tcp", a, "<13>Apr 13 11:11:11 web1 msg\n") }},
		{"syslogudp", syslogUDPType, newSyslogUDPSource, "host = 127.0.0.1\nport = 0\nkeepFields = hostname\n",
			func(t *testing.T, a net.Addr) { sendTo(t, "udp", a, "<13>Apr 13 11:11:11 web1 msg") }},
		{"netcatudp", netcatUDPType, newNetcatUDPSource, "bind = 127.0.0.1\nport = 0\nremoteAddressHeader = from\n",
			func(t *testing.T, a net.Addr) { sendTo(t, "udp", a, "web1 msg\n") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, ps := fromSnippet(t, c.spec, c.f, c.snippet)
			if len(ps) > 0 {
				t.Fatalf("problems %q", ps)
			}
			ch := newFakeChannel("c1")
			if err := src.Start(context.Background(), processor(t, ch)); err != nil {
				t.Fatal(err)
			}
			defer src.Stop()
			var addr net.Addr
			switch s := src.(type) {
			case *SyslogTCP:
				addr = s.Addrs()[0]
			case *UDP:
				addr = s.Addr()
			}
			c.send(t, addr)
			await.True(t, "an event", func() bool { return len(ch.events()) == 1 })
			if b := ch.bodies()[0]; !strings.Contains(b, "web1 msg") {
				t.Errorf("body %q", b)
			}
		})
	}
}

func sendTo(t *testing.T, network string, a net.Addr, msg string) {
	t.Helper()
	c, err := net.Dial(network, a.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func TestNetworkSourceSpecsRefuseBadKeys(t *testing.T) {
	for _, c := range []struct {
		spec    *config.Spec
		f       func(string, *config.Context, *slog.Logger) (Source, error)
		snippet string
		want    string
	}{
		{syslogTCPType, newSyslogTCPSource, "port = 0\neventSzie = 10\n", "did you mean eventSize"},
		{multiportSyslogTCPType, newMultiportSyslogTCPSource, "ports = 1 x\n", "not a port number"},
		{multiportSyslogTCPType, newMultiportSyslogTCPSource, "ports = 0\ncharset.port.0 = EBCDIC\n", "unsupported charset"},
		{httpType, newHTTPSource, "port = 0\nhandler = com.example.Custom\n", "unknown handler"},
	} {
		_, ps := fromSnippet(t, c.spec, c.f, c.snippet)
		if !strings.Contains(strings.Join(ps, "\n"), c.want) {
			t.Errorf("%s %q: problems %q, want %q", c.spec.Type, c.snippet, ps, c.want)
		}
	}
}

func TestHTTPSourceFromASnippet(t *testing.T) {
	src, ps := fromSnippet(t, httpType, newHTTPSource, "bind = 127.0.0.1\nport = 0\nhandler = org.apache.flume.source.http.BLOBHandler\nhandler.mandatoryParameters = host\nmax-body-bytes = 100\n")
	if len(ps) > 0 {
		t.Fatalf("problems %q", ps)
	}
	ch := newFakeChannel("c1")
	if err := src.Start(context.Background(), processor(t, ch)); err != nil {
		t.Fatal(err)
	}
	defer src.Stop()
	url := "http://" + src.(*HTTP).Addr().String() + "/?host=h"
	if code := curl(t, "--data-binary", "blob", url); code != "200" {
		t.Fatalf("code %s", code)
	}
	if code := curl(t, "--data-binary", strings.Repeat("x", 101), url); code != "413" {
		t.Fatalf("over max-body-bytes: %s", code)
	}
}
