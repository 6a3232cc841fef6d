package sink

// The thrift sink over TLS (Flume's ssl, truststore, truststore-type and
// exclude-protocols keys) against the Python server generated from Flume's
// flume.thrift, speaking TLS with Python's own ssl module through
// thrift.transport.TSSLServerSocket: a sink trusting the test's CA
// delivers with either protocol; one that does not trust it, or that
// excludes the only version the server speaks, delivers nothing and keeps
// the batch in the channel.

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/tlstest"
)

// thriftSinkFromSnippet builds a thrift sink to addr from Flume's keys.
func thriftSinkFromSnippet(t *testing.T, addr string, kv map[string]string) *Thrift {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	kv["hostname"], kv["port"] = host, port
	c := config.FromMap("a1.sinks.k1.", kv)
	s, err := checkedSink("thrift")("k1", c, nil)
	if err != nil || len(c.Problems().Errors()) > 0 {
		t.Fatalf("thrift sink: %v %v", err, c.Problems().Errors())
	}
	return s.(*Thrift)
}

// twoEvents is a memory channel holding the events a:one and b:two.
func twoEvents(t *testing.T) *channel.Memory {
	t.Helper()
	mem := channel.NewMemory("c1", channel.MemoryOptions{Capacity: 100, TransactionCapacity: 100})
	t.Cleanup(func() { _ = mem.Close() })
	tx := mem.Begin()
	_ = tx.Put(channel.Event{Headers: map[string]string{"k": "a"}, Body: []byte("one")}, channel.Event{Headers: map[string]string{"k": "b"}, Body: []byte("two")})
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return mem
}

func TestTheThriftSinkDeliversToAPythonServerOverTLS(t *testing.T) {
	ca := tlstest.NewCA(t)
	pair := ca.Issue(t, "thrift-server")
	for _, proto := range []string{"compact", "binary"} {
		t.Run(proto, func(t *testing.T) {
			addr, lines := pythonThriftServer(t, proto, 0, pair.Both)
			mem := twoEvents(t)
			s := thriftSinkFromSnippet(t, addr, map[string]string{
				"protocol": proto, "ssl": "true", "truststore": ca.File, "truststore-type": "PEM"})
			if err := s.Start(context.Background(), mem); err != nil {
				t.Fatal(err)
			}
			defer s.Stop()
			if _, err := s.Process(context.Background()); err != nil {
				t.Fatalf("process: %v", err)
			}
			got := []string{await.Recv(t, "first event", lines), await.Recv(t, "second event", lines)}
			if strings.Join(got, ",") != "a:one,b:two" {
				t.Fatalf("server got %q", got)
			}
			_ = s.Stop()
			await.True(t, "the take committed", func() bool { return mem.Stats().Size == 0 })
		})
	}
}

func TestATLSThriftSinkTheServerCannotSatisfyKeepsTheBatch(t *testing.T) {
	ca := tlstest.NewCA(t)
	addr, lines := pythonThriftServer(t, "compact", 0, ca.Issue(t, "thrift-server").Both, "TLSv1_2")
	cases := []struct {
		name string
		kv   map[string]string
		want string
	}{
		{"a sink that does not trust the server's CA", map[string]string{"ssl": "true"}, "certificate"},
		{"a sink that excludes the only version the server speaks",
			map[string]string{"ssl": "true", "truststore": ca.File, "truststore-type": "PEM", "exclude-protocols": "TLSv1.2"}, "version"},
	}
	mem := twoEvents(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := thriftSinkFromSnippet(t, addr, tc.kv)
			if err := s.Start(context.Background(), mem); err != nil {
				t.Fatal(err)
			}
			defer s.Stop()
			_, err := s.Process(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("process: %v, want an error mentioning %q", err, tc.want)
			}
			await.True(t, "the batch is back in the channel", func() bool { return mem.Stats().Size == 2 })
		})
	}
	// The same server serves a sink that trusts its CA and allows TLSv1.2:
	// the failures above were the sinks' configuration, not the server.
	s := thriftSinkFromSnippet(t, addr, map[string]string{"ssl": "true", "truststore": ca.File, "truststore-type": "PEM"})
	if err := s.Start(context.Background(), mem); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if _, err := s.Process(context.Background()); err != nil {
		t.Fatalf("process: %v", err)
	}
	if got := await.Recv(t, "first event", lines); got != "a:one" {
		t.Fatalf("server got %q", got)
	}
}
